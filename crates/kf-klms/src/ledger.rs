//! One-time issuance ledger and audit store (SQLite, WAL, synchronous=FULL).
//!
//! Rule: a UID gets a key package once. A further request is refused unless
//! every earlier package expired without a successful audit, or an operator
//! recorded a re-issue (`kf-klms reissue`), which the next issuance consumes.
//!
//! A `SUCCESS` audit is checked against the issuance it names: when a later
//! package went to the same UID (the transaction expired and the UID was
//! issued again, or an operator re-issued it) the record is stored with the
//! flag `superseded` and does not complete anything; when it arrives after the
//! package's expiry it completes the issuance (the fob holds those keys) but
//! is stored with the flag `late`. See [`AuditFlag`].
//!
//! The server writes through [`LedgerStore::apply_batch`] (group commit:
//! several requests' writes in one durable transaction, each in its own
//! savepoint).
//!
//! Two backends implement [`LedgerStore`]: [`Ledger`] (embedded SQLite, the
//! default; one KLMS process owns the file) and [`postgres::PgLedger`]
//! (PostgreSQL; several KLMS instances share one database). [`LedgerLocation`]
//! picks one from the configuration.

mod anchoring;
pub mod postgres;

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// An operator action on the ledger (a re-issue, a chain reset): why, by
/// whom and when. An action without a reason is refused.
#[derive(Debug, Clone, Copy)]
pub struct OperatorAction<'a> {
    /// Why; blank is refused with [`LedgerError::MissingReason`].
    pub reason: &'a str,
    /// Who.
    pub operator: &'a str,
    /// When, in milliseconds since the Unix epoch.
    pub now_ms: i64,
}

impl<'a> OperatorAction<'a> {
    /// The action `reason`, by `operator`, at `now_ms`.
    pub fn new(reason: &'a str, operator: &'a str, now_ms: i64) -> Self {
        OperatorAction {
            reason,
            operator,
            now_ms,
        }
    }

    /// `Err(MissingReason)` when the reason is blank.
    pub(crate) fn check_reason(&self) -> Result<(), LedgerError> {
        if self.reason.trim().is_empty() {
            return Err(LedgerError::MissingReason);
        }
        Ok(())
    }
}

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed (the message never holds the connection URL).
    #[error("ledger database error: {}", postgres_message(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The ledger URL cannot be used (the message never holds the URL).
    #[error("ledger configuration: {0}")]
    Config(String),
    /// The UID already has a package that blocks a new one.
    #[error("{0}")]
    AlreadyIssued(String),
    /// The audit names a transaction the ledger does not know.
    #[error("unknown transaction id")]
    UnknownTransaction,
    /// The audit comes from another station than the one the package went to.
    #[error("transaction was issued to another station")]
    WrongStation,
    /// The audit's fob UID differs from the issued one.
    #[error("fob_uid does not match the issued package")]
    UidMismatch,
    /// An audit with this transaction id and different content exists.
    #[error("a different audit record for this transaction is already stored")]
    ConflictingAudit,
    /// A re-issue needs a reason.
    #[error("a re-issue needs a non-empty reason")]
    MissingReason,
    /// The group transaction this request was part of did not commit, so
    /// nothing of it is recorded.
    #[error("ledger commit failed: {0}")]
    CommitFailed(String),
    /// The ledger writer's queue is full (overload); nothing was recorded.
    #[error("the ledger is busy; retry later")]
    Busy,
    /// The ledger writer has stopped.
    #[error("the ledger writer is not running")]
    WriterStopped,
    /// A journal anchor upload was refused (gap, fork); an alert was recorded.
    #[error("{0}")]
    ChainRefused(crate::anchor::ChainRefusal),
    /// A receipt could not be signed.
    #[error("receipt: {0}")]
    Receipt(String),
}

