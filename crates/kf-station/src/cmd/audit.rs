//! `kf-station audit list | show | export | verify`: read the durable journal.
//!
//! Every subcommand opens the journal read-only (it never creates, migrates
//! or writes it). `verify` exits 0 when the journal is intact, 1 with the
//! first finding when it was tampered with or truncated, 2 when it cannot be
//! checked (missing file, missing or wrong key, not a journal).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use kf_audit::{ExportFormat, JournalKey, JournalReader, ListFilter};

use crate::exit;

/// Audit subcommands (all take `--journal FILE`).
#[derive(Subcommand)]
pub enum AuditCommand {
    /// One line per record: seq, time, kind, transaction, upload state.
    List {
        /// Journal database.
        #[arg(long, default_value_os_t = crate::paths::default_journal())]
        journal: PathBuf,
        /// Only records not yet acknowledged by the KLMS.
        #[arg(long)]
        pending: bool,
        /// At most N records.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One record in full (JSON).
    Show {
        /// Journal database.
        #[arg(long, default_value_os_t = crate::paths::default_journal())]
        journal: PathBuf,
        /// Sequence number.
        seq: i64,
    },
    /// Every record as JSON or CSV on stdout.
    Export {
        /// Journal database.
        #[arg(long, default_value_os_t = crate::paths::default_journal())]
        journal: PathBuf,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Check the keyed chain, the head and the upload states; exit 1 with the
    /// first finding when tampered or truncated, 2 when it cannot be checked.
    Verify {
        /// Journal database.
        #[arg(long, default_value_os_t = crate::paths::default_journal())]
        journal: PathBuf,
        /// Journal key file (default: the journal's path with `.key` appended).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Check a journal of the earlier release (unkeyed chain, format 1).
        #[arg(long, conflicts_with_all = ["key", "klms_key", "against_klms"])]
        legacy: bool,
        /// KLMS receipt public key (PEM, from `kf-klms receipt-key`): every
        /// acknowledgement must carry a receipt whose signature verifies.
        #[arg(long)]
        klms_key: Option<PathBuf>,
        /// Also ask the KLMS (the `[klms]` settings of this station
        /// configuration) for the anchored head: acknowledged records that
        /// were removed, or a journal forked after them, are findings.
        #[arg(long, value_name = "STATION_TOML")]
        against_klms: Option<PathBuf>,
    },
}

/// Opens an existing journal read-only; every error names the file (a
/// missing, truncated or non-SQLite file is the operator's input: exit 2).
fn open_journal(path: &Path) -> anyhow::Result<JournalReader> {
    JournalReader::open(path).with_context(|| at(path))
}

fn at(path: &Path) -> String {
    format!("journal {}", path.display())
}

/// Runs an audit subcommand.
pub fn run(command: AuditCommand) -> u8 {
    match audit(command) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::BAD_INPUT
        }
    }
}

