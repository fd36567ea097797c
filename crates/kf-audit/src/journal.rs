//! The SQLite journal: appends, upload bookkeeping and queries.
//!
//! Tables (format 2):
//!
//! ```text
//! meta    (name TEXT PRIMARY KEY, value TEXT NOT NULL)   format = "2", key_check, created_at
//! records (seq INTEGER PRIMARY KEY, timestamp TEXT NOT NULL, transaction_id TEXT NOT NULL,
//!          kind TEXT NOT NULL, body TEXT NOT NULL, link TEXT NOT NULL)      append-only
//! head    (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
//!          link TEXT NOT NULL, mac TEXT NOT NULL)                           one row
//! uploads (seq INTEGER PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL,
//!          detail TEXT NOT NULL, receipt TEXT NOT NULL, mac TEXT NOT NULL)  one row per record
//! ```
//!
//! `records` is never updated (triggers refuse UPDATE and DELETE); upload
//! state lives in `uploads`, one MACed row per outcome record; `head` carries
//! a MAC over the last sequence number and link, so a removed tail shows.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::record::{
    compute_head_mac, compute_link, compute_upload_mac, decode_mac, key_check, mac_eq, LinkInput,
    UploadInput, GENESIS_LINK, MAX_FIELD_BYTES,
};
use crate::{AuditError, JournalKey, JournalRecord, RecordKind, UploadState};

/// Value of `meta.format` written by this release.
pub const FORMAT: &str = "2";

pub(crate) const SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    seq            INTEGER PRIMARY KEY,
    timestamp      TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    body           TEXT NOT NULL,
    link           TEXT NOT NULL
);
CREATE INDEX records_txid ON records(transaction_id);
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'journal records are append-only'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'journal records are append-only'); END;
CREATE TABLE head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    link TEXT NOT NULL,
    mac  TEXT NOT NULL
);
CREATE TABLE uploads (
    seq        INTEGER PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    detail     TEXT NOT NULL,
    receipt    TEXT NOT NULL,
    mac        TEXT NOT NULL
);
CREATE INDEX uploads_state ON uploads(state);
";

/// Expected columns (name, declared type) of each table, in order.
pub(crate) const TABLES: &[(&str, &[(&str, &str)])] = &[
    ("meta", &[("name", "TEXT"), ("value", "TEXT")]),
    (
        "records",
        &[
            ("seq", "INTEGER"),
            ("timestamp", "TEXT"),
            ("transaction_id", "TEXT"),
            ("kind", "TEXT"),
            ("body", "TEXT"),
            ("link", "TEXT"),
        ],
    ),
    (
        "head",
        &[
            ("id", "INTEGER"),
            ("seq", "INTEGER"),
            ("link", "TEXT"),
            ("mac", "TEXT"),
        ],
    ),
    (
        "uploads",
        &[
            ("seq", "INTEGER"),
            ("state", "TEXT"),
            ("updated_at", "TEXT"),
            ("detail", "TEXT"),
            ("receipt", "TEXT"),
            ("mac", "TEXT"),
        ],
    ),
];

/// The record columns plus the previous link and the upload state.
pub(crate) const SELECT: &str =
    "SELECT r.seq, r.timestamp, r.transaction_id, r.kind, r.body, r.link,
    p.link, u.state, u.updated_at, u.detail, u.receipt
    FROM records r LEFT JOIN records p ON p.seq = r.seq - 1 LEFT JOIN uploads u ON u.seq = r.seq";

/// The durable audit journal (read-write; the station and its uploader).
///
/// One SQLite file in WAL mode with `synchronous=FULL`: every append is a
/// committed, fsynced transaction when the call returns. Several `Journal`
/// handles (e.g. the station and its [`crate::Uploader`]) may share a file.
pub struct Journal {
    conn: Connection,
    key: JournalKey,
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

/// The newest record's sequence number and link (`0` and the genesis link when empty).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    /// Sequence number of the last record.
    pub seq: i64,
    /// Its link, upper-case hex.
    pub link: String,
}

