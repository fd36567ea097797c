//! The SQLite journal: appends, upload bookkeeping, queries and chain verification.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::record::{canonical_bytes, chain_hash, BreakReason, BrokenLink, GENESIS_HASH};
use crate::{AuditError, JournalRecord, RecordKind, UploadState};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq            INTEGER PRIMARY KEY,
    timestamp      TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    body           TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    acked_at       TEXT,
    rejected       TEXT
);
CREATE INDEX IF NOT EXISTS records_txid ON records(transaction_id);
CREATE INDEX IF NOT EXISTS records_pending ON records(kind, acked_at, rejected);
";

const COLUMNS: &str =
    "seq, timestamp, transaction_id, kind, body, prev_hash, hash, acked_at, rejected";

/// The durable audit journal.
///
/// One SQLite file in WAL mode with `synchronous=FULL`: every append is a
/// committed, fsynced transaction when the call returns. Several `Journal`
/// handles (e.g. the station and its [`crate::Uploader`]) may share a file.
pub struct Journal {
    conn: Connection,
}

/// Selection for [`Journal::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only records of this transaction.
    pub transaction_id: Option<String>,
    /// Only records of this kind.
    pub kind: Option<RecordKind>,
    /// Only records still waiting for upload.
    pub pending_only: bool,
    /// Skip records with a sequence number below this.
    pub from_seq: Option<i64>,
    /// At most this many records.
    pub limit: Option<u32>,
}

/// Result of [`Journal::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Number of records checked.
    pub records: u64,
    /// The first record at which the chain breaks, if any.
    pub first_broken: Option<BrokenLink>,
}

impl VerifyReport {
    /// True when the whole chain verified.
    pub fn is_ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let millis = now.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        millis
    )
}

