//! One-time issuance ledger and audit store (SQLite, WAL, synchronous=FULL).
//!
//! Rule: a UID gets a key package once. A further request is refused unless
//! every earlier package expired without a successful audit, or an operator
//! recorded a re-issue (`kf-klms reissue`), which the next issuance consumes.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Ledger errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger database error: {0}")]
    Database(#[from] rusqlite::Error),
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

/// Outcome of storing an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStored {
    /// First time this record was seen.
    New,
    /// The identical record was already stored (idempotent re-upload).
    Duplicate,
}

/// The ledger database.
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

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Ledger { conn })
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
        if let Some(reissue_id) = blocking_state(&tx, new.fob_uid, new.issued_at_ms)? {
            tx.execute(
                "UPDATE reissues SET consumed_by = ?2 WHERE id = ?1",
                params![reissue_id, new.transaction_id],
            )?;
        }
        tx.execute(
            "INSERT INTO issuances (transaction_id, fob_uid, station, reader_id, key_version,
                                    issued_at_ms, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.transaction_id,
                new.fob_uid,
                new.station,
                new.reader_id,
                new.key_version,
                new.issued_at_ms,
                new.expires_at_ms
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records an operator re-issue for `fob_uid`; the next request consumes it.
    pub fn record_reissue(
        &mut self,
        fob_uid: &str,
        reason: &str,
        operator: &str,
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        if reason.trim().is_empty() {
            return Err(LedgerError::MissingReason);
        }
        self.conn.execute(
            "INSERT INTO reissues (fob_uid, reason, operator, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![fob_uid, reason, operator, now_ms],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Stores an audit record, idempotent by transaction id; a `SUCCESS`
    /// marks the issuance completed.
    pub fn store_audit(
        &mut self,
        transaction_id: &str,
        station: &str,
        fob_uid: &str,
        overall_result: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<AuditStored, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let issued: Option<(String, String)> = tx
            .query_row(
                "SELECT station, fob_uid FROM issuances WHERE transaction_id = ?1",
                params![transaction_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((issued_station, issued_uid)) = issued else {
            return Err(LedgerError::UnknownTransaction);
        };
        if issued_station != station {
            return Err(LedgerError::WrongStation);
        }
        if !issued_uid.eq_ignore_ascii_case(fob_uid) {
            return Err(LedgerError::UidMismatch);
        }
        let existing: Option<String> = tx
            .query_row(
                "SELECT body FROM audits WHERE transaction_id = ?1",
                params![transaction_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            return if existing == body {
                Ok(AuditStored::Duplicate)
            } else {
                Err(LedgerError::ConflictingAudit)
            };
        }
        tx.execute(
            "INSERT INTO audits (transaction_id, station, overall_result, body, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![transaction_id, station, overall_result, body, now_ms],
        )?;
        if overall_result == "SUCCESS" {
            tx.execute(
                "UPDATE issuances SET completed_at_ms = ?2 WHERE transaction_id = ?1",
                params![transaction_id, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(AuditStored::New)
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

/// `Ok(None)`: free; `Ok(Some(id))`: blocked but operator re-issue `id` may be
/// consumed; `Err(AlreadyIssued)`: refused.
fn blocking_state(
    conn: &Connection,
    fob_uid: &str,
    now_ms: i64,
) -> Result<Option<i64>, LedgerError> {
    let blocking: Option<Option<i64>> = conn
        .query_row(
            "SELECT completed_at_ms FROM issuances
             WHERE fob_uid = ?1 AND (completed_at_ms IS NOT NULL OR expires_at_ms > ?2)
             ORDER BY issued_at_ms DESC LIMIT 1",
            params![fob_uid, now_ms],
            |r| r.get(0),
        )
        .optional()?;
    let Some(completed) = blocking else {
        return Ok(None);
    };
    let reissue: Option<i64> = conn
        .query_row(
            "SELECT id FROM reissues WHERE fob_uid = ?1 AND consumed_by IS NULL ORDER BY id LIMIT 1",
            params![fob_uid],
            |r| r.get(0),
        )
        .optional()?;
    match reissue {
        Some(id) => Ok(Some(id)),
        None => Err(LedgerError::AlreadyIssued(
            if completed.is_some() {
                "the fob was already provisioned successfully; an operator re-issue is required"
            } else {
                "a key package for this fob is still valid"
            }
            .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn one_time_rule_expiry_success_and_reissue() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path().join("l.db")).unwrap();
        l.try_issue(&issuance("t1", 1000)).unwrap();
        // Still valid → refused.
        assert!(matches!(
            l.try_issue(&issuance("t2", 2000)),
            Err(LedgerError::AlreadyIssued(_))
        ));
        // Expired without a successful audit → allowed.
        l.try_issue(&issuance("t3", 7000)).unwrap();
        let uid = "04112233445566778899";
        assert_eq!(
            l.store_audit("t3", "station-01", uid, "SUCCESS", "{}", 7100)
                .unwrap(),
            AuditStored::New
        );
        assert_eq!(
            l.store_audit("t3", "station-01", uid, "SUCCESS", "{}", 7200)
                .unwrap(),
            AuditStored::Duplicate
        );
        assert!(matches!(
            l.store_audit("t3", "station-01", uid, "SUCCESS", "{\"x\":1}", 7200),
            Err(LedgerError::ConflictingAudit)
        ));
        // Completed → refused even long after expiry.
        assert!(matches!(
            l.try_issue(&issuance("t4", 99_000)),
            Err(LedgerError::AlreadyIssued(_))
        ));
        // Operator re-issue is consumed once.
        assert!(matches!(
            l.record_reissue(uid, " ", "op", 1),
            Err(LedgerError::MissingReason)
        ));
        l.record_reissue(uid, "fob replaced", "op", 100_000)
            .unwrap();
        l.try_issue(&issuance("t5", 100_001)).unwrap();
        assert!(matches!(
            l.try_issue(&issuance("t6", 100_002)),
            Err(LedgerError::AlreadyIssued(_))
        ));
        assert_eq!(l.issuance_count(uid).unwrap(), 3);
    }

    #[test]
    fn audit_checks_transaction_station_and_uid() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path().join("l.db")).unwrap();
        l.try_issue(&issuance("t1", 1000)).unwrap();
        let uid = "04112233445566778899";
        assert!(matches!(
            l.store_audit("nope", "station-01", uid, "SUCCESS", "{}", 1),
            Err(LedgerError::UnknownTransaction)
        ));
        assert!(matches!(
            l.store_audit("t1", "station-02", uid, "SUCCESS", "{}", 1),
            Err(LedgerError::WrongStation)
        ));
        assert!(matches!(
            l.store_audit("t1", "station-01", "00", "SUCCESS", "{}", 1),
            Err(LedgerError::UidMismatch)
        ));
        // A failure audit does not complete the issuance.
        l.store_audit("t1", "station-01", uid, "FAILURE", "{}", 1)
            .unwrap();
        l.try_issue(&issuance("t2", 9000)).unwrap();
    }
}