pub(crate) fn now_rfc3339() -> String {
    crate::format_timestamp(time::OffsetDateTime::now_utc())
}

fn canonical_body(body: &serde_json::Value) -> Result<String, AuditError> {
    if !body.is_object() {
        return Err(AuditError::InvalidBody("expected a JSON object".into()));
    }
    // serde_json's default map is ordered by key, so this is compact and key-sorted.
    serde_json::to_string(body).map_err(|e| AuditError::InvalidBody(e.to_string()))
}

fn malformed(seq: i64, reason: impl Into<String>) -> AuditError {
    AuditError::MalformedRow {
        seq,
        reason: reason.into(),
    }
}

/// Reads one [`SELECT`] row; a wrong column type is a malformed row, not a panic.
pub(crate) fn row_to_record(row: &rusqlite::Row<'_>) -> Result<JournalRecord, AuditError> {
    let seq: i64 = row
        .get(0)
        .map_err(|_| malformed(0, "sequence number is not an integer"))?;
    let text = |i: usize, name: &str| -> Result<String, AuditError> {
        row.get::<_, String>(i)
            .map_err(|_| malformed(seq, format!("{name} is not text")))
    };
    let opt = |i: usize, name: &str| -> Result<Option<String>, AuditError> {
        row.get::<_, Option<String>>(i)
            .map_err(|_| malformed(seq, format!("{name} is not text")))
    };
    let kind_text = text(3, "kind")?;
    let kind =
        RecordKind::parse(&kind_text).ok_or_else(|| malformed(seq, "unknown record kind"))?;
    let prev_link = match opt(6, "previous link")? {
        Some(l) => l,
        None if seq == 1 => hex::encode_upper(GENESIS_LINK),
        None => String::new(),
    };
    let upload = match opt(7, "upload state")?.as_deref() {
        None | Some("pending") => UploadState::Pending,
        Some("acknowledged") => UploadState::Acknowledged {
            at: opt(8, "upload time")?.unwrap_or_default(),
            receipt: opt(10, "receipt")?.unwrap_or_default(),
        },
        Some("rejected") => UploadState::Rejected(opt(9, "rejection")?.unwrap_or_default()),
        Some(_) => return Err(malformed(seq, "unknown upload state")),
    };
    Ok(JournalRecord {
        seq,
        timestamp: text(1, "timestamp")?,
        transaction_id: text(2, "transaction_id")?,
        kind,
        body: text(4, "body")?,
        prev_link,
        link: text(5, "link")?,
        upload,
    })
}

pub(crate) fn query(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<JournalRecord>, AuditError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(row_to_record(row)?);
    }
    Ok(out)
}

pub(crate) fn list(
    conn: &Connection,
    filter: &ListFilter,
) -> Result<Vec<JournalRecord>, AuditError> {
    let mut sql = format!("{SELECT} WHERE r.seq >= ?1");
    sql.push_str(if filter.transaction_id.is_some() {
        " AND r.transaction_id = ?2"
    } else {
        " AND ?2 IS NULL"
    });
    sql.push_str(if filter.kind.is_some() {
        " AND r.kind = ?3"
    } else {
        " AND ?3 IS NULL"
    });
    if filter.pending_only {
        sql.push_str(" AND (u.state IS NULL OR u.state = 'pending')");
    }
    sql.push_str(" ORDER BY r.seq LIMIT ?4");
    let limit = filter.limit.map_or(-1i64, i64::from);
    query(
        conn,
        &sql,
        params![
            filter.from_seq.unwrap_or(0),
            filter.transaction_id,
            filter.kind.map(RecordKind::as_str),
            limit
        ],
    )
}

pub(crate) fn show(conn: &Connection, seq: i64) -> Result<JournalRecord, AuditError> {
    query(conn, &format!("{SELECT} WHERE r.seq = ?1"), params![seq])?
        .pop()
        .ok_or(AuditError::NotFound(seq))
}