fn canonical_body(body: &serde_json::Value) -> Result<String, AuditError> {
    if !body.is_object() {
        return Err(AuditError::InvalidBody("expected a JSON object".into()));
    }
    // serde_json's default map is ordered by key, so this is compact and key-sorted.
    serde_json::to_string(body).map_err(|e| AuditError::InvalidBody(e.to_string()))
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<JournalRecord, AuditError>> {
    let seq: i64 = row.get(0)?;
    let kind_text: String = row.get(3)?;
    let acked: Option<String> = row.get(7)?;
    let rejected: Option<String> = row.get(8)?;
    let Some(kind) = RecordKind::parse(&kind_text) else {
        return Ok(Err(AuditError::MalformedRow {
            seq,
            reason: "unknown record kind".into(),
        }));
    };
    let upload = match (acked, rejected) {
        (Some(at), _) => UploadState::Acknowledged(at),
        (None, Some(why)) => UploadState::Rejected(why),
        (None, None) => UploadState::Pending,
    };
    Ok(Ok(JournalRecord {
        seq,
        timestamp: row.get(1)?,
        transaction_id: row.get(2)?,
        kind,
        body: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
        upload,
    }))
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, AuditError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Journal { conn })
    }

    /// Opens an existing journal; errors with `NotFound`-style I/O error
    /// instead of creating an empty one (for `audit list|show|export|verify`).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Journal, AuditError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(AuditError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no audit journal at {}", path.display()),
            )));
        }
        Journal::open(path)
    }

    /// Appends a `started` record (commit it before the first STORE DATA).
    pub fn append_started(
        &mut self,
        transaction_id: &str,
        body: &serde_json::Value,
    ) -> Result<JournalRecord, AuditError> {
        self.append(transaction_id, RecordKind::Started, body)
    }

    /// Appends an `outcome` record (the audit record to upload).
    pub fn append_outcome(
        &mut self,
        transaction_id: &str,
        body: &serde_json::Value,
    ) -> Result<JournalRecord, AuditError> {
        self.append(transaction_id, RecordKind::Outcome, body)
    }

    /// Appends a record of any kind; durable when this returns.
    pub fn append(
        &mut self,
        transaction_id: &str,
        kind: RecordKind,
        body: &serde_json::Value,
    ) -> Result<JournalRecord, AuditError> {
        let body = canonical_body(body)?;
        let timestamp = now_rfc3339();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match last {
            None => (1, GENESIS_HASH),
            Some((seq, hash)) => {
                let prev = decode_hash(&hash).ok_or_else(|| AuditError::MalformedRow {
                    seq,
                    reason: "stored hash is not 32 bytes of hex".into(),
                })?;
                (seq + 1, prev)
            }
        };
        let canonical = canonical_bytes(seq, &timestamp, transaction_id, kind, &body);
        let hash = chain_hash(&prev_hash, &canonical);
        let record = JournalRecord {
            seq,
            timestamp,
            transaction_id: transaction_id.to_owned(),
            kind,
            body,
            prev_hash: hex::encode_upper(prev_hash),
            hash: hex::encode_upper(hash),
            upload: UploadState::Pending,
        };
        tx.execute(
            "INSERT INTO records (seq, timestamp, transaction_id, kind, body, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                record.seq,
                record.timestamp,
                record.transaction_id,
                kind.as_str(),
                record.body,
                record.prev_hash,
                record.hash
            ],
        )?;
        tx.commit()?;
        Ok(record)
    }

    /// Outcome records not yet acknowledged nor rejected, oldest first.
    pub fn pending_uploads(&self, limit: u32) -> Result<Vec<JournalRecord>, AuditError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM records WHERE kind = 'outcome' AND acked_at IS NULL
                 AND rejected IS NULL ORDER BY seq LIMIT ?1"
            ),
            params![limit],
        )
    }

    /// Number of outcome records waiting for upload.
    pub fn pending_count(&self) -> Result<u64, AuditError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM records WHERE kind = 'outcome' AND acked_at IS NULL AND rejected IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that the KLMS acknowledged `seq` (idempotent).
    pub fn mark_acknowledged(&mut self, seq: i64) -> Result<(), AuditError> {
        let n = self.conn.execute(
            "UPDATE records SET acked_at = COALESCE(acked_at, ?2) WHERE seq = ?1",
            params![seq, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(AuditError::NotFound(seq));
        }
        Ok(())
    }

    /// Records that the KLMS refused `seq` for good; it is not retried.
    pub fn mark_rejected(&mut self, seq: i64, reason: &str) -> Result<(), AuditError> {
        let n = self.conn.execute(
            "UPDATE records SET rejected = ?2 WHERE seq = ?1 AND acked_at IS NULL",
            params![seq, reason],
        )?;
        if n == 0 {
            return Err(AuditError::NotFound(seq));
        }
        Ok(())
    }

    /// Transaction ids with a `started` record and no `outcome` (interrupted runs).
    pub fn unfinished(&self) -> Result<Vec<String>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT s.transaction_id FROM records s WHERE s.kind = 'started'
             AND NOT EXISTS (SELECT 1 FROM records o WHERE o.kind = 'outcome'
                             AND o.transaction_id = s.transaction_id)
             ORDER BY s.seq",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One record by sequence number.
    pub fn show(&self, seq: i64) -> Result<JournalRecord, AuditError> {
        self.query(
            &format!("SELECT {COLUMNS} FROM records WHERE seq = ?1"),
            params![seq],
        )?
        .pop()
        .ok_or(AuditError::NotFound(seq))
    }

    /// Records matching `filter`, by sequence number.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<JournalRecord>, AuditError> {
        let mut sql = format!("SELECT {COLUMNS} FROM records WHERE seq >= ?1");
        if filter.transaction_id.is_some() {
            sql.push_str(" AND transaction_id = ?2");
        } else {
            sql.push_str(" AND ?2 IS NULL");
        }
        if filter.kind.is_some() {
            sql.push_str(" AND kind = ?3");
        } else {
            sql.push_str(" AND ?3 IS NULL");
        }
        if filter.pending_only {
            sql.push_str(" AND kind = 'outcome' AND acked_at IS NULL AND rejected IS NULL");
        }
        sql.push_str(" ORDER BY seq LIMIT ?4");
        let limit = filter.limit.map_or(-1i64, i64::from);
        self.query(
            &sql,
            params![
                filter.from_seq.unwrap_or(0),
                filter.transaction_id,
                filter.kind.map(RecordKind::as_str),
                limit
            ],
        )
    }

    /// Walks the whole chain and reports the first broken link.
    ///
    /// Detects edited rows (hash mismatch), re-linked rows (previous-hash
    /// mismatch) and deleted rows (sequence gap). Truncating the newest records
    /// leaves a valid shorter chain; the uploaded copies at the KLMS cover that.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM records ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut expected_seq = 1i64;
        let mut prev = GENESIS_HASH;
        let mut count = 0u64;
        while let Some(row) = rows.next()? {
            count += 1;
            let seq: i64 = row.get(0)?;
            let broken = |reason| {
                Ok(VerifyReport {
                    records: count,
                    first_broken: Some(BrokenLink { seq, reason }),
                })
            };
            if seq != expected_seq {
                return broken(BreakReason::SequenceGap {
                    expected: expected_seq,
                });
            }
            let record = match row_to_record(row)? {
                Ok(r) => r,
                Err(e) => return broken(BreakReason::Malformed(e.to_string())),
            };
            let (Some(stored_prev), Some(stored_hash)) =
                (decode_hash(&record.prev_hash), decode_hash(&record.hash))
            else {
                return broken(BreakReason::Malformed(
                    "hash column is not 32 bytes of hex".into(),
                ));
            };
            if stored_prev != prev {
                return broken(BreakReason::PrevHashMismatch);
            }
            let canonical = canonical_bytes(
                seq,
                &record.timestamp,
                &record.transaction_id,
                record.kind,
                &record.body,
            );
            if !chain_hash_eq(&chain_hash(&prev, &canonical), &stored_hash) {
                return broken(BreakReason::HashMismatch);
            }
            prev = stored_hash;
            expected_seq += 1;
        }
        Ok(VerifyReport {
            records: count,
            first_broken: None,
        })
    }

    fn query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<JournalRecord>, AuditError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params, row_to_record)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

