//! Shared plumbing of the station commands: sources, transports, audit output.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kf_perso::pipeline::FobOutcome;
use kf_perso::AuditRecord;
use kf_source::{CardKeys, ContainerSource, DevSampleSource, ProvisioningSource};

use crate::config::StationConfig;

/// A provisioning source, and the KLMS client when the source is the KLMS
/// (the audit uploader needs it too).
pub struct OpenedSource {
    /// The source.
    pub source: Box<dyn ProvisioningSource>,
    /// The KLMS client, for `--source klms`.
    pub klms: Option<std::sync::Arc<kf_source::klms::KlmsClient>>,
}

/// Opens the provisioning source the configuration names.
pub fn open_source(config: &StationConfig) -> anyhow::Result<OpenedSource> {
    if config.source.kind == "klms" {
        let client = config.klms.client()?;
        let reader_id = config
            .klms
            .reader_id
            .clone()
            .unwrap_or_else(|| config.station_id.clone());
        return Ok(OpenedSource {
            source: Box::new(crate::klms::source(&client, &reader_id)),
            klms: Some(client),
        });
    }
    Ok(OpenedSource {
        source: offline_source(config)?,
        klms: None,
    })
}

fn offline_source(config: &StationConfig) -> anyhow::Result<Box<dyn ProvisioningSource>> {
    match config.source.kind.as_str() {
        "dev" => Ok(match &config.source.dir {
            Some(dir) => Box::new(DevSampleSource::with_pool(dir.clone())?),
            // Without a pool the dev source makes synthetic packages in memory.
            None => Box::new(DevSampleSource::generated(64, None)?),
        }),
        "container" => {
            let Some(dir) = &config.source.dir else {
                bail!("the container source needs a pool directory (--source-dir DIR)");
            };
            Ok(Box::new(ContainerSource::open(
                dir.clone(),
                CardKeys::dev_sample()?,
            )?))
        }
        other => bail!("unknown source {other:?}: use dev, container or klms"),
    }
}

/// Refuses `--sim` early (before any file is opened) in a factory build.
#[cfg(feature = "sim")]
pub fn ensure_sim(_what: &str) -> anyhow::Result<()> {
    Ok(())
}

/// Refuses `--sim` early (before any file is opened) in a factory build.
#[cfg(not(feature = "sim"))]
pub fn ensure_sim(what: &str) -> anyhow::Result<()> {
    Err(crate::cmd::sim_only::not_in_this_build(what))
}

/// A virtual fob with the dev-sample keys (for `--sim`).
#[cfg(feature = "sim")]
pub fn sim_fob() -> anyhow::Result<kf_card::VirtualFob> {
    Ok(kf_card::VirtualFob::new(kf_card::FobConfig::dev_sample())?)
}

/// Provisions the in-process virtual fob (`--sim`).
#[cfg(feature = "sim")]
pub fn provision_sim(
    recorder: &mut Recorder,
    source: &mut dyn ProvisioningSource,
    options: &kf_perso::pipeline::PipelineOptions,
) -> anyhow::Result<FobOutcome> {
    let mut link = kf_transport::loopback::LoopbackTransport::new(sim_fob()?);
    recorder.provision(&mut link, source, options)
}

/// A factory build has no virtual fob: `--sim` is refused.
#[cfg(not(feature = "sim"))]
pub fn provision_sim(
    _recorder: &mut Recorder,
    _source: &mut dyn ProvisioningSource,
    _options: &kf_perso::pipeline::PipelineOptions,
) -> anyhow::Result<FobOutcome> {
    Err(crate::cmd::sim_only::not_in_this_build("provision --sim"))
}

/// Where a fob's audit goes: the durable journal (started + outcome records)
/// and, optionally, a JSON-lines copy.
pub struct Recorder {
    journal: kf_audit::Journal,
    audit_file: Option<AuditFile>,
    uploader: Option<kf_audit::Uploader>,
}

