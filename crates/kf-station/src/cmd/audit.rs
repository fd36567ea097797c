//! `kf-station audit list | show | export | verify`: read the durable journal.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use kf_audit::{ExportFormat, Journal, ListFilter};

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
    /// Check the hash chain; report the first broken link (exit 1).
    Verify {
        /// Journal database.
        #[arg(long, default_value_os_t = crate::paths::default_journal())]
        journal: PathBuf,
    },
}

/// Opens an existing journal; every error names the file (a missing,
/// truncated or non-SQLite file is the operator's input: exit 2).
fn open_journal(path: &std::path::Path) -> anyhow::Result<Journal> {
    Journal::open_existing(path).with_context(|| at(path))
}

fn at(path: &std::path::Path) -> String {
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
                    "{:>6}  {}  {:<8} {}  {:?}",
                    r.seq,
                    r.timestamp,
                    r.kind.as_str(),
                    r.transaction_id,
                    r.upload
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
        AuditCommand::Verify { journal } => {
            let report = open_journal(&journal)?
                .verify()
                .with_context(|| at(&journal))?;
            match &report.first_broken {
                None => {
                    outln!("journal OK: {} records, hash chain intact", report.records);
                    Ok(exit::OK)
                }
                Some(link) => {
                    outln!(
                        "journal BROKEN at record {link} ({} records checked)",
                        report.records
                    );
                    Ok(exit::FAILED)
                }
            }
        }
    }
}