/// Compares a recomputed chain hash with the stored one in constant time.
fn chain_hash_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j.db")).unwrap();
        (dir, j)
    }

    #[test]
    fn append_chains_and_verifies() {
        let (_d, mut j) = journal();
        let a = j.append_started("trx_1", &json!({"b": 1, "a": 2})).unwrap();
        let b = j
            .append_outcome("trx_1", &json!({"overall_result": "SUCCESS"}))
            .unwrap();
        assert_eq!(a.seq, 1);
        assert_eq!(b.seq, 2);
        assert_eq!(a.body, r#"{"a":2,"b":1}"#);
        assert_eq!(a.prev_hash, hex::encode_upper(GENESIS_HASH));
        assert_eq!(b.prev_hash, a.hash);
        let report = j.verify().unwrap();
        assert_eq!(report.records, 2);
        assert!(report.is_ok());
    }

    #[test]
    fn pending_ack_and_reject() {
        let (_d, mut j) = journal();
        j.append_started("t1", &json!({})).unwrap();
        let o1 = j.append_outcome("t1", &json!({"n": 1})).unwrap();
        let o2 = j.append_outcome("t2", &json!({"n": 2})).unwrap();
        let pending = j.pending_uploads(10).unwrap();
        assert_eq!(
            pending.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![o1.seq, o2.seq]
        );
        j.mark_acknowledged(o1.seq).unwrap();
        j.mark_rejected(o2.seq, "400 bad record").unwrap();
        assert!(j.pending_uploads(10).unwrap().is_empty());
        assert!(matches!(
            j.show(o1.seq).unwrap().upload,
            UploadState::Acknowledged(_)
        ));
        assert_eq!(
            j.show(o2.seq).unwrap().upload,
            UploadState::Rejected("400 bad record".into())
        );
        assert!(matches!(
            j.mark_acknowledged(99),
            Err(AuditError::NotFound(99))
        ));
        // Upload bookkeeping is outside the hash.
        assert!(j.verify().unwrap().is_ok());
    }

    #[test]
    fn unfinished_lists_started_without_outcome() {
        let (_d, mut j) = journal();
        j.append_started("t1", &json!({})).unwrap();
        j.append_outcome("t1", &json!({})).unwrap();
        j.append_started("t2", &json!({})).unwrap();
        assert_eq!(j.unfinished().unwrap(), vec!["t2".to_owned()]);
    }

    #[test]
    fn list_filters() {
        let (_d, mut j) = journal();
        j.append_started("t1", &json!({})).unwrap();
        j.append_outcome("t1", &json!({})).unwrap();
        j.append_started("t2", &json!({})).unwrap();
        let by_tx = j
            .list(&ListFilter {
                transaction_id: Some("t1".into()),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(by_tx.len(), 2);
        let started = j
            .list(&ListFilter {
                kind: Some(RecordKind::Started),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(
            started.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 3]
        );
        let limited = j
            .list(&ListFilter {
                limit: Some(1),
                from_seq: Some(2),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(limited.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn open_existing_does_not_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        assert!(matches!(
            Journal::open_existing(&path),
            Err(AuditError::Io(_))
        ));
        assert!(!path.exists());
        Journal::open(&path).unwrap();
        Journal::open_existing(&path).unwrap();
    }

    #[test]
    fn non_object_body_is_refused() {
        let (_d, mut j) = journal();
        assert!(matches!(
            j.append_started("t", &json!([1, 2])),
            Err(AuditError::InvalidBody(_))
        ));
    }
}
