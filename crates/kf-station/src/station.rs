//! Shared plumbing of the station commands: sources, transports, audit output.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kf_perso::pipeline::FobOutcome;
use kf_perso::AuditRecord;
use kf_source::{
    CardKeys, ContainerSource, DevSampleSource, PoolOptions, ProvisioningSource, Settlement,
};

use crate::config::StationConfig;

/// A provisioning source, and the KLMS client when the source is the KLMS
/// (the audit uploader needs it too).
pub struct OpenedSource {
    /// The source.
    pub source: Box<dyn ProvisioningSource + Send>,
    /// The KLMS client, for `--source klms`.
    pub klms: Option<std::sync::Arc<kf_source::klms::KlmsClient>>,
}

/// Opens the provisioning source the configuration names.
pub fn open_source(config: &StationConfig) -> anyhow::Result<OpenedSource> {
    if config.source.kind == "klms" {
        let client = config.klms.client()?;
        let reader_id = config
            .reader_id()
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

fn offline_source(config: &StationConfig) -> anyhow::Result<Box<dyn ProvisioningSource + Send>> {
    let manifest_key = match &config.source.manifest_key {
        Some(path) => Some(kf_source::container::manifest::load_producer_key(path)?),
        None => None,
    };
    let pool_options = PoolOptions {
        done_dir: config.source.done_dir.clone(),
        keep_packages: config.source.keep_packages,
        manifest: kf_source::container::manifest::ManifestPolicy {
            key: manifest_key,
            required: config.source.require_manifest,
        },
    };
    match config.source.kind.as_str() {
        "dev" => Ok(match &config.source.dir {
            Some(dir) => Box::new(DevSampleSource::with_pool_options(
                dir.clone(),
                &pool_options,
            )?),
            // Without a pool the dev source makes synthetic packages in memory.
            None => Box::new(DevSampleSource::generated(64, None)?),
        }),
        "container" => {
            let Some(dir) = &config.source.dir else {
                bail!("the container source needs a pool directory (--source-dir DIR)");
            };
            Ok(Box::new(ContainerSource::open_with(
                dir.clone(),
                CardKeys::dev_sample()?,
                &pool_options,
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
    sim_fob_with_uid(None)
}

/// [`sim_fob`] with this UID (hex) instead of a random one.
#[cfg(feature = "sim")]
fn sim_fob_with_uid(uid: Option<&str>) -> anyhow::Result<kf_card::VirtualFob> {
    let mut config = kf_card::FobConfig::dev_sample();
    if let Some(uid) = uid {
        config = config.with_uid(kf_card::Uid::from_hex(uid)?);
    }
    Ok(kf_card::VirtualFob::new(config)?)
}

/// Provisions the in-process virtual fob (`--sim`). A factory build has no
/// virtual fob: there `--sim` is refused.
pub fn provision_sim(
    recorder: &Recorder,
    source: &mut dyn ProvisioningSource,
    options: &kf_perso::pipeline::PipelineOptions,
    uid: Option<&str>,
    rate: Option<kf_transport::BitRate>,
) -> anyhow::Result<FobOutcome> {
    #[cfg(feature = "sim")]
    {
        let fob = kf_transport::PacedCard::new(
            sim_fob_with_uid(uid)?,
            rate.map(kf_transport::LinkModel::new),
        );
        let link = kf_transport::loopback::LoopbackTransport::new(fob);
        let mut link = sim_fault_plan()?.build(link);
        recorder.provision(&mut link, source, options)
    }
    #[cfg(not(feature = "sim"))]
    {
        let _ = (recorder, source, options, uid, rate);
        Err(crate::cmd::sim_only::not_in_this_build("provision --sim"))
    }
}

/// Simulator builds only, for the journal's fault tests (APDU N counted
/// from 0):
/// * `KF_STATION_SIM_ABORT=before:N` or `after:N` makes the station process
///   abort before the virtual fob sees APDU N or right after it executed it:
///   the station losing power at that point.
/// * `KF_STATION_SIM_TEAR=before:N`, `after:N` or `lost:N` takes the fob away
///   before it sees APDU N, after it executed it, or loses its response: the
///   fob torn from the reader, or a link that drops the answer.
#[cfg(feature = "sim")]
fn sim_fault_plan() -> anyhow::Result<kf_transport::fault::FaultPlan> {
    use kf_transport::fault::FaultPlan;
    type AddFault = fn(FaultPlan, u64) -> FaultPlan;
    let mut plan = FaultPlan::new();
    let faults: [(&str, &[(&str, AddFault)]); 2] = [
        (
            "KF_STATION_SIM_ABORT",
            &[
                ("before", FaultPlan::abort_before),
                ("after", FaultPlan::abort_after),
            ],
        ),
        (
            "KF_STATION_SIM_TEAR",
            &[
                ("before", FaultPlan::tear_before),
                ("after", FaultPlan::tear_after),
                ("lost", FaultPlan::drop_response),
            ],
        ),
    ];
    for (var, kinds) in faults {
        let Some(spec) = std::env::var_os(var) else {
            continue;
        };
        let spec = spec.to_string_lossy();
        let parsed = spec.split_once(':').and_then(|(when, n)| {
            let add = kinds.iter().find(|(name, _)| *name == when)?.1;
            Some((add, n.parse::<u64>().ok()?))
        });
        let Some((add, n)) = parsed else {
            let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
            anyhow::bail!(
                "{var} must be one of {}, then :N; not {spec:?}",
                names.join(", ")
            );
        };
        plan = add(plan, n);
    }
    Ok(plan)
}

/// Where a fob's audit goes: the durable journal (started + outcome records)
/// and, optionally, a JSON-lines copy.
///
/// One recorder serves every reader of the station: the journal and its IRK
/// index sit behind one lock, taken per append, so the records of all
/// readers form one ordered chain while their fobs run in parallel.
pub struct Recorder {
    state: std::sync::Mutex<crate::journal::JournalState>,
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
        let indexes = crate::journal::Indexes::load(&journal)?;
        let uploader = match klms {
            Some(client) => Some(crate::klms::uploader(
                journal_path,
                kf_audit::JournalKey::load(&key_path)?,
                client,
            )?),
            None => None,
        };
        Ok(Recorder {
            state: std::sync::Mutex::new(crate::journal::JournalState {
                journal,
                indexes,
                repersonalize: false,
            }),
            audit_file: audit_file.map(AuditFile::new),
            uploader,
        })
    }

    /// Lets fobs that a SUCCESS outcome already names be personalized again
    /// (`--repersonalize`; by default they are refused at ReadUid).
    pub fn repersonalize(self, allow: bool) -> anyhow::Result<Recorder> {
        crate::journal::lock(&self.state)?.repersonalize = allow;
        Ok(self)
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
        &self,
        transport: &mut dyn kf_transport::transport::Transport,
        source: &mut dyn ProvisioningSource,
        options: &kf_perso::pipeline::PipelineOptions,
    ) -> anyhow::Result<FobOutcome> {
        self.provision_shown(transport, source, options, None)
    }

    /// [`Recorder::provision`], showing each stage and the outcome on the
    /// reader's console tile (after the journal has the outcome).
    pub fn provision_shown(
        &self,
        transport: &mut dyn kf_transport::transport::Transport,
        source: &mut dyn ProvisioningSource,
        options: &kf_perso::pipeline::PipelineOptions,
        console: Option<&crate::console::ReaderConsole>,
    ) -> anyhow::Result<FobOutcome> {
        let mut journal_hooks = crate::journal::JournalHooks::new(&self.state);
        let outcome = match console {
            Some(reader) => {
                let mut hooks = reader.hooks(&mut journal_hooks);
                kf_perso::pipeline::provision_fob(transport, source, options, &mut hooks)
            }
            None => {
                kf_perso::pipeline::provision_fob(transport, source, options, &mut journal_hooks)
            }
        };
        self.finish(&outcome)?;
        // Only now that the outcome is durable does the package leave the pool.
        settle(source, &outcome);
        if let Some(reader) = console {
            reader.finished(&outcome);
            if let Some(stats) = self.upload_stats() {
                reader.console().upload_status(&stats);
            }
        }
        Ok(outcome)
    }

    /// The audit uploader's counters now (None without an uploader).
    pub fn upload_stats(&self) -> Option<kf_audit::UploaderStats> {
        self.uploader.as_ref().map(kf_audit::Uploader::stats)
    }

    /// Records the outcome (journal first: it is the record of truth).
    pub fn finish(&self, outcome: &FobOutcome) -> anyhow::Result<()> {
        let mut state = crate::journal::lock(&self.state)?;
        let seq = crate::journal::append_outcome(&mut state.journal, outcome)?;
        state.indexes.note(&outcome.record, seq);
        // The copy is written under the same lock, in the journal's order.
        if let Some(file) = &self.audit_file {
            file.append(&outcome.record)?;
        }
        drop(state);
        if let Some(uploader) = &self.uploader {
            uploader.notify();
        }
        Ok(())
    }
}

/// What becomes of the fob's package (see [`Settlement`]): done on success;
/// kept bound to the fob when a STORE DATA was sent (part of the package may
/// be on it); rejected when its content was refused at FetchKeys or does not
/// fit the applet profile; otherwise released for the next fob.
pub fn settlement(outcome: &FobOutcome) -> Option<(&str, Settlement)> {
    let origin = outcome.origin.as_deref()?;
    let Some(error) = &outcome.error else {
        return Some((origin, Settlement::Done));
    };
    let settlement = if outcome.store_data_sent() {
        Settlement::Keep
    } else if error.stage == kf_perso::Stage::FetchKeys
        || matches!(error.error, kf_perso::pipeline::PipelineError::Plan(_))
    {
        Settlement::Reject
    } else {
        Settlement::Release
    };
    Some((origin, settlement))
}

/// Settles the fob's package with its source. A failure does not change
/// the fob's outcome (already in the journal) and leaves the package in the
/// pool, where its claim marker and IRK fingerprint keep it from reuse; it
/// is reported to the operator.
fn settle(source: &mut dyn ProvisioningSource, outcome: &FobOutcome) {
    if let Some((origin, settlement)) = settlement(outcome) {
        if let Err(e) = source.settle(origin, settlement) {
            tracing::warn!(package = origin, ?settlement, error = %e, "package not settled");
            errln!("warning: package {origin} not settled ({settlement:?}): {e}");
        }
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
        Some(e) => {
            let advice = outcome.retry_advice().map_or("", |a| a.as_str());
            format!(
                "FAIL  {uid}  {ms:.0} ms  at {:?}: {} ({advice})",
                e.stage, e.error
            )
        }
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
        "retry": outcome.retry_advice().map(|a| match a {
            kf_perso::pipeline::RetryAdvice::RetrySafe => "safe",
            kf_perso::pipeline::RetryAdvice::CheckFob => "check_fob",
        }),
        "audit": outcome.record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_perso::pipeline::{PipelineError, StageError};
    use kf_perso::Stage;

    fn outcome(failure: Option<(Stage, PipelineError)>, trace: &[&str]) -> FobOutcome {
        let mut record = AuditRecord::new("t", &[4, 1], "S", time::OffsetDateTime::UNIX_EPOCH);
        for apdu in trace {
            let bytes = hex::decode(apdu).unwrap_or_default();
            record.trace_command(kf_transport::RawApdu::sensitive(&bytes));
        }
        FobOutcome {
            record,
            error: failure.map(|(stage, error)| StageError { stage, error }),
            uid: Some(vec![4, 1]),
            origin: Some("PKG".into()),
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn the_package_of_a_fob_is_settled_by_how_far_it_got() {
        let settled = |o: &FobOutcome| settlement(o).map(|(n, s)| (n.to_owned(), s));
        let pkg = |s| Some(("PKG".to_owned(), s));
        assert_eq!(
            settled(&outcome(None, &["84E2000010"])),
            pkg(Settlement::Done)
        );
        // Failed before any STORE DATA: released for the next fob.
        let channel = outcome(
            Some((Stage::ExternalAuthenticate, PipelineError::ChannelNotOpen)),
            &["8050FF0008"],
        );
        assert_eq!(settled(&channel), pkg(Settlement::Release));
        // A STORE DATA was sent: the package stays with this fob.
        let cut = outcome(
            Some((Stage::PayloadDelivery, PipelineError::ChannelNotOpen)),
            &["8050FF0008", "84E2000010"],
        );
        assert_eq!(settled(&cut), pkg(Settlement::Keep));
        // Content refused at FetchKeys or not fitting the profile: rejected.
        let refused = outcome(Some((Stage::FetchKeys, PipelineError::NoInput)), &[]);
        assert_eq!(settled(&refused), pkg(Settlement::Reject));
        let plan = outcome(
            Some((
                Stage::PayloadDelivery,
                PipelineError::Plan(kf_perso::PlanError::TooManyBlocks { blocks: 300 }),
            )),
            &[],
        );
        assert_eq!(settled(&plan), pkg(Settlement::Reject));
        // Nothing fetched: nothing to settle.
        let mut none = outcome(Some((Stage::ReadUid, PipelineError::NoInput)), &[]);
        none.origin = None;
        assert_eq!(settled(&none), None);
    }
}