fn audit(command: AuditCommand) -> anyhow::Result<u8> {
    match command {
        AuditCommand::List {
            journal,
            pending,
            limit,
        } => {
            let path = journal;
            let journal = open_journal(&path)?;
            let filter = ListFilter {
                pending_only: pending,
                limit,
                ..ListFilter::default()
            };
            for r in journal.list(&filter).with_context(|| at(&path))? {
                outln!(
                    "{:>6}  {}  {:<8} {}  {}",
                    r.seq,
                    r.timestamp,
                    r.kind.as_str(),
                    r.transaction_id,
                    match (&r.kind, &r.upload) {
                        (kf_audit::RecordKind::Started, _) => "-".to_owned(),
                        (_, kf_audit::UploadState::Rejected(why)) => format!("rejected: {why}"),
                        (_, state) => state.name().to_owned(),
                    }
                );
            }
            Ok(exit::OK)
        }
        AuditCommand::Show { journal, seq } => {
            let record = open_journal(&journal)?
                .show(seq)
                .with_context(|| at(&journal))?;
            let mut value = serde_json::to_value(&record)?;
            value["body"] = record.body_json()?;
            outln!("{}", serde_json::to_string_pretty(&value)?);
            Ok(exit::OK)
        }
        AuditCommand::Export { journal, format } => {
            let format: ExportFormat = format
                .parse()
                .map_err(|_| anyhow::anyhow!("--format must be json or csv"))?;
            let path = journal;
            let journal = open_journal(&path)?;
            let mut out = crate::out::Stdout::lock();
            kf_audit::export(&journal, &ListFilter::default(), format, &mut out)
                .with_context(|| at(&path))?;
            Ok(exit::OK)
        }
        AuditCommand::Verify {
            journal,
            key,
            legacy,
            klms_key,
            against_klms,
        } => {
            if legacy {
                return verify_legacy(&journal);
            }
            let key_path = key.unwrap_or_else(|| JournalKey::default_path(&journal));
            let reader = open_journal(&journal)?;
            let key = JournalKey::load(&key_path)?;
            let klms_key = klms_key
                .map(|p| -> anyhow::Result<_> {
                    let pem = kf_files::read_regular_text(
                        &p,
                        kf_files::PEM_MAX_BYTES,
                        kf_files::Links::Follow,
                    )
                    .with_context(|| format!("KLMS key {}", p.display()))?;
                    kf_audit::receipt::klms_key_from_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("KLMS key {}: {e}", p.display()))
                })
                .transpose()?;
            let anchored = against_klms
                .map(|config| -> anyhow::Result<_> {
                    let config = crate::config::StationConfig::load(Some(&config))?;
                    Ok(config.klms.client()?.chain_head()?)
                })
                .transpose()?;
            let mut report = reader
                .verify_with_receipts(&key, klms_key.as_ref())
                .with_context(|| at(&journal))?;
            if let (None, Some(anchored)) = (&report.finding, &anchored) {
                report.finding = against_anchor(&reader, &report, anchored)?;
            }
            if let Some(anchored) = &anchored {
                outln!(
                    "KLMS anchor for {}: record {}",
                    anchored.station_id,
                    anchored.seq
                );
            }
            match &report.finding {
                None => {
                    outln!(
                        "journal OK: {} records, keyed chain intact, head at record {}, {} acknowledged by the KLMS",
                        report.records,
                        report.head_seq,
                        report.acknowledged
                    );
                    Ok(exit::OK)
                }
                Some(finding) => {
                    outln!(
                        "journal TAMPERED at {finding} ({} records intact before it)",
                        report.records
                    );
                    Ok(exit::FAILED)
                }
            }
        }
    }
}

/// The journal against the KLMS's anchored head: the anchored record must be
/// present with the anchored link.
fn against_anchor(
    reader: &JournalReader,
    report: &kf_audit::VerifyReport,
    anchored: &kf_audit::receipt::ChainHead,
) -> anyhow::Result<Option<kf_audit::Finding>> {
    let seq = i64::try_from(anchored.seq).context("anchored sequence number out of range")?;
    if seq == 0 {
        return Ok(None);
    }
    if report.head_seq < seq {
        return Ok(Some(kf_audit::Finding {
            seq: report.head_seq + 1,
            damage: kf_audit::Damage::Truncated { head_seq: seq },
        }));
    }
    let record = reader.show(seq)?;
    Ok(
        (!record.link.eq_ignore_ascii_case(&anchored.link)).then_some(kf_audit::Finding {
            seq,
            damage: kf_audit::Damage::LinkMismatch,
        }),
    )
}

fn verify_legacy(journal: &Path) -> anyhow::Result<u8> {
    let report = kf_audit::verify_legacy(journal).with_context(|| at(journal))?;
    match report.first_broken {
        None => {
            outln!(
                "format-1 journal: {} records, unkeyed hash chain intact (proves no tampering: anyone can recompute it)",
                report.records
            );
            Ok(exit::OK)
        }
        Some(seq) => {
            outln!(
                "format-1 journal BROKEN at record {seq} ({} records before it)",
                report.records
            );
            Ok(exit::FAILED)
        }
    }
}