/// Tables present, and whether a `records` table has the format-1 columns.
pub(crate) fn classify(conn: &Connection) -> Result<(), AuditError> {
    let has = |table: &str| -> Result<bool, AuditError> {
        Ok(conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![table],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    if has("meta")? {
        return Ok(());
    }
    if has("records")? {
        let legacy = conn
            .query_row(
                "SELECT 1 FROM pragma_table_info('records') WHERE name = 'prev_hash'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if legacy {
            return Err(AuditError::LegacyJournal);
        }
        return Ok(());
    }
    Err(AuditError::NotAJournal(
        "no journal tables in this database".into(),
    ))
}

fn meta_value(conn: &Connection, name: &str) -> Result<Option<String>, AuditError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            params![name],
            |r| r.get::<_, String>(0),
        )
        .optional()?)
}

fn read_head(conn: &Connection, key: &JournalKey) -> Result<(u64, [u8; 32]), AuditError> {
    let row: Option<(i64, String, String)> = conn
        .query_row("SELECT seq, link, mac FROM head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(|_| AuditError::Tampered("the head row is malformed".into()))?;
    let (seq, link, mac) =
        row.ok_or_else(|| AuditError::Tampered("the head row is missing".into()))?;
    let (Ok(seq), Some(link), Some(mac)) =
        (u64::try_from(seq), decode_mac(&link), decode_mac(&mac))
    else {
        return Err(AuditError::Tampered("the head row is malformed".into()));
    };
    if !mac_eq(&compute_head_mac(key, seq, &link), &mac) {
        return Err(AuditError::Tampered("the head MAC does not verify".into()));
    }
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, link FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|_| AuditError::Tampered("the last record is malformed".into()))?;
    let matches = match &last {
        None => seq == 0,
        Some((last_seq, last_link)) => {
            u64::try_from(*last_seq).ok() == Some(seq) && decode_mac(last_link) == Some(link)
        }
    };
    if !matches {
        return Err(AuditError::Tampered(format!(
            "the head (record {seq}) does not match the last record ({})",
            last.map_or(0, |(s, _)| s)
        )));
    }
    Ok((seq, link))
}

/// The JSON path `$.field` of a top-level body field; `field` must be a
/// plain name (`A-Z a-z 0-9 _`), anything else is an invalid body query.
fn field_path(field: &str) -> Result<String, AuditError> {
    if field.is_empty()
        || !field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(AuditError::InvalidBody(format!(
            "field name {field:?} is not a plain name"
        )));
    }
    Ok(format!("$.{field}"))
}

fn check_field(s: &str) -> Result<(), AuditError> {
    if s.len() > MAX_FIELD_BYTES {
        return Err(AuditError::FieldTooLong(s.len()));
    }
    Ok(())
}

