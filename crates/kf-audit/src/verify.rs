//! Read-only access and offline verification.
//!
//! [`JournalReader`] opens the file with `SQLITE_OPEN_READ_ONLY` and
//! `query_only`: it never creates, migrates or writes the journal, and never
//! changes its journal mode. [`JournalReader::verify`] checks, with the key:
//! the schema (every expected table and column with its declared type), the
//! format and key check value, every record (types, sequence numbers without
//! gaps, keyed links), the head MAC against the last record (a removed tail),
//! and every upload-state row (MAC, a row for each outcome record, no row for
//! anything else).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags};

use crate::journal::{classify, list, show, ListFilter, FORMAT, TABLES};
use crate::receipt::Receipt;
use crate::record::{
    compute_head_mac, compute_link, compute_upload_mac, decode_mac, key_check, mac_eq, LinkInput,
    UploadInput, GENESIS_LINK,
};
use crate::{AuditError, JournalKey, JournalRecord, RecordKind};
use p256::ecdsa::VerifyingKey;

/// An acknowledgement's receipt: when present it must name its record; with
/// the KLMS key it must be present and its signature must verify.
fn check_receipt(
    text: &str,
    seq: u64,
    link: &[u8; 32],
    klms_key: Option<&VerifyingKey>,
) -> Result<(), String> {
    if text.is_empty() {
        return match klms_key {
            Some(_) => Err("acknowledged without a receipt".into()),
            None => Ok(()),
        };
    }
    let receipt = Receipt::parse(text)?;
    if !receipt.covers(seq, link) {
        return Err(format!(
            "the receipt is for record {}, not this record and link",
            receipt.seq
        ));
    }
    match klms_key {
        Some(k) if !receipt.verify(k) => Err("signature does not verify under the KLMS key".into()),
        _ => Ok(()),
    }
}

/// Kind of damage found by [`JournalReader::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
#[non_exhaustive]
pub enum Damage {
    /// A table the journal needs is missing (dropped).
    MissingTable(String),
    /// A table's columns differ from the format (added, removed, retyped).
    SchemaAltered(String),
    /// A row the journal needs is missing (format, key check, head, upload state).
    MissingRow(String),
    /// A value has the wrong SQLite type (e.g. a BLOB where text belongs).
    WrongColumnType(String),
    /// A value does not parse (unknown kind, a MAC that is not 64 hex digits).
    MalformedValue(String),
    /// Records are missing: the sequence jumps over this number.
    SequenceGap,
    /// The record's link is not the MAC of its content and the previous link:
    /// it was edited, moved, inserted or forged without the key.
    LinkMismatch,
    /// The head MAC does not verify (the head row was edited or forged).
    HeadMismatch,
    /// The head names a later record than the last one present: the newest
    /// records were removed (tail truncation).
    Truncated {
        /// Sequence number of the head.
        head_seq: i64,
    },
    /// The head is valid but older than the last record (an old head restored).
    HeadBehind {
        /// Sequence number of the head.
        head_seq: i64,
    },
    /// An upload-state row's MAC does not verify (ack or rejection edited or forged).
    UploadStateForged,
    /// An upload-state row exists for a record that does not exist.
    UploadStateOrphan,
    /// An acknowledgement's KLMS receipt is missing, names another record or
    /// its signature does not verify under the KLMS receipt key.
    ReceiptInvalid(String),
}

/// The first finding: where and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The first sequence number affected (0 when it concerns the whole file).
    pub seq: i64,
    /// What is wrong.
    pub damage: Damage,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |f: &mut std::fmt::Formatter<'_>| {
            if self.seq > 0 {
                write!(f, "record {}: ", self.seq)
            } else {
                Ok(())
            }
        };
        at(f)?;
        match &self.damage {
            Damage::MissingTable(t) => write!(f, "table {t} is missing"),
            Damage::SchemaAltered(why) => write!(f, "schema altered ({why})"),
            Damage::MissingRow(what) => write!(f, "{what} is missing"),
            Damage::WrongColumnType(what) => write!(f, "wrong column type ({what})"),
            Damage::MalformedValue(what) => write!(f, "malformed value ({what})"),
            Damage::SequenceGap => write!(f, "missing (sequence gap: records deleted)"),
            Damage::LinkMismatch => write!(
                f,
                "link does not verify (record edited, moved or forged without the key)"
            ),
            Damage::HeadMismatch => write!(f, "head MAC does not verify (head edited)"),
            Damage::Truncated { head_seq } => write!(
                f,
                "missing: the head says the journal ends at record {head_seq} (tail truncated)"
            ),
            Damage::HeadBehind { head_seq } => write!(
                f,
                "the head ends at record {head_seq}, before the last record (old head restored)"
            ),
            Damage::UploadStateForged => write!(
                f,
                "upload state does not verify (acknowledgement or rejection edited or forged)"
            ),
            Damage::UploadStateOrphan => write!(f, "upload state for a record that does not exist"),
            Damage::ReceiptInvalid(why) => write!(f, "KLMS receipt invalid ({why})"),
        }
    }
}