/// A new issuance to record.
#[derive(Debug)]
pub struct NewIssuance<'a> {
    /// Transaction id.
    pub transaction_id: &'a str,
    /// UID, upper-case hex.
    pub fob_uid: &'a str,
    /// Client certificate CN.
    pub station: &'a str,
    /// Reader id from the request.
    pub reader_id: &'a str,
    /// Key version.
    pub key_version: u8,
    /// Issue time, Unix milliseconds.
    pub issued_at_ms: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: i64,
}

impl NewIssuance<'_> {
    /// An owned copy, for [`LedgerOp::Issue`].
    pub fn to_owned_issuance(&self) -> Issuance {
        Issuance {
            transaction_id: self.transaction_id.to_owned(),
            fob_uid: self.fob_uid.to_owned(),
            station: self.station.to_owned(),
            reader_id: self.reader_id.to_owned(),
            key_version: self.key_version,
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// Owned form of [`NewIssuance`] (a job queued to the ledger writer).
#[derive(Debug, Clone)]
pub struct Issuance {
    /// Transaction id.
    pub transaction_id: String,
    /// UID, upper-case hex.
    pub fob_uid: String,
    /// Client certificate CN.
    pub station: String,
    /// Reader id from the request.
    pub reader_id: String,
    /// Key version.
    pub key_version: u8,
    /// Issue time, Unix milliseconds.
    pub issued_at_ms: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: i64,
}

impl Issuance {
    fn borrowed(&self) -> NewIssuance<'_> {
        NewIssuance {
            transaction_id: &self.transaction_id,
            fob_uid: &self.fob_uid,
            station: &self.station,
            reader_id: &self.reader_id,
            key_version: self.key_version,
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// An audit record to store (see [`Ledger::store_audit`]).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Transaction id the audit reports on.
    pub transaction_id: String,
    /// Client certificate CN of the uploader.
    pub station: String,
    /// UID as sent in the audit.
    pub fob_uid: String,
    /// `SUCCESS` completes the issuance.
    pub overall_result: String,
    /// Canonical JSON body.
    pub body: String,
    /// Receive time, Unix milliseconds.
    pub now_ms: i64,
}

/// One record of a station's journal offered for anchoring.
#[derive(Debug, Clone)]
pub struct AnchorRequest {
    /// Client certificate CN of the uploader.
    pub station: String,
    /// The record's sequence number in the station's journal.
    pub seq: u64,
    /// The link of the record before it.
    pub prev_link: [u8; 32],
    /// The record's link.
    pub link: [u8; 32],
    /// The audit record carried by an `outcome` record.
    pub audit: Option<AuditRecord>,
    /// Receive time, Unix milliseconds.
    pub now_ms: i64,
}

/// One write of a group commit ([`Ledger::apply_batch`]).
#[derive(Debug, Clone)]
pub enum LedgerOp {
    /// Record an issuance if the one-time rule allows it.
    Issue(Issuance),
    /// Store an audit record.
    Audit(AuditRecord),
    /// Anchor one journal record of a station (and store its audit record).
    Anchor(AnchorRequest),
}

/// Result of one [`LedgerOp`] whose batch committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// The issuance is recorded (and durable once the batch committed).
    Issued,
    /// The audit was stored or recognised as a duplicate.
    Audit(AuditStored),
    /// The journal record was anchored, or was the same record again.
    Anchored(AuditStored),
}

/// Why a `SUCCESS` audit was stored with a mark (column `audits.flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFlag {
    /// A later package was issued for the same UID: the record is kept but
    /// does not complete the issuance (`superseded`).
    Superseded,
    /// Received after the package expired; it completes the issuance, marked
    /// for review (`late`).
    Late,
}

impl AuditFlag {
    /// Value stored in `audits.flag`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditFlag::Superseded => "superseded",
            AuditFlag::Late => "late",
        }
    }
}

/// Outcome of storing an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStored {
    /// First time this record was seen.
    New,
    /// First time seen, a `SUCCESS` stored with a flag.
    Flagged(AuditFlag),
    /// The identical record was already stored (idempotent re-upload).
    Duplicate,
}

