//! Errors of the journal.

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
    /// A stored row could not be interpreted (unknown kind, bad hash column).
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
}