/// Result of [`JournalReader::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Outcome records acknowledged by the KLMS.
    pub acknowledged: u64,
    /// Head: last sequence number and link (hex) of the intact part.
    pub head_seq: i64,
    /// Link of the last checked record (hex).
    pub head_link: String,
    /// The first finding, if any.
    pub finding: Option<Finding>,
}

impl VerifyReport {
    /// True when nothing was found.
    pub fn is_ok(&self) -> bool {
        self.finding.is_none()
    }
}

/// `file:` URI of a path, percent-encoding everything but unreserved characters.
fn file_uri(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut uri = String::from("file:");
    if !text.starts_with('/') {
        // Relative paths and Windows drive letters.
        if text.as_bytes().get(1) == Some(&b':') {
            uri.push('/');
        }
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~:".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// Opens a database read-only and without side effects: with no `-wal` file
/// beside it (no writer, clean shutdown) it is opened `immutable`, so SQLite
/// creates no `-wal`/`-shm` files and takes no locks; with a `-wal` file (a
/// station running) it is opened `SQLITE_OPEN_READ_ONLY` to see its commits.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if Path::new(&wal).exists() {
        Connection::open_with_flags(path, flags)?
    } else {
        Connection::open_with_flags(
            format!("{}?immutable=1", file_uri(path)),
            flags | OpenFlags::SQLITE_OPEN_URI,
        )?
    };
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// A journal opened read-only (for `list`, `show`, `export`, `verify`).
pub struct JournalReader {
    conn: Connection,
}

fn type_name(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

struct Stop(Finding);

type Check<T> = Result<T, Stop>;

fn stop<T>(seq: i64, damage: Damage) -> Check<T> {
    Err(Stop(Finding { seq, damage }))
}

fn wrong_type<T>(seq: i64, what: &str, value: ValueRef<'_>) -> Check<T> {
    stop(
        seq,
        Damage::WrongColumnType(format!("{what} is {}", type_name(value))),
    )
}

/// The columns of one row, read with the sequence number a finding about
/// them names.
struct Cells<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    seq: i64,
}

impl<'r, 's> Cells<'r, 's> {
    fn new(row: &'r rusqlite::Row<'s>, seq: i64) -> Self {
        Cells { row, seq }
    }

    fn int(&self, i: usize, what: &str) -> Result<Check<i64>, AuditError> {
        Ok(match self.row.get_ref(i)? {
            ValueRef::Integer(v) => Ok(v),
            other => wrong_type(self.seq, what, other),
        })
    }

    fn text(&self, i: usize, what: &str) -> Result<Check<String>, AuditError> {
        Ok(match self.row.get_ref(i)? {
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => Ok(s.to_owned()),
                Err(_) => stop(
                    self.seq,
                    Damage::MalformedValue(format!("{what} is not UTF-8")),
                ),
            },
            other => wrong_type(self.seq, what, other),
        })
    }

    fn mac(&self, i: usize, what: &str) -> Result<Check<[u8; 32]>, AuditError> {
        Ok(match self.text(i, what)? {
            Ok(t) => match decode_mac(&t) {
                Some(m) => Ok(m),
                None => stop(
                    self.seq,
                    Damage::MalformedValue(format!("{what} is not 64 hex digits")),
                ),
            },
            Err(e) => Err(e),
        })
    }
}

macro_rules! check {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(Stop(f)) => return Ok(Err(Stop(f))),
        }
    };
}