/// Environment variable with the PostgreSQL ledger URL (overrides `ledger_url`
/// of the configuration file; keeps a password out of the file).
pub const LEDGER_URL_ENV: &str = "KF_KLMS_LEDGER_URL";

/// A PostgreSQL ledger URL as configured: zeroized on drop, and its `Debug`
/// shows [`postgres::describe`] (never the password).
#[derive(Clone)]
pub struct LedgerUrl(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerUrl({})", postgres::describe(&self.0))
    }
}

impl serde::Serialize for LedgerUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for LedgerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| LedgerUrl(zeroize::Zeroizing::new(s)))
    }
}

/// The client's error with its cause: the server's message and SQLSTATE for
/// a database error (the client's own text is only "db error"), else the
/// chain of sources (a TLS or I/O failure). Neither holds the URL.
fn postgres_message(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({}: {})", e, db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where the ledger lives (`ledger` path or `ledger_url` of the configuration).
#[derive(Clone)]
pub enum LedgerLocation {
    /// Embedded SQLite database file (default).
    Sqlite(std::path::PathBuf),
    /// PostgreSQL (`postgresql://user:password@host:port/db` or the key=value
    /// form, optionally over TLS); [`std::fmt::Display`] shows
    /// [`postgres::PgTarget::describe`], never the password.
    Postgres(postgres::PgTarget),
}

impl std::fmt::Debug for LedgerLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for LedgerLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerLocation::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            LedgerLocation::Postgres(target) => write!(f, "PostgreSQL {}", target.describe()),
        }
    }
}

impl LedgerLocation {
    /// Opens the ledger for writing (creating or migrating its schema).
    pub fn open(&self) -> Result<Box<dyn LedgerStore>, LedgerError> {
        self.open_waiting(DEFAULT_LOCK_WAIT)
    }

    /// [`LedgerLocation::open`]; a SQLite ledger waits up to `lock_wait` for
    /// a lock another connection holds (PostgreSQL queues row locks itself).
    pub fn open_waiting(&self, lock_wait: Duration) -> Result<Box<dyn LedgerStore>, LedgerError> {
        Ok(match self {
            LedgerLocation::Sqlite(path) => Box::new(Ledger::open_waiting(path, lock_wait)?),
            LedgerLocation::Postgres(target) => {
                Box::new(off_runtime(|| postgres::PgLedger::connect(target))?)
            }
        })
    }

    /// Opens a second, read-only connection (after [`LedgerLocation::open`]).
    pub fn open_reader(&self) -> Result<Box<dyn LedgerStore>, LedgerError> {
        Ok(match self {
            LedgerLocation::Sqlite(path) => Box::new(Ledger::open_reader(path)?),
            LedgerLocation::Postgres(target) => {
                Box::new(off_runtime(|| postgres::PgLedger::connect_reader(target))?)
            }
        })
    }
}

/// Runs a blocking PostgreSQL call on a thread of its own: the synchronous
/// client drives its connection with a runtime of its own, which cannot start
/// on a thread that is inside the server's async runtime.
fn off_runtime<T: Send>(
    f: impl FnOnce() -> Result<T, LedgerError> + Send,
) -> Result<T, LedgerError> {
    std::thread::scope(|s| {
        s.spawn(f).join().unwrap_or_else(|_| {
            Err(LedgerError::Config(
                "the ledger connection thread panicked".into(),
            ))
        })
    })
}

