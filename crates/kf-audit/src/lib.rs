//! Durable audit journal with a keyed chain, and a store-and-forward uploader.
//!
//! Data flow:
//!
//! ```text
//! pipeline ──append(started) (before the first STORE DATA)─▶ ┐
//! pipeline ──append(outcome) (after the last stage)────────▶ ├─ Journal (SQLite, WAL, synchronous=FULL)
//!                                                           ┘   records: seq ‖ timestamp ‖ txid ‖ kind ‖ body ‖ link
//!                                                               link = HMAC-SHA-256(journal key, prev link ‖ seq ‖ fields)
//!                                                               head = (seq, link, MAC)  uploads = MACed state per outcome
//! Journal ──pending_uploads──▶ Uploader thread (re-checks each link) ──AuditSink::upload──▶ KLMS /v1/audit
//!         ◀──mark_acknowledged(receipt) / mark_rejected──┘ (retry with backoff while the sink is down)
//! JournalReader (read-only) ──verify(key) / list / show / export(json|csv)──▶ operator tools
//! ```
//!
//! Each append is one SQLite transaction committed with `synchronous=FULL`, so
//! a record that `append_*` returned is on disk before the caller touches the
//! fob again. Only `outcome` records are uploaded: a `started` record without an
//! outcome is the evidence of an interrupted run ([`Journal::unfinished`]).
//! The encoding of every MAC is documented in [`record`] and pinned by golden
//! vectors; the key handling in [`JournalKey`].
//!
//! Depends on `kf-files` and `kf-secret-file` only; never on HTTP, the KLMS or the
//! pipeline (the KLMS client that uploads records lives in `kf-source`).

mod error;
mod export;
pub mod identifier;
mod journal;
mod key;
mod legacy;
pub mod receipt;
pub mod record;
mod timestamp;
mod uploader;
mod verify;

pub use error::AuditError;
pub use export::{export, ExportFormat};
pub use journal::{Head, Journal, ListFilter, FORMAT};
pub use key::JournalKey;
pub use legacy::{verify_legacy, LegacyReport};
pub use record::{
    JournalRecord, RecordKind, UploadState, FINGERPRINT_LEN, GENESIS_LINK, IRK_FINGERPRINT_LABEL,
};
pub use timestamp::format_timestamp;
pub use uploader::{AuditSink, UploadError, Uploader, UploaderConfig, UploaderStats};
pub use verify::{Damage, Finding, JournalReader, VerifyReport};
