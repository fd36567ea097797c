//! Errors of the journal.

use std::path::PathBuf;

/// Errors of the audit journal and its uploader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The SQLite database could not be opened, read or written.
    #[error("audit journal database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A record body is not a JSON object, or a stored body is not valid JSON.
    #[error("audit record body is not a JSON object: {0}")]
    InvalidBody(String),
    /// A stored row could not be interpreted (wrong type, unknown kind, bad MAC column).
    #[error("audit journal row {seq} is malformed: {reason}")]
    MalformedRow {
        /// Sequence number of the row.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// No record has this sequence number.
    #[error("no audit record with sequence number {0}")]
    NotFound(i64),
    /// A file could not be read or written (a missing journal, an export).
    #[error("audit journal I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The uploader thread could not be started.
    #[error("uploader thread could not be started: {0}")]
    Thread(String),
    /// The journal key file is missing, unreadable or malformed.
    #[error("journal key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never the key).
        reason: String,
    },
    /// The key does not belong to this journal (its key check value differs).
    #[error("the journal key does not belong to this journal (key check value differs)")]
    KeyMismatch,
    /// The file is an SQLite database but not an audit journal.
    #[error("not an audit journal: {0}")]
    NotAJournal(String),
    /// A journal written by the earlier, unkeyed release.
    #[error(
        "this journal was written by an earlier release (unkeyed hash chain, format 1) and is \
         left unchanged; check it with `kf-station audit verify --legacy`, keep it as evidence \
         under another name (e.g. `mv JOURNAL JOURNAL.v1`) and start a new journal"
    )]
    LegacyJournal,
    /// A journal format this release does not know.
    #[error("unsupported journal format {0:?}")]
    UnsupportedFormat(String),
    /// The journal failed a check that appending relies on (head MAC, last link).
    #[error("journal tampered, refusing to append: {0}")]
    Tampered(String),
    /// A field is longer than the journal accepts.
    #[error("audit record field too long ({0} bytes)")]
    FieldTooLong(usize),
}