/// The operations of the issuance ledger, the same on every backend (see
/// the module documentation for the rules). Calls block: the server makes
/// them from the ledger writer thread or the blocking pool, never from an
/// async task.
pub trait LedgerStore: Send {
    /// Read-only pre-check of the one-time rule (the issuance itself re-checks
    /// atomically); lets the server skip claiming content for a refused UID.
    fn check_issuable(&mut self, fob_uid: &str, now_ms: i64) -> Result<(), LedgerError>;
    /// Records an issuance if the one-time rule allows it (one durable transaction).
    fn try_issue(&mut self, new: &NewIssuance<'_>) -> Result<(), LedgerError>;
    /// Group commit: applies `ops` in order inside one transaction, each in
    /// its own savepoint, and commits once. Per-op results count only when
    /// the call returns `Ok`; on `Err` nothing of the batch is recorded.
    fn apply_batch(
        &mut self,
        ops: &[LedgerOp],
    ) -> Result<Vec<Result<LedgerOutcome, LedgerError>>, LedgerError>;
    /// Records an operator re-issue for `fob_uid`; the next request consumes it.
    fn record_reissue(
        &mut self,
        fob_uid: &str,
        action: &OperatorAction<'_>,
    ) -> Result<i64, LedgerError>;
    /// Stores an audit record, idempotent by transaction id; a `SUCCESS`
    /// marks the issuance completed.
    fn store_audit(&mut self, record: &AuditRecord) -> Result<AuditStored, LedgerError>;
    /// The stored audit body of a transaction, if any.
    fn audit_body(&mut self, transaction_id: &str) -> Result<Option<String>, LedgerError>;
    /// The flag of a stored audit (`None` when unflagged or not stored).
    fn audit_flag(&mut self, transaction_id: &str) -> Result<Option<String>, LedgerError>;
    /// Whether a `SUCCESS` audit completed the issuance of a transaction.
    fn is_completed(&mut self, transaction_id: &str) -> Result<bool, LedgerError>;
    /// Every station's anchored journal head ([`crate::anchor`]).
    fn chain_states(&mut self) -> Result<Vec<crate::anchor::ChainState>, LedgerError>;
    /// The anchored head of one station: last sequence number and link.
    fn chain_head(&mut self, station: &str) -> Result<(u64, [u8; 32]), LedgerError>;
    /// Operator reset of a station's anchor (recorded as an alert); returns
    /// the sequence number of the head that was dropped.
    fn reset_chain(
        &mut self,
        station: &str,
        action: &OperatorAction<'_>,
    ) -> Result<u64, LedgerError>;
    /// Number of issuances recorded for a UID.
    fn issuance_count(&mut self, fob_uid: &str) -> Result<u64, LedgerError>;
}

/// Implements [`LedgerStore`] for [`Ledger`] by calling its inherent
/// methods of the same name, which stay callable without the trait.
macro_rules! forward_to_inherent {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl LedgerStore for Ledger {
            $(fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, LedgerError> {
                Ledger::$name(self, $($arg),*)
            })*
        }
    };
}