impl Recorder {
    /// Opens (or creates, with its key) the journal; its key is
    /// `<journal>.key` ([`kf_audit::JournalKey`]). With a KLMS client the
    /// journal is first compared with the head the KLMS anchored (a journal
    /// rolled back or forked is refused before anything is appended), then
    /// an uploader sends its records to the KLMS in the background.
    pub fn open(
        journal_path: &Path,
        audit_file: Option<&Path>,
        klms: Option<&std::sync::Arc<kf_source::klms::KlmsClient>>,
    ) -> anyhow::Result<Recorder> {
        crate::paths::prepare_default_dir(journal_path).with_context(|| {
            format!("cannot create the directory of {}", journal_path.display())
        })?;
        let key_path = kf_audit::JournalKey::default_path(journal_path);
        let mut journal = kf_audit::Journal::open_or_create(journal_path, &key_path)
            .with_context(|| format!("cannot open the journal {}", journal_path.display()))?;
        if let Some(client) = klms {
            crate::klms::check_anchor(&journal, journal_path, client)?;
        }
        let interrupted = crate::journal::close_interrupted(&mut journal)?;
        if interrupted > 0 {
            errln!(
                "journal: {interrupted} personalization(s) interrupted by a previous stop recorded as FAILURE"
            );
        }
        let uploader = match klms {
            Some(client) => Some(crate::klms::uploader(
                journal_path,
                kf_audit::JournalKey::load(&key_path)?,
                client,
            )?),
            None => None,
        };
        Ok(Recorder {
            journal,
            audit_file: audit_file.map(AuditFile::new),
            uploader,
        })
    }

    /// Waits up to `timeout` for pending uploads; returns the uploader's
    /// statistics (None without an uploader).
    pub fn close(self, timeout: std::time::Duration) -> Option<kf_audit::UploaderStats> {
        self.uploader.map(|u| {
            u.flush(timeout);
            u.shutdown()
        })
    }

    /// Provisions one fob with the journal's "started" hook.
    pub fn provision(
        &mut self,
        transport: &mut dyn kf_transport::transport::Transport,
        source: &mut dyn ProvisioningSource,
        options: &kf_perso::pipeline::PipelineOptions,
    ) -> anyhow::Result<FobOutcome> {
        let mut hooks = crate::journal::JournalHooks::new(&mut self.journal);
        let outcome = kf_perso::pipeline::provision_fob(transport, source, options, &mut hooks);
        self.finish(&outcome)?;
        Ok(outcome)
    }

    /// Records the outcome (journal first: it is the record of truth).
    pub fn finish(&mut self, outcome: &FobOutcome) -> anyhow::Result<()> {
        crate::journal::append_outcome(&mut self.journal, outcome)?;
        if let Some(uploader) = &self.uploader {
            uploader.notify();
        }
        if let Some(file) = &self.audit_file {
            file.append(&outcome.record)?;
        }
        Ok(())
    }
}

/// Appends audit records as JSON lines, flushed and synced per record.
pub struct AuditFile {
    path: PathBuf,
}

impl AuditFile {
    /// Audit records go to `path` (created when missing).
    pub fn new(path: &Path) -> AuditFile {
        AuditFile {
            path: path.to_path_buf(),
        }
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&self, record: &AuditRecord) -> anyhow::Result<()> {
        let line = record.to_json_line()?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open the audit file {}", self.path.display()))?;
        writeln!(file, "{line}")
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the audit file {}", self.path.display()))?;
        Ok(())
    }
}

/// One line for the operator: PASS/FAIL, UID, time, reason.
pub fn outcome_line(outcome: &FobOutcome) -> String {
    let uid = outcome
        .uid
        .as_ref()
        .map(hex::encode_upper)
        .unwrap_or_else(|| "-".into());
    let ms = outcome.elapsed.as_secs_f64() * 1000.0;
    match &outcome.error {
        None => format!(
            "PASS  {uid}  {ms:.0} ms  {}",
            outcome.origin.as_deref().unwrap_or("")
        ),
        Some(e) => format!("FAIL  {uid}  {ms:.0} ms  at {:?}: {}", e.stage, e.error),
    }
}

/// The outcome as JSON for `--json`.
pub fn outcome_json(outcome: &FobOutcome) -> serde_json::Value {
    serde_json::json!({
        "result": if outcome.is_success() { "PASS" } else { "FAIL" },
        "fob_uid": outcome.uid.as_ref().map(hex::encode_upper),
        "origin": outcome.origin,
        "elapsed_ms": outcome.elapsed.as_secs_f64() * 1000.0,
        "stage": outcome.error.as_ref().map(|e| format!("{:?}", e.stage)),
        "error": outcome.error.as_ref().map(|e| e.error.to_string()),
        "audit": outcome.record,
    })
}