impl JournalReader {
    /// Opens an existing journal read-only. A missing file is an I/O error;
    /// a file that is not a format-2 journal is refused without a write.
    pub fn open(path: impl AsRef<Path>) -> Result<JournalReader, AuditError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| {
            AuditError::Io(std::io::Error::new(
                e.kind(),
                format!("no audit journal at {}: {e}", path.display()),
            ))
        })?;
        if !meta.is_file() {
            return Err(AuditError::NotAJournal(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let conn = open_read_only(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        classify(&conn)?;
        Ok(JournalReader { conn })
    }

    /// One record by sequence number.
    pub fn show(&self, seq: i64) -> Result<JournalRecord, AuditError> {
        show(&self.conn, seq)
    }

    /// Records matching `filter`, by sequence number.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<JournalRecord>, AuditError> {
        list(&self.conn, filter)
    }

    /// Checks the whole journal with `key` and reports the first finding.
    ///
    /// `Err` means the journal could not be checked (database unreadable,
    /// wrong key, unsupported format); every kind of damage an editor of the
    /// file can cause is a [`Finding`] in an `Ok` report.
    pub fn verify(&self, key: &JournalKey) -> Result<VerifyReport, AuditError> {
        self.verify_with_receipts(key, None)
    }

    /// [`JournalReader::verify`], and with the KLMS receipt key every
    /// acknowledgement must carry a receipt for its record whose signature
    /// verifies. (Without it, receipts are checked to name their record.)
    pub fn verify_with_receipts(
        &self,
        key: &JournalKey,
        klms_key: Option<&VerifyingKey>,
    ) -> Result<VerifyReport, AuditError> {
        // A read transaction gives one consistent snapshot while the station appends.
        self.conn.execute_batch("BEGIN")?;
        let result = self.verify_in_snapshot(key, klms_key);
        self.conn.execute_batch("COMMIT")?;
        result
    }

    fn verify_in_snapshot(
        &self,
        key: &JournalKey,
        klms_key: Option<&VerifyingKey>,
    ) -> Result<VerifyReport, AuditError> {
        let mut report = VerifyReport {
            records: 0,
            acknowledged: 0,
            head_seq: 0,
            head_link: hex::encode_upper(GENESIS_LINK),
            finding: None,
        };
        if let Err(Stop(finding)) = self.check_all(key, klms_key, &mut report)? {
            report.finding = Some(finding);
        }
        Ok(report)
    }

    fn check_all(
        &self,
        key: &JournalKey,
        klms_key: Option<&VerifyingKey>,
        report: &mut VerifyReport,
    ) -> Result<Check<()>, AuditError> {
        check!(self.check_schema());
        check!(self.check_meta(key));
        let outcomes = check!(self.check_records(key, report));
        check!(self.check_head(key, report));
        check!(self.check_uploads(key, klms_key, &outcomes, report));
        Ok(Ok(()))
    }

    fn check_schema(&self) -> Result<Check<()>, AuditError> {
        for (table, columns) in TABLES {
            let mut stmt = self
                .conn
                .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")?;
            let found = stmt
                .query_map(params![table], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if found.is_empty() {
                return Ok(stop(0, Damage::MissingTable((*table).to_owned())));
            }
            let expected: Vec<(String, String)> = columns
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect();
            if found != expected {
                let shown: Vec<String> = found.iter().map(|(n, t)| format!("{n} {t}")).collect();
                return Ok(stop(
                    0,
                    Damage::SchemaAltered(format!("{table}({})", shown.join(", "))),
                ));
            }
        }
        Ok(Ok(()))
    }

    fn check_meta(&self, key: &JournalKey) -> Result<Check<()>, AuditError> {
        let value = |name: &str| -> Result<Check<Option<String>>, AuditError> {
            let mut stmt = self
                .conn
                .prepare("SELECT value FROM meta WHERE name = ?1")?;
            let mut rows = stmt.query(params![name])?;
            match rows.next()? {
                None => Ok(Ok(None)),
                Some(row) => Ok(Cells::new(row, 0)
                    .text(0, &format!("meta {name}"))?
                    .map(Some)),
            }
        };
        match check!(value("format")) {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(AuditError::UnsupportedFormat(f)),
            None => return Ok(stop(0, Damage::MissingRow("the format row".into()))),
        }
        match check!(value("key_check")) {
            None => Ok(stop(0, Damage::MissingRow("the key check value".into()))),
            Some(k) => match decode_mac(&k) {
                Some(k) if mac_eq(&k, &key_check(key)) => Ok(Ok(())),
                Some(_) => Err(AuditError::KeyMismatch),
                None => Ok(stop(
                    0,
                    Damage::MalformedValue("key check value is not 64 hex digits".into()),
                )),
            },
        }
    }

    /// Walks the records; returns their links by sequence number.
    fn check_records(
        &self,
        key: &JournalKey,
        report: &mut VerifyReport,
    ) -> Result<Check<HashMap<i64, [u8; 32]>>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, timestamp, transaction_id, kind, body, link FROM records ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut prev = GENESIS_LINK;
        let mut expected: i64 = 1;
        let mut outcomes = HashMap::new();
        while let Some(row) = rows.next()? {
            // Findings about this row name the number it should have.
            let cells = Cells::new(row, expected);
            let seq = check!(cells.int(0, "seq"));
            if seq != expected {
                return Ok(stop(expected, Damage::SequenceGap));
            }
            let timestamp = check!(cells.text(1, "timestamp"));
            let transaction_id = check!(cells.text(2, "transaction_id"));
            let kind_text = check!(cells.text(3, "kind"));
            let body = check!(cells.text(4, "body"));
            let link = check!(cells.mac(5, "link"));
            let Some(kind) = RecordKind::parse(&kind_text) else {
                return Ok(stop(seq, Damage::MalformedValue("unknown kind".into())));
            };
            let computed = compute_link(
                key,
                &prev,
                &LinkInput {
                    seq: seq as u64,
                    timestamp: &timestamp,
                    transaction_id: &transaction_id,
                    kind,
                    body: &body,
                },
            );
            if !mac_eq(&computed, &link) {
                return Ok(stop(seq, Damage::LinkMismatch));
            }
            outcomes.insert(seq, link);
            prev = link;
            report.records += 1;
            report.head_seq = seq;
            report.head_link = hex::encode_upper(link);
            expected += 1;
        }
        Ok(Ok(outcomes))
    }

    fn check_head(&self, key: &JournalKey, report: &VerifyReport) -> Result<Check<()>, AuditError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM head", [], |r| r.get(0))?;
        let next = report.head_seq + 1;
        if n > 1 {
            return Ok(stop(
                0,
                Damage::MalformedValue("more than one head row".into()),
            ));
        }
        let mut stmt = self.conn.prepare("SELECT id, seq, link, mac FROM head")?;
        let mut rows = stmt.query([])?;
        let Some(row) = rows.next()? else {
            return Ok(stop(next, Damage::MissingRow("the head row".into())));
        };
        let cells = Cells::new(row, 0);
        check!(cells.int(0, "head id"));
        let head_seq = check!(cells.int(1, "head seq"));
        let head_link = check!(cells.mac(2, "head link"));
        let head_mac = check!(cells.mac(3, "head mac"));
        let Ok(useq) = u64::try_from(head_seq) else {
            return Ok(stop(0, Damage::HeadMismatch));
        };
        if !mac_eq(&compute_head_mac(key, useq, &head_link), &head_mac) {
            return Ok(stop(head_seq.max(0), Damage::HeadMismatch));
        }
        if head_seq > report.head_seq {
            return Ok(stop(next, Damage::Truncated { head_seq }));
        }
        let last = decode_mac(&report.head_link).unwrap_or(GENESIS_LINK);
        if head_seq < report.head_seq || !mac_eq(&head_link, &last) {
            return Ok(stop(head_seq + 1, Damage::HeadBehind { head_seq }));
        }
        Ok(Ok(()))
    }

    fn check_uploads(
        &self,
        key: &JournalKey,
        klms_key: Option<&VerifyingKey>,
        outcomes: &HashMap<i64, [u8; 32]>,
        report: &mut VerifyReport,
    ) -> Result<Check<()>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, state, updated_at, detail, receipt, mac FROM uploads ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut first_missing: Option<i64> = None;
        let mut sorted: Vec<i64> = outcomes.keys().copied().collect();
        sorted.sort_unstable();
        let mut next_outcome = sorted.iter().peekable();
        while let Some(row) = rows.next()? {
            let seq = check!(Cells::new(row, 0).int(0, "upload seq"));
            // Outcome records skipped by the upload rows have no state row.
            while let Some(&&o) = next_outcome.peek() {
                if o >= seq {
                    break;
                }
                first_missing.get_or_insert(o);
                next_outcome.next();
            }
            if let Some(missing) = first_missing {
                return Ok(stop(
                    missing,
                    Damage::MissingRow("the upload state of this record".into()),
                ));
            }
            let cells = Cells::new(row, seq);
            let state = check!(cells.text(1, "upload state"));
            let updated_at = check!(cells.text(2, "upload time"));
            let detail = check!(cells.text(3, "upload detail"));
            let receipt = check!(cells.text(4, "receipt"));
            let mac = check!(cells.mac(5, "upload mac"));
            let Some(link) = outcomes.get(&seq) else {
                return Ok(stop(seq, Damage::UploadStateOrphan));
            };
            next_outcome.next();
            let Ok(useq) = u64::try_from(seq) else {
                return Ok(stop(seq, Damage::UploadStateOrphan));
            };
            let computed = compute_upload_mac(
                key,
                &UploadInput {
                    seq: useq,
                    link,
                    state: &state,
                    updated_at: &updated_at,
                    detail: &detail,
                    receipt: &receipt,
                },
            );
            if !mac_eq(&computed, &mac) {
                return Ok(stop(seq, Damage::UploadStateForged));
            }
            match state.as_str() {
                "acknowledged" => {
                    if let Err(why) = check_receipt(&receipt, useq, link, klms_key) {
                        return Ok(stop(seq, Damage::ReceiptInvalid(why)));
                    }
                    report.acknowledged += 1;
                }
                "pending" | "rejected" => {}
                _ => {
                    return Ok(stop(
                        seq,
                        Damage::MalformedValue("unknown upload state".into()),
                    ))
                }
            }
        }
        if let Some(&o) = next_outcome.next() {
            return Ok(stop(
                o,
                Damage::MissingRow("the upload state of this record".into()),
            ));
        }
        Ok(Ok(()))
    }
}