impl Journal {
    /// Opens the journal at `path`, creating it when the file does not exist.
    ///
    /// An existing file must be a format-2 journal whose key check value
    /// matches `key`, with a head that verifies; a format-1 journal is
    /// refused ([`AuditError::LegacyJournal`]) and left unchanged.
    pub fn open(path: impl AsRef<Path>, key: JournalKey) -> Result<Journal, AuditError> {
        let path = path.as_ref();
        let exists = std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let conn = if exists {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(10))?;
            // Nothing is written before the file is known to be a format-2 journal.
            classify(&conn)?;
            match meta_value(&conn, "format")? {
                Some(f) if f == FORMAT => {}
                Some(f) => return Err(AuditError::UnsupportedFormat(f)),
                None => {
                    return Err(AuditError::Tampered(
                        "the journal format row is missing".into(),
                    ))
                }
            }
            let stored = meta_value(&conn, "key_check")?.and_then(|k| decode_mac(&k));
            match stored {
                Some(k) if mac_eq(&k, &key_check(&key)) => {}
                Some(_) => return Err(AuditError::KeyMismatch),
                None => {
                    return Err(AuditError::Tampered(
                        "the key check value is missing".into(),
                    ))
                }
            }
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            read_head(&conn, &key)?;
            conn
        } else {
            let mut conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('format', ?1), ('key_check', ?2), ('created_at', ?3)",
                params![FORMAT, hex::encode_upper(key_check(&key)), now_rfc3339()],
            )?;
            tx.execute(
                "INSERT INTO head (id, seq, link, mac) VALUES (1, 0, ?1, ?2)",
                params![
                    hex::encode_upper(GENESIS_LINK),
                    hex::encode_upper(compute_head_mac(&key, 0, &GENESIS_LINK))
                ],
            )?;
            tx.commit()?;
            conn
        };
        Ok(Journal { conn, key })
    }

    /// Opens the journal at `journal` with the key at `key_path`. When
    /// neither exists, a new key is created (0600) and then the journal; a
    /// journal without its key, or a key without its journal, is refused.
    pub fn open_or_create(journal: &Path, key_path: &Path) -> Result<Journal, AuditError> {
        let key = match (journal.exists(), key_path.exists()) {
            (true, true) => JournalKey::load(key_path)?,
            (false, false) => JournalKey::create(key_path)?,
            (true, false) => {
                return Err(AuditError::Key {
                    path: key_path.to_owned(),
                    reason: "the journal exists but its key file is missing".into(),
                })
            }
            (false, true) => {
                return Err(AuditError::Key {
                    path: key_path.to_owned(),
                    reason: format!(
                        "the key exists but its journal {} is missing (removed or moved); \
                         restore the journal, or move the key aside to start a new journal",
                        journal.display()
                    ),
                })
            }
        };
        Journal::open(journal, key)
    }

    /// Appends a record; durable when this returns. A `started` record is
    /// committed before the first STORE DATA, an `outcome` record is the
    /// audit record to upload.
    pub fn append(
        &mut self,
        transaction_id: &str,
        kind: RecordKind,
        body: &serde_json::Value,
    ) -> Result<JournalRecord, AuditError> {
        let body = canonical_body(body)?;
        check_field(&body)?;
        check_field(transaction_id)?;
        let timestamp = now_rfc3339();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (head_seq, prev) = read_head(&tx, &self.key)?;
        let seq = head_seq + 1;
        let link = compute_link(
            &self.key,
            &prev,
            &LinkInput {
                seq,
                timestamp: &timestamp,
                transaction_id,
                kind,
                body: &body,
            },
        );
        let seq_i = i64::try_from(seq).map_err(|_| malformed(i64::MAX, "sequence overflow"))?;
        let link_hex = hex::encode_upper(link);
        tx.prepare_cached(
            "INSERT INTO records (seq, timestamp, transaction_id, kind, body, link)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            seq_i,
            timestamp,
            transaction_id,
            kind.as_str(),
            body,
            link_hex
        ])?;
        write_upload(
            &tx,
            &self.key,
            &UploadInput {
                seq,
                link: &link,
                state: "pending",
                updated_at: &timestamp,
                detail: "",
                receipt: "",
            },
        )?;
        tx.prepare_cached("UPDATE head SET seq = ?1, link = ?2, mac = ?3 WHERE id = 1")?
            .execute(params![
                seq_i,
                link_hex,
                hex::encode_upper(compute_head_mac(&self.key, seq, &link))
            ])?;
        tx.commit()?;
        Ok(JournalRecord {
            seq: seq_i,
            timestamp,
            transaction_id: transaction_id.to_owned(),
            kind,
            body,
            prev_link: hex::encode_upper(prev),
            link: link_hex,
            upload: UploadState::Pending,
        })
    }

    /// The head: last sequence number and link, after checking its MAC.
    pub fn head(&self) -> Result<Head, AuditError> {
        let (seq, link) = read_head(&self.conn, &self.key)?;
        Ok(Head {
            seq: i64::try_from(seq).map_err(|_| malformed(i64::MAX, "sequence overflow"))?,
            link: hex::encode_upper(link),
        })
    }

    /// True when `record`'s stored link is the MAC of its fields and its
    /// previous link (checked by the uploader before a record leaves).
    pub fn link_verifies(&self, record: &JournalRecord) -> bool {
        let (Ok(seq), Some(prev), Some(link)) = (
            u64::try_from(record.seq),
            decode_mac(&record.prev_link),
            decode_mac(&record.link),
        ) else {
            return false;
        };
        let expected = compute_link(
            &self.key,
            &prev,
            &LinkInput {
                seq,
                timestamp: &record.timestamp,
                transaction_id: &record.transaction_id,
                kind: record.kind,
                body: &record.body,
            },
        );
        mac_eq(&expected, &link)
    }

    /// Records waiting for upload (both kinds: the KLMS anchors every link;
    /// only outcome bodies are audit records), oldest first.
    pub fn pending_uploads(&self, limit: u32) -> Result<Vec<JournalRecord>, AuditError> {
        query(
            &self.conn,
            &format!("{SELECT} WHERE u.state = 'pending' ORDER BY u.seq LIMIT ?1"),
            params![limit],
        )
    }

    /// Number of records waiting for upload.
    pub fn pending_count(&self) -> Result<u64, AuditError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM uploads WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that the KLMS acknowledged `seq`, with its receipt (idempotent).
    pub fn mark_acknowledged(&mut self, seq: i64, receipt: &str) -> Result<(), AuditError> {
        check_field(receipt)?;
        self.set_upload(seq, "acknowledged", "", receipt)
    }

    /// Records that the KLMS refused `seq` for good; it is not retried.
    pub fn mark_rejected(&mut self, seq: i64, reason: &str) -> Result<(), AuditError> {
        check_field(reason)?;
        self.set_upload(seq, "rejected", reason, "")
    }

    fn set_upload(
        &mut self,
        seq: i64,
        state: &str,
        detail: &str,
        receipt: &str,
    ) -> Result<(), AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT r.link, u.state FROM records r JOIN uploads u ON u.seq = r.seq WHERE r.seq = ?1",
                params![seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((link, current)) = row else {
            return Err(AuditError::NotFound(seq));
        };
        if current != "pending" {
            // Acknowledged and rejected are final.
            return Ok(());
        }
        let link =
            decode_mac(&link).ok_or_else(|| malformed(seq, "link is not 32 bytes of hex"))?;
        let useq = u64::try_from(seq).map_err(|_| AuditError::NotFound(seq))?;
        write_upload(
            &tx,
            &self.key,
            &UploadInput {
                seq: useq,
                link: &link,
                state,
                updated_at: &now_rfc3339(),
                detail,
                receipt,
            },
        )?;
        tx.commit()?;
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

    /// The keyed fingerprint of `data` for `label` (upper-case hex of
    /// [`crate::record::FINGERPRINT_LEN`] bytes), see [`crate::record`].
    /// Neither the key nor `data` is stored or logged.
    pub fn fingerprint(&self, label: &str, data: &[u8]) -> String {
        hex::encode_upper(crate::record::fingerprint(&self.key, label, data))
    }

    /// The sequence number of the first `outcome` record whose body says
    /// `"overall_result": "SUCCESS"` and has the top-level string field
    /// `field` equal to `value`, if any. `field` is a plain name
    /// (`A-Z a-z 0-9 _`); anything else is refused as an invalid body query.
    pub fn successful_outcome_with(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Option<i64>, AuditError> {
        let path = field_path(field)?;
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM records WHERE kind = 'outcome'
                 AND json_valid(body)
                 AND json_extract(body, '$.overall_result') = 'SUCCESS'
                 AND json_extract(body, ?1) = ?2
                 ORDER BY seq LIMIT 1",
                params![path, value],
                |r| r.get::<_, i64>(0),
            )
            .optional()?)
    }

    /// Every value of the top-level string field `field` in `outcome`
    /// records saying `"overall_result": "SUCCESS"`, with the sequence number
    /// of the first record carrying it: one scan, for a caller that keeps the
    /// index in memory and extends it as it appends. `field` is a plain name
    /// as for [`Journal::successful_outcome_with`].
    pub fn successful_outcome_index(
        &self,
        field: &str,
    ) -> Result<std::collections::HashMap<String, i64>, AuditError> {
        let path = field_path(field)?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, json_extract(body, ?1) FROM records WHERE kind = 'outcome'
             AND json_extract(body, '$.overall_result') = 'SUCCESS'
             AND json_type(body, ?1) = 'text'
             ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![path], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut index = std::collections::HashMap::new();
        for row in rows {
            let (seq, value) = row?;
            index.entry(value).or_insert(seq);
        }
        Ok(index)
    }

    /// One record by sequence number.
    pub fn show(&self, seq: i64) -> Result<JournalRecord, AuditError> {
        show(&self.conn, seq)
    }

    /// Records matching `filter`, by sequence number.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<JournalRecord>, AuditError> {
        list(&self.conn, filter)
    }
}