forward_to_inherent! {
    fn check_issuable(fob_uid: &str, now_ms: i64) -> ();
    fn try_issue(new: &NewIssuance<'_>) -> ();
    fn apply_batch(ops: &[LedgerOp]) -> Vec<Result<LedgerOutcome, LedgerError>>;
    fn record_reissue(fob_uid: &str, action: &OperatorAction<'_>) -> i64;
    fn store_audit(record: &AuditRecord) -> AuditStored;
    fn audit_body(transaction_id: &str) -> Option<String>;
    fn audit_flag(transaction_id: &str) -> Option<String>;
    fn is_completed(transaction_id: &str) -> bool;
    fn chain_states() -> Vec<crate::anchor::ChainState>;
    fn chain_head(station: &str) -> (u64, [u8; 32]);
    fn reset_chain(station: &str, action: &OperatorAction<'_>) -> u64;
    fn issuance_count(fob_uid: &str) -> u64;
}

/// The refusal of the one-time rule; `completed`: a `SUCCESS` audit
/// completed the blocking issuance (else it is still valid).
pub(crate) fn already_issued(completed: bool) -> LedgerError {
    LedgerError::AlreadyIssued(
        if completed {
            "the fob was already provisioned successfully; an operator re-issue is required"
        } else {
            "a key package for this fob is still valid"
        }
        .to_owned(),
    )
}

/// The flag of a new audit record: only a `SUCCESS` is flagged, `superseded`
/// when a later package went to the same UID, else `late` after the expiry.
pub(crate) fn audit_flag_for(
    success: bool,
    superseded: bool,
    now_ms: i64,
    expires_at_ms: i64,
) -> Option<AuditFlag> {
    if !success {
        None
    } else if superseded {
        Some(AuditFlag::Superseded)
    } else if now_ms > expires_at_ms {
        Some(AuditFlag::Late)
    } else {
        None
    }
}

/// The SQLite ledger database (embedded default).
pub struct Ledger {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS issuances (
    transaction_id TEXT PRIMARY KEY,
    fob_uid        TEXT NOT NULL,
    station        TEXT NOT NULL,
    reader_id      TEXT NOT NULL,
    key_version    INTEGER NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    completed_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS issuances_uid ON issuances(fob_uid);
CREATE TABLE IF NOT EXISTS reissues (
    id          INTEGER PRIMARY KEY,
    fob_uid     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    operator    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    consumed_by TEXT
);
CREATE TABLE IF NOT EXISTS audits (
    transaction_id TEXT PRIMARY KEY,
    station        TEXT NOT NULL,
    overall_result TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
);
";

/// How long a SQLite ledger call waits, by default, for a lock that another
/// connection holds (a backup, an `sqlite3` shell, a second KLMS process)
/// before it fails, in milliseconds.
pub const DEFAULT_LOCK_WAIT_MS: u64 = 10_000;
const DEFAULT_LOCK_WAIT: Duration = Duration::from_millis(DEFAULT_LOCK_WAIT_MS);

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        Ledger::open_waiting(path, DEFAULT_LOCK_WAIT)
    }

    /// [`Ledger::open`], waiting up to `lock_wait` for a lock another
    /// connection holds.
    pub fn open_waiting(
        path: impl AsRef<Path>,
        lock_wait: Duration,
    ) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(lock_wait)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let has_flag: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('audits') WHERE name = 'flag'",
            [],
            |r| r.get(0),
        )?;
        if has_flag == 0 {
            conn.execute_batch("ALTER TABLE audits ADD COLUMN flag TEXT")?;
        }
        conn.execute_batch(anchoring::SCHEMA)?;
        Ok(Ledger { conn })
    }

    /// Opens an existing ledger for reads only (a second connection next to
    /// the writer; WAL lets it read without waiting for the writer's commits).
    pub fn open_reader(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::open(path)?;
        ledger.conn.pragma_update(None, "query_only", "ON")?;
        Ok(ledger)
    }

    /// Read-only pre-check of the one-time rule (the issuance itself re-checks
    /// atomically); lets the server skip claiming content for a refused UID.
    pub fn check_issuable(&self, fob_uid: &str, now_ms: i64) -> Result<(), LedgerError> {
        blocking_state(&self.conn, fob_uid, now_ms).map(|_| ())
    }

    /// Records an issuance if the one-time rule allows it (one durable transaction).
    pub fn try_issue(&mut self, new: &NewIssuance<'_>) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        issue_in(&tx, new)?;
        tx.commit()?;
        Ok(())
    }

    /// Group commit: applies `ops` in order inside one IMMEDIATE transaction
    /// and commits it once (one fsync with synchronous=FULL for the batch).
    ///
    /// Each op runs in its own savepoint, so an op refused by its rule (or
    /// failing in SQLite) is rolled back alone and later ops see the effects
    /// of the earlier successful ones (two issuances of one UID in a batch:
    /// the second is refused). The per-op results are only meaningful when the
    /// call returns `Ok`, i.e. after the commit; on `Err` nothing of the batch
    /// is recorded.
    pub fn apply_batch(
        &mut self,
        ops: &[LedgerOp],
    ) -> Result<Vec<Result<LedgerOutcome, LedgerError>>, LedgerError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let sp = tx.savepoint()?;
            let result = match op {
                LedgerOp::Issue(new) => {
                    issue_in(&sp, &new.borrowed()).map(|()| LedgerOutcome::Issued)
                }
                LedgerOp::Audit(a) => store_audit_in(&sp, a).map(LedgerOutcome::Audit),
                LedgerOp::Anchor(a) => anchoring::anchor_in(&sp, a).map(LedgerOutcome::Anchored),
            };
            if result.is_ok() {
                sp.commit()?;
            } else {
                // Rolls back to the savepoint and releases it: only this op is undone.
                sp.finish()?;
            }
            // A refused anchor leaves an alert, outside the rolled-back savepoint.
            if let (LedgerOp::Anchor(a), Err(LedgerError::ChainRefused(why))) = (op, &result) {
                anchoring::record_alert(
                    &tx,
                    &crate::anchor::Alert::refused(&a.station, a.seq, why, a.now_ms),
                )?;
            }
            // Some SQLite errors (I/O, full disk) roll back the whole
            // transaction; later ops would then run in autocommit mode and
            // commit on their own, so the batch must stop here.
            if tx.is_autocommit() {
                return Err(LedgerError::CommitFailed(
                    "the transaction was rolled back by SQLite".to_owned(),
                ));
            }
            results.push(result);
        }
        tx.commit()?;
        Ok(results)
    }

    /// Records an operator re-issue for `fob_uid`; the next request consumes it.
    pub fn record_reissue(
        &mut self,
        fob_uid: &str,
        action: &OperatorAction<'_>,
    ) -> Result<i64, LedgerError> {
        action.check_reason()?;
        self.conn.execute(
            "INSERT INTO reissues (fob_uid, reason, operator, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![fob_uid, action.reason, action.operator, action.now_ms],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Stores an audit record, idempotent by transaction id; a `SUCCESS`
    /// marks the issuance completed.
    pub fn store_audit(&mut self, record: &AuditRecord) -> Result<AuditStored, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored = store_audit_in(&tx, record)?;
        if stored != AuditStored::Duplicate {
            tx.commit()?;
        }
        Ok(stored)
    }

    /// The stored audit body of a transaction, if any.
    pub fn audit_body(&self, transaction_id: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT body FROM audits WHERE transaction_id = ?1",
                params![transaction_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The flag of a stored audit (`None` when unflagged or not stored).
    pub fn audit_flag(&self, transaction_id: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT flag FROM audits WHERE transaction_id = ?1",
                params![transaction_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Whether a `SUCCESS` audit completed the issuance of a transaction.
    pub fn is_completed(&self, transaction_id: &str) -> Result<bool, LedgerError> {
        let completed: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT completed_at_ms FROM issuances WHERE transaction_id = ?1",
                params![transaction_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(matches!(completed, Some(Some(_))))
    }

    /// Every station's anchored journal head ([`crate::anchor`]).
    pub fn chain_states(&self) -> Result<Vec<crate::anchor::ChainState>, LedgerError> {
        anchoring::chain_states(&self.conn)
    }

    /// The anchored head of one station: last sequence number and link.
    pub fn chain_head(&self, station: &str) -> Result<(u64, [u8; 32]), LedgerError> {
        anchoring::head(&self.conn, station)
    }

    /// Operator reset of a station's anchor (recorded as an alert); returns
    /// the sequence number of the head that was dropped.
    pub fn reset_chain(
        &mut self,
        station: &str,
        action: &OperatorAction<'_>,
    ) -> Result<u64, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = anchoring::reset_in(&tx, station, action)?;
        tx.commit()?;
        Ok(seq)
    }

    /// Number of issuances recorded for a UID.
    pub fn issuance_count(&self, fob_uid: &str) -> Result<u64, LedgerError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM issuances WHERE fob_uid = ?1",
            params![fob_uid],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Check + insert of one issuance inside the caller's transaction.
fn issue_in(conn: &Connection, new: &NewIssuance<'_>) -> Result<(), LedgerError> {
    if let Some(reissue_id) = blocking_state(conn, new.fob_uid, new.issued_at_ms)? {
        conn.prepare_cached("UPDATE reissues SET consumed_by = ?2 WHERE id = ?1")?
            .execute(params![reissue_id, new.transaction_id])?;
    }
    conn.prepare_cached(
        "INSERT INTO issuances (transaction_id, fob_uid, station, reader_id, key_version,
                                issued_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.transaction_id,
        new.fob_uid,
        new.station,
        new.reader_id,
        new.key_version,
        new.issued_at_ms,
        new.expires_at_ms
    ])?;
    Ok(())
}

/// Refuses an audit from another station than the one its transaction was
/// issued to, or naming another fob.
pub(crate) fn check_audit_issuance(
    record: &AuditRecord,
    issued_station: &str,
    issued_uid: &str,
) -> Result<(), LedgerError> {
    if issued_station != record.station {
        return Err(LedgerError::WrongStation);
    }
    if !issued_uid.eq_ignore_ascii_case(&record.fob_uid) {
        return Err(LedgerError::UidMismatch);
    }
    Ok(())
}

/// An audit sent again for a transaction that has one stored: the same body
/// is a duplicate, another body a conflict.
pub(crate) fn audit_stored_again(existing: &str, body: &str) -> Result<AuditStored, LedgerError> {
    if existing == body {
        Ok(AuditStored::Duplicate)
    } else {
        Err(LedgerError::ConflictingAudit)
    }
}

/// Checks and stores one audit record inside the caller's transaction.
pub(crate) fn store_audit_in(
    conn: &Connection,
    record: &AuditRecord,
) -> Result<AuditStored, LedgerError> {
    let AuditRecord {
        transaction_id,
        station,
        overall_result,
        body,
        now_ms,
        ..
    } = record;
    let issued: Option<(String, String, i64, i64)> = conn
        .prepare_cached(
            "SELECT station, fob_uid, issued_at_ms, expires_at_ms FROM issuances
             WHERE transaction_id = ?1",
        )?
        .query_row(params![transaction_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((issued_station, issued_uid, issued_at_ms, expires_at_ms)) = issued else {
        return Err(LedgerError::UnknownTransaction);
    };
    check_audit_issuance(record, &issued_station, &issued_uid)?;
    let existing: Option<String> = conn
        .prepare_cached("SELECT body FROM audits WHERE transaction_id = ?1")?
        .query_row(params![transaction_id], |r| r.get(0))
        .optional()?;
    if let Some(existing) = existing {
        return audit_stored_again(&existing, body);
    }
    let success = overall_result == "SUCCESS";
    let superseded = success
        && conn
            .prepare_cached(
                "SELECT 1 FROM issuances WHERE fob_uid = ?1 AND issued_at_ms > ?2
                 AND transaction_id != ?3 LIMIT 1",
            )?
            .exists(params![issued_uid, issued_at_ms, transaction_id])?;
    let flag = audit_flag_for(success, superseded, *now_ms, expires_at_ms);
    conn.prepare_cached(
        "INSERT INTO audits (transaction_id, station, overall_result, body, received_at_ms, flag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        transaction_id,
        station,
        overall_result,
        body,
        now_ms,
        flag.map(AuditFlag::as_str)
    ])?;
    if success && flag != Some(AuditFlag::Superseded) {
        conn.prepare_cached("UPDATE issuances SET completed_at_ms = ?2 WHERE transaction_id = ?1")?
            .execute(params![transaction_id, now_ms])?;
    }
    Ok(flag.map_or(AuditStored::New, AuditStored::Flagged))
}

/// `Ok(None)`: free; `Ok(Some(id))`: blocked but operator re-issue `id` may be
/// consumed; `Err(AlreadyIssued)`: refused.
fn blocking_state(
    conn: &Connection,
    fob_uid: &str,
    now_ms: i64,
) -> Result<Option<i64>, LedgerError> {
    let blocking: Option<Option<i64>> = conn
        .prepare_cached(
            "SELECT completed_at_ms FROM issuances
             WHERE fob_uid = ?1 AND (completed_at_ms IS NOT NULL OR expires_at_ms > ?2)
             ORDER BY issued_at_ms DESC LIMIT 1",
        )?
        .query_row(params![fob_uid, now_ms], |r| r.get(0))
        .optional()?;
    let Some(completed) = blocking else {
        return Ok(None);
    };
    let reissue: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM reissues WHERE fob_uid = ?1 AND consumed_by IS NULL ORDER BY id LIMIT 1",
        )?
        .query_row(params![fob_uid], |r| r.get(0))
        .optional()?;
    match reissue {
        Some(id) => Ok(Some(id)),
        None => Err(already_issued(completed.is_some())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-time rule survives a power cut only when each issuance commit
    /// reaches the disk: WAL with synchronous=FULL (2) on every connection.
    #[test]
    fn writer_and_reader_connections_are_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let durability = |l: &Ledger| {
            let mode: String = l
                .conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            let sync: i64 = l
                .conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            (mode, sync)
        };
        let writer = Ledger::open(&path).unwrap();
        assert_eq!(durability(&writer), ("wal".to_string(), 2));
        let reader = Ledger::open_reader(&path).unwrap();
        assert_eq!(durability(&reader), ("wal".to_string(), 2));
    }

    fn issuance<'a>(txid: &'a str, now: i64) -> NewIssuance<'a> {
        NewIssuance {
            transaction_id: txid,
            fob_uid: "04112233445566778899",
            station: "station-01",
            reader_id: "R1",
            key_version: 1,
            issued_at_ms: now,
            expires_at_ms: now + 5000,
        }
    }

    fn op_issue(txid: &str, uid: &str, now: i64) -> LedgerOp {
        let new = NewIssuance {
            fob_uid: uid,
            ..issuance(txid, now)
        };
        LedgerOp::Issue(new.to_owned_issuance())
    }

    fn op_audit(txid: &str, uid: &str, result: &str) -> LedgerOp {
        LedgerOp::Audit(AuditRecord {
            transaction_id: txid.to_owned(),
            station: "station-01".to_owned(),
            fob_uid: uid.to_owned(),
            overall_result: result.to_owned(),
            body: format!("{{\"r\":\"{result}\"}}"),
            now_ms: 1500,
        })
    }

    const UID_A: &str = "04112233445566778899";
    const UID_B: &str = "04AABBCCDDEEFF001122";

    #[test]
    fn batch_applies_the_one_time_rule_in_order_and_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut l = Ledger::open(&path).unwrap();
        let results = l
            .apply_batch(&[
                op_issue("t1", UID_A, 1000),
                op_issue("t2", UID_A, 1001),
                op_issue("t3", UID_B, 1002),
                op_audit("t3", UID_B, "SUCCESS"),
            ])
            .unwrap();
        assert!(matches!(results[0], Ok(LedgerOutcome::Issued)));
        assert!(matches!(results[1], Err(LedgerError::AlreadyIssued(_))));
        assert!(matches!(results[2], Ok(LedgerOutcome::Issued)));
        // An audit sees the issuance committed earlier in the same batch.
        assert!(matches!(
            results[3],
            Ok(LedgerOutcome::Audit(AuditStored::New))
        ));
        drop(l);
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.issuance_count(UID_A).unwrap(), 1);
        assert_eq!(l.issuance_count(UID_B).unwrap(), 1);
        assert!(l.audit_body("t3").unwrap().is_some());
    }

    #[test]
    fn batch_that_cannot_start_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut l = Ledger::open_waiting(&path, Duration::from_millis(50)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(matches!(
            l.apply_batch(&[op_issue("t1", UID_A, 1000), op_issue("t2", UID_B, 1000)]),
            Err(LedgerError::Database(_))
        ));
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(l.issuance_count(UID_A).unwrap(), 0);
        assert_eq!(l.issuance_count(UID_B).unwrap(), 0);
    }
}
