//! Durable, hash-chained audit journal with a store-and-forward uploader.
//!
//! Data flow:
//!
//! ```text
//! pipeline ──append_started (before the first STORE DATA)──▶ ┐
//! pipeline ──append_outcome (after the last stage)─────────▶ ├─ Journal (SQLite, WAL, synchronous=FULL)
//!                                                           ┘   seq ‖ timestamp ‖ txid ‖ kind ‖ body
//!                                                               hash = SHA-256(prev_hash ‖ canonical bytes)
//! Journal ──pending_uploads──▶ Uploader thread ──AuditSink::upload──▶ KLMS /v1/audit
//!         ◀──mark_acknowledged / mark_rejected──┘ (retry with backoff while the sink is down)
//! Journal ──verify / list / show / export(json|csv)──▶ operator tools
//! ```
//!
//! Each append is one SQLite transaction committed with `synchronous=FULL`, so
//! a record that `append_*` returned is on disk before the caller touches the
//! fob again. Only `outcome` records are uploaded: a `started` record without an
//! outcome is the evidence of an interrupted run ([`Journal::unfinished`]).

mod error;
mod export;
mod journal;
mod record;
mod uploader;

pub use error::AuditError;
pub use export::{export, ExportFormat};
pub use journal::{Journal, ListFilter, VerifyReport};
pub use record::{BreakReason, BrokenLink, JournalRecord, RecordKind, UploadState, GENESIS_HASH};
pub use uploader::{AuditSink, UploadError, Uploader, UploaderConfig, UploaderStats};