/// Writes the upload-state row of `row.seq` with its MAC.
fn write_upload(
    conn: &Connection,
    key: &JournalKey,
    row: &UploadInput<'_>,
) -> Result<(), AuditError> {
    let mac = compute_upload_mac(key, row);
    let seq = i64::try_from(row.seq).map_err(|_| AuditError::NotFound(i64::MAX))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO uploads (seq, state, updated_at, detail, receipt, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        seq,
        row.state,
        row.updated_at,
        row.detail,
        row.receipt,
        hex::encode_upper(mac)
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(journal_mode, synchronous)` of a connection; synchronous 2 is FULL.
    fn durability(conn: &Connection) -> (String, i64) {
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        (mode, sync)
    }

    /// The crash-durability claim (an append is on disk when it returns)
    /// rests on WAL with synchronous=FULL on the writing connection; a kill -9
    /// test cannot see the difference because the page cache survives it.
    #[test]
    fn a_created_and_a_reopened_journal_commit_with_wal_and_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let key = || JournalKey::from_bytes([0x5A; 32]);
        let mut created = Journal::open(&path, key()).unwrap();
        assert_eq!(durability(&created.conn), ("wal".to_string(), 2));
        created
            .append(
                "trx_1",
                RecordKind::Started,
                &serde_json::json!({"fob_uid": "04"}),
            )
            .unwrap();
        drop(created);
        let reopened = Journal::open(&path, key()).unwrap();
        assert_eq!(durability(&reopened.conn), ("wal".to_string(), 2));
    }

    #[test]
    fn successful_outcomes_are_found_by_a_body_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(
            dir.path().join("journal.db"),
            JournalKey::from_bytes([9; 32]),
        )
        .unwrap();
        let fp = journal.fingerprint(crate::IRK_FINGERPRINT_LABEL, &[0x42; 16]);
        assert_eq!(fp.len(), 2 * crate::FINGERPRINT_LEN);
        let found = |j: &Journal| j.successful_outcome_with("irk_fingerprint", &fp).unwrap();
        assert_eq!(found(&journal), None);
        journal
            .append(
                "t1",
                RecordKind::Started,
                &serde_json::json!({"irk_fingerprint": fp}),
            )
            .unwrap();
        journal
            .append(
                "t1",
                RecordKind::Outcome,
                &serde_json::json!({"overall_result": "FAILURE", "irk_fingerprint": fp}),
            )
            .unwrap();
        // Neither a started record nor a failure counts.
        assert_eq!(found(&journal), None);
        let ok = journal
            .append(
                "t2",
                RecordKind::Outcome,
                &serde_json::json!({"overall_result": "SUCCESS", "irk_fingerprint": fp}),
            )
            .unwrap();
        assert_eq!(found(&journal), Some(ok.seq));
        let index = journal.successful_outcome_index("irk_fingerprint").unwrap();
        assert_eq!(index.len(), 1);
        assert_eq!(index.get(&fp), Some(&ok.seq));
        let not_plain = |e: AuditError, name: &str| {
            assert!(
                matches!(&e, AuditError::InvalidBody(m)
                    if *m == format!("field name {name:?} is not a plain name")),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!("audit record body is not a JSON object: field name {name:?} is not a plain name")
            );
        };
        not_plain(journal.successful_outcome_index("a.b").unwrap_err(), "a.b");
        not_plain(
            journal.successful_outcome_with("a.b", &fp).unwrap_err(),
            "a.b",
        );
        not_plain(journal.successful_outcome_with("", &fp).unwrap_err(), "");
    }
}
