#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Journal durability, the keyed chain against an insider with a SQLite
//! shell (one row per attack), read-only verification, golden vectors, and
//! the uploader's store-and-forward.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kf_audit::record::{compute_head_mac, compute_link, LinkInput};
use kf_audit::{
    AuditError, AuditSink, Damage, Journal, JournalKey, JournalReader, JournalRecord, RecordKind,
    UploadError, UploadState, Uploader, UploaderConfig,
};
use serde_json::json;
use sha2::Digest;

const KEY: [u8; 32] = [0x42; 32];

fn key() -> JournalKey {
    JournalKey::from_bytes(KEY)
}

/// 2·n records (started + outcome per transaction); outcomes of even
/// transactions acknowledged with a receipt.
fn filled(n: usize) -> (tempfile::TempDir, PathBuf) {
    let (dir, path, mut j) = new_journal("journal.db");
    for i in 0..n {
        let tx = format!("trx_{i}");
        j.append(
            &tx,
            RecordKind::Started,
            &json!({"fob_uid": "04112233445566778899"}),
        )
        .unwrap();
        let o = j
            .append(
                &tx,
                RecordKind::Outcome,
                &json!({"overall_result": "SUCCESS", "i": i}),
            )
            .unwrap();
        if i % 2 == 0 {
            j.mark_acknowledged(o.seq, "").unwrap();
        }
    }
    (dir, path)
}

/// An empty journal named `file` in a fresh directory.
fn new_journal(file: &str) -> (tempfile::TempDir, PathBuf, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    let journal = Journal::open(&path, key()).unwrap();
    (dir, path, journal)
}

fn verify(path: &Path) -> kf_audit::VerifyReport {
    JournalReader::open(path).unwrap().verify(&key()).unwrap()
}

/// A raw connection as an insider would open it, with the convenience
/// triggers removed (they are not a protection).
fn shell(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete;")
        .unwrap();
    c
}

/// Runs `sql` on the journal at `path` through an insider's [`shell`].
fn tamper(path: &Path, sql: &str) {
    shell(path).execute_batch(sql).unwrap();
}

/// Rewrites the body of record 4 (a good fob) as a failure.
const EDIT_RECORD_4: &str =
    r#"UPDATE records SET body = '{"i":1,"overall_result":"FAILURE"}' WHERE seq = 4"#;

/// [`tamper`], then [`rechain_without_key`] from `from` on.
fn tamper_and_rechain(path: &Path, sql: &str, from: i64) {
    let c = shell(path);
    c.execute_batch(sql).unwrap();
    rechain_without_key(&c, from);
}

/// Recomputes links from `from` on with the attacker's own key (the
/// insider does not have the station's key) and rewrites the head.
fn rechain_without_key(c: &rusqlite::Connection, from: i64) {
    let guess = JournalKey::from_bytes([0x00; 32]);
    let prev: String = c
        .query_row("SELECT link FROM records WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap_or_else(|_| "00".repeat(32));
    let mut prev: [u8; 32] = hex::decode(prev).unwrap().try_into().unwrap();
    let rows: Vec<(i64, String, String, String, String)> = c
        .prepare("SELECT seq, timestamp, transaction_id, kind, body FROM records WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut last = (from - 1, prev);
    for (seq, ts, tx, kind, body) in rows {
        let link = compute_link(
            &guess,
            &prev,
            &LinkInput {
                seq: seq as u64,
                timestamp: &ts,
                transaction_id: &tx,
                kind: RecordKind::parse(&kind).unwrap(),
                body: &body,
            },
        );
        c.execute(
            "UPDATE records SET link = ?1 WHERE seq = ?2",
            rusqlite::params![hex::encode_upper(link), seq],
        )
        .unwrap();
        prev = link;
        last = (seq, link);
    }
    c.execute(
        "UPDATE head SET seq = ?1, link = ?2, mac = ?3",
        rusqlite::params![
            last.0,
            hex::encode_upper(last.1),
            hex::encode_upper(compute_head_mac(&guess, last.0 as u64, &last.1))
        ],
    )
    .unwrap();
}

/// What an insider runs through a [`shell`].
enum Edit {
    Sql(&'static str),
    /// The statements, then the chain recomputed from this sequence number
    /// on without the station's key.
    SqlThenRechain(&'static str, i64),
}
use Edit::{Sql, SqlThenRechain};

impl Edit {
    fn apply(&self, path: &Path) {
        match *self {
            Sql(sql) => tamper(path, sql),
            SqlThenRechain(sql, from) => tamper_and_rechain(path, sql, from),
        }
    }
}

struct Attack {
    name: &'static str,
    edit: Edit,
    first_bad: i64,
    damage: fn(&Damage) -> bool,
}

/// Each row is an edit that the earlier unkeyed journal did not detect.
const ATTACKS: &[Attack] = &[
    Attack {
        name: "truncate the unacknowledged tail",
        edit: Sql("DELETE FROM records WHERE seq > 8; DELETE FROM uploads WHERE seq > 8;"),
        first_bad: 9,
        damage: |d| matches!(d, Damage::Truncated { head_seq: 10 }),
    },
    Attack {
        name: "truncate acknowledged records",
        edit: Sql("DELETE FROM records WHERE seq > 6; DELETE FROM uploads WHERE seq > 6;"),
        first_bad: 7,
        damage: |d| matches!(d, Damage::Truncated { head_seq: 10 }),
    },
    Attack {
        name: "truncate and copy the last remaining link into the head",
        edit: Sql("DELETE FROM records WHERE seq > 8; DELETE FROM uploads WHERE seq > 8;
                 UPDATE head SET seq = 8, link = (SELECT link FROM records WHERE seq = 8);"),
        first_bad: 8,
        damage: |d| matches!(d, Damage::HeadMismatch),
    },
    Attack {
        name: "delete a middle record",
        edit: Sql("DELETE FROM records WHERE seq = 5; DELETE FROM uploads WHERE seq = 5;"),
        first_bad: 5,
        damage: |d| matches!(d, Damage::SequenceGap),
    },
    Attack {
        name: "edit a field",
        edit: Sql(EDIT_RECORD_4),
        first_bad: 4,
        damage: |d| matches!(d, Damage::LinkMismatch),
    },
    Attack {
        name: "edit a field and rehash everything after it",
        edit: SqlThenRechain(EDIT_RECORD_4, 4),
        first_bad: 4,
        damage: |d| matches!(d, Damage::LinkMismatch),
    },
    Attack {
        name: "forge an appended record with a recomputed chain",
        edit: SqlThenRechain("INSERT INTO records VALUES (11, '2026-11-22T14:32:01.123Z', 'trx_forged', 'outcome', '{}', '')", 11),
        first_bad: 11,
        damage: |d| matches!(d, Damage::LinkMismatch),
    },
    Attack {
        name: "swap two records",
        edit: Sql("UPDATE records SET seq = -2 WHERE seq = 2;
                 UPDATE records SET seq = 2 WHERE seq = 4;
                 UPDATE records SET seq = 4 WHERE seq = -2;"),
        first_bad: 2,
        damage: |d| matches!(d, Damage::LinkMismatch),
    },
    Attack {
        name: "mark a pending record acknowledged",
        edit: Sql("UPDATE uploads SET state = 'acknowledged' WHERE seq = 4"),
        first_bad: 4,
        damage: |d| matches!(d, Damage::UploadStateForged),
    },
    Attack {
        name: "mark a pending record rejected",
        edit: Sql("UPDATE uploads SET state = 'rejected', detail = 'x' WHERE seq = 8"),
        first_bad: 8,
        damage: |d| matches!(d, Damage::UploadStateForged),
    },
    Attack {
        name: "move an acknowledgement to another record",
        edit: Sql("DELETE FROM uploads WHERE seq = 4; UPDATE uploads SET seq = 4 WHERE seq = 2;"),
        first_bad: 2,
        damage: |d| matches!(d, Damage::MissingRow(_)),
    },
    Attack {
        name: "delete the upload state of an outcome",
        edit: Sql("DELETE FROM uploads WHERE seq = 6"),
        first_bad: 6,
        damage: |d| matches!(d, Damage::MissingRow(_)),
    },
    Attack {
        name: "drop and recreate the records table",
        edit: Sql("DROP TABLE records;
                     CREATE TABLE records (seq INTEGER PRIMARY KEY, timestamp TEXT NOT NULL,
                        transaction_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
                        link TEXT NOT NULL);"),
        first_bad: 1,
        damage: |d| matches!(d, Damage::Truncated { head_seq: 10 }),
    },
    Attack {
        name: "drop the uploads table",
        edit: Sql("DROP TABLE uploads;"),
        first_bad: 0,
        damage: |d| matches!(d, Damage::MissingTable(t) if t == "uploads"),
    },
    Attack {
        name: "drop the head",
        edit: Sql("DELETE FROM head;"),
        first_bad: 11,
        damage: |d| matches!(d, Damage::MissingRow(_)),
    },
    Attack {
        name: "drop the meta table",
        edit: Sql("DROP TABLE meta;"),
        first_bad: 0,
        damage: |d| matches!(d, Damage::MissingTable(t) if t == "meta"),
    },
    Attack {
        name: "a BLOB where text belongs",
        edit: Sql("UPDATE records SET body = CAST(body AS BLOB) WHERE seq = 3"),
        first_bad: 3,
        damage: |d| matches!(d, Damage::WrongColumnType(_)),
    },
    Attack {
        name: "an integer where text belongs",
        // TEXT affinity would turn 7 into '7'; a retyped table keeps it.
        edit: Sql("ALTER TABLE uploads RENAME TO u2;
                 CREATE TABLE uploads (seq INTEGER PRIMARY KEY, state TEXT NOT NULL,
                    updated_at TEXT NOT NULL, detail TEXT NOT NULL, receipt TEXT NOT NULL, mac TEXT NOT NULL);
                 INSERT INTO uploads SELECT * FROM u2; DROP TABLE u2;
                 ALTER TABLE records RENAME COLUMN kind TO kind_old;"),
        first_bad: 0,
        damage: |d| matches!(d, Damage::SchemaAltered(_)),
    },
    Attack {
        name: "a column retyped to BLOB",
        edit: Sql("CREATE TABLE r2 (seq INTEGER PRIMARY KEY, timestamp TEXT NOT NULL,
                        transaction_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, link BLOB);
                     INSERT INTO r2 SELECT * FROM records; DROP TABLE records;
                     ALTER TABLE r2 RENAME TO records;"),
        first_bad: 0,
        damage: |d| matches!(d, Damage::SchemaAltered(_)),
    },
    Attack {
        name: "a column added outside the chain",
        edit: Sql("ALTER TABLE records ADD COLUMN acked_at TEXT;"),
        first_bad: 0,
        damage: |d| matches!(d, Damage::SchemaAltered(_)),
    },
];

#[test]
fn every_attack_is_found_with_the_first_bad_sequence_number() {
    let (_d, pristine) = filled(5);
    assert!(verify(&pristine).is_ok(), "{:?}", verify(&pristine));
    let mut failures = Vec::new();
    for attack in ATTACKS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        std::fs::copy(&pristine, &path).unwrap();
        attack.edit.apply(&path);
        let report = verify(&path);
        match &report.finding {
            Some(f) if f.seq == attack.first_bad && (attack.damage)(&f.damage) => {
                assert!(!f.to_string().is_empty());
            }
            other => failures.push(format!("{}: got {other:?}", attack.name)),
        }
        // The station refuses to append to a tampered journal, or finds it
        // when the damage is not in the head (verify is the full check).
        if let Ok(mut j) = Journal::open(&path, key()) {
            let appended = j.append("trx_next", RecordKind::Outcome, &json!({}));
            if matches!(
                report.finding.as_ref().map(|f| &f.damage),
                Some(Damage::Truncated { .. } | Damage::HeadMismatch)
            ) {
                assert!(
                    matches!(appended, Err(AuditError::Tampered(_))),
                    "{}: appended after truncation: {appended:?}",
                    attack.name
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn file_digest(path: &Path) -> Vec<u8> {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn reading_and_verifying_never_write_the_file() {
    let (dir, path) = filled(3);
    // Also a tampered one and a foreign database: neither is changed.
    let foreign = dir.path().join("ledger.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE issuances (x TEXT); INSERT INTO issuances VALUES ('a');")
        .unwrap();
    let dropped = dir.path().join("dropped.db");
    std::fs::copy(&path, &dropped).unwrap();
    shell(&dropped)
        .execute_batch("DROP TABLE records;")
        .unwrap();
    for p in [&path, &foreign, &dropped] {
        let before = file_digest(p);
        let files = names(dir.path());
        match JournalReader::open(p) {
            Ok(r) => {
                let _ = r.verify(&key());
                let _ = r.list(&kf_audit::ListFilter::default());
                let mut out = Vec::new();
                let _ = kf_audit::export(
                    &r,
                    &kf_audit::ListFilter::default(),
                    kf_audit::ExportFormat::Json,
                    &mut out,
                );
            }
            Err(e) => assert!(matches!(e, AuditError::NotAJournal(_)), "{e}"),
        }
        assert_eq!(file_digest(p), before, "{} changed", p.display());
        assert_eq!(
            names(dir.path()),
            files,
            "files appeared next to {}",
            p.display()
        );
    }
    let dropped_report = verify(&dropped);
    assert_eq!(
        dropped_report.finding.unwrap().damage,
        Damage::MissingTable("records".into())
    );
    assert!(matches!(
        JournalReader::open(&foreign),
        Err(AuditError::NotAJournal(_))
    ));
    // The foreign database did not get a table.
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn a_wrong_key_cannot_check_and_is_not_taken_for_tampering() {
    let (_d, path) = filled(2);
    let r = JournalReader::open(&path).unwrap();
    assert!(matches!(
        r.verify(&JournalKey::from_bytes([1; 32])),
        Err(AuditError::KeyMismatch)
    ));
    assert!(matches!(
        Journal::open(&path, JournalKey::from_bytes([1; 32])),
        Err(AuditError::KeyMismatch)
    ));
}

#[derive(serde::Deserialize)]
struct Vectors {
    key: String,
    key_check: String,
    records: Vec<VectorRecord>,
    head: VectorHead,
    uploads: Vec<VectorUpload>,
}
#[derive(serde::Deserialize)]
struct VectorRecord {
    seq: u64,
    timestamp: String,
    transaction_id: String,
    kind: String,
    body: String,
    prev_link: String,
    link: String,
}
#[derive(serde::Deserialize)]
struct VectorHead {
    seq: u64,
    link: String,
    mac: String,
}
#[derive(serde::Deserialize)]
struct VectorUpload {
    seq: u64,
    state: String,
    updated_at: String,
    detail: String,
    receipt: String,
    mac: String,
}

fn mac32(h: &str) -> [u8; 32] {
    hex::decode(h).unwrap().try_into().unwrap()
}

#[test]
fn golden_vectors_pin_the_canonical_encoding() {
    let text = include_str!("data/chain_v2.json");
    let v: Vectors = serde_json::from_str(text).unwrap();
    let key = JournalKey::from_bytes(mac32(&v.key));
    assert_eq!(
        hex::encode_upper(kf_audit::record::key_check(&key)),
        v.key_check,
        "key check value"
    );
    for r in &v.records {
        let link = compute_link(
            &key,
            &mac32(&r.prev_link),
            &LinkInput {
                seq: r.seq,
                timestamp: &r.timestamp,
                transaction_id: &r.transaction_id,
                kind: RecordKind::parse(&r.kind).unwrap(),
                body: &r.body,
            },
        );
        assert_eq!(
            hex::encode_upper(link),
            r.link,
            "link of vector record {}",
            r.seq
        );
    }
    assert_eq!(
        hex::encode_upper(compute_head_mac(&key, v.head.seq, &mac32(&v.head.link))),
        v.head.mac,
        "head MAC"
    );
    for u in &v.uploads {
        let link = mac32(&v.records[(u.seq - 1) as usize].link);
        let mac = kf_audit::record::compute_upload_mac(
            &key,
            &kf_audit::record::UploadInput {
                seq: u.seq,
                link: &link,
                state: &u.state,
                updated_at: &u.updated_at,
                detail: &u.detail,
                receipt: &u.receipt,
            },
        );
        assert_eq!(
            hex::encode_upper(mac),
            u.mac,
            "upload MAC of vector {}",
            u.seq
        );
    }
    // A journal holding exactly the vector rows verifies.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.db");
    drop(Journal::open(&path, JournalKey::from_bytes(mac32(&v.key))).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    for r in &v.records {
        c.execute(
            "INSERT INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                r.seq as i64,
                r.timestamp,
                r.transaction_id,
                r.kind,
                r.body,
                r.link
            ],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO uploads VALUES (?1, 'pending', '', '', '', '')",
        [0i64],
    )
    .unwrap();
    c.execute("DELETE FROM uploads", []).unwrap();
    for u in &v.uploads {
        c.execute(
            "INSERT INTO uploads VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                u.seq as i64,
                u.state,
                u.updated_at,
                u.detail,
                u.receipt,
                u.mac
            ],
        )
        .unwrap();
    }
    c.execute(
        "UPDATE head SET seq = ?1, link = ?2, mac = ?3",
        rusqlite::params![v.head.seq as i64, v.head.link, v.head.mac],
    )
    .unwrap();
    drop(c);
    let report = JournalReader::open(&path).unwrap().verify(&key).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 3);
    assert_eq!(report.acknowledged, 1);
}

/// The committed golden vectors are exactly what their independent generator
/// prints (Python 3 standard library only; `PYTHON` names another interpreter).
#[test]
fn the_golden_vectors_are_what_their_generator_prints() {
    kf_testkit::process::assert_generator_prints(
        env!("CARGO_MANIFEST_DIR"),
        "tests/independent/chain_vectors.py",
        "tests/data/chain_v2.json",
    );
}

#[test]
fn the_key_file_is_private_atomic_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let key_path = JournalKey::default_path(&journal);
    let mut j = Journal::open_or_create(&journal, &key_path).unwrap();
    j.append("t", RecordKind::Outcome, &json!({"a": 1}))
        .unwrap();
    drop(j);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.trim().len(), 64);
    // The key is not in the journal.
    let db = std::fs::read(&journal).unwrap();
    let raw = hex::decode(text.trim()).unwrap();
    assert!(!db.windows(32).any(|w| w == raw.as_slice()));
    assert!(!String::from_utf8_lossy(&db).contains(text.trim()));
    assert!(matches!(
        JournalKey::create(&key_path),
        Err(AuditError::Key { .. })
    ));
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), text);
    // Reopen works; a journal without its key or a key without its journal is refused.
    Journal::open_or_create(&journal, &key_path).unwrap();
    let moved = dir.path().join("elsewhere.key");
    std::fs::rename(&key_path, &moved).unwrap();
    assert!(matches!(
        Journal::open_or_create(&journal, &key_path),
        Err(AuditError::Key { .. })
    ));
    std::fs::rename(&moved, &key_path).unwrap();
    std::fs::rename(&journal, dir.path().join("gone.db")).unwrap();
    assert!(matches!(
        Journal::open_or_create(&journal, &key_path),
        Err(AuditError::Key { .. })
    ));
    assert!(!journal.exists());
    // A malformed key file is an error that does not show its content.
    std::fs::write(dir.path().join("bad.key"), "zz-secret-zz").unwrap();
    let err = JournalKey::load(&dir.path().join("bad.key")).unwrap_err();
    assert!(!err.to_string().contains("zz-secret-zz"));
}

#[test]
fn a_format_1_journal_is_refused_unchanged_and_its_old_chain_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // The earlier release's layout and chain.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE records (seq INTEGER PRIMARY KEY, timestamp TEXT NOT NULL,
            transaction_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL, acked_at TEXT, rejected TEXT);",
    )
    .unwrap();
    let mut prev = [0u8; 32];
    for seq in 1..=3i64 {
        let (ts, tx, kind, body) = ("2026-01-01T00:00:00.000Z", "trx", "outcome", "{}");
        let mut canonical = b"kf-audit/record/v1\0".to_vec();
        canonical.extend_from_slice(&seq.to_be_bytes());
        for f in [ts, tx, kind, body] {
            canonical.extend_from_slice(&(f.len() as u32).to_be_bytes());
            canonical.extend_from_slice(f.as_bytes());
        }
        let mut h = sha2::Sha256::new();
        h.update(prev);
        h.update(&canonical);
        let hash: [u8; 32] = h.finalize().into();
        c.execute(
            "INSERT INTO records (seq, timestamp, transaction_id, kind, body, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                seq,
                ts,
                tx,
                kind,
                body,
                hex::encode_upper(prev),
                hex::encode_upper(hash)
            ],
        )
        .unwrap();
        prev = hash;
    }
    drop(c);
    let before = file_digest(&path);
    let err = Journal::open(&path, key()).err().unwrap();
    assert!(matches!(err, AuditError::LegacyJournal));
    assert!(err.to_string().contains("--legacy"), "{err}");
    assert!(matches!(
        JournalReader::open(&path),
        Err(AuditError::LegacyJournal)
    ));
    let report = kf_audit::verify_legacy(&path).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.first_broken, None);
    assert_eq!(file_digest(&path), before, "the old journal was rewritten");
}

const CHILD_ENV: &str = "KF_AUDIT_CRASH_CHILD_JOURNAL";

/// In the child process (env set): append forever, printing each durable
/// append and acknowledgement. In the normal test run: a short self-check of
/// the same loop body, so this test asserts something either way.
#[test]
fn crash_child_appender() {
    let (path, endless) = match std::env::var(CHILD_ENV) {
        Ok(p) => (PathBuf::from(p), true),
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("self-check.db");
            std::mem::forget(dir);
            (p, false)
        }
    };
    let mut j = Journal::open(&path, key()).unwrap();
    let mut i = 0u64;
    loop {
        let tx = format!("trx_{i}");
        let rec = j
            .append(
                &tx,
                RecordKind::Outcome,
                &json!({"overall_result": "SUCCESS", "i": i}),
            )
            .unwrap();
        println!("APPENDED {} {}", rec.seq, rec.link);
        if i % 2 == 0 {
            j.mark_acknowledged(rec.seq, "").unwrap();
            println!("ACKED {}", rec.seq);
        }
        i += 1;
        if !endless && i == 4 {
            assert!(verify(&path).is_ok());
            assert_eq!(j.pending_count().unwrap(), 2);
            return;
        }
    }
}

#[test]
fn kill_9_during_appends_loses_nothing_that_was_reported_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_appender",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut appended: Vec<(i64, String)> = Vec::new();
    let mut acked: Vec<i64> = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while appended.len() < 60 {
        let line = lines.next().expect("child ended early").unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["APPENDED", seq, link] => appended.push((seq.parse().unwrap(), (*link).to_owned())),
            ["ACKED", seq] => acked.push(seq.parse().unwrap()),
            _ => {}
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix, TerminateProcess on Windows
    child.wait().unwrap();
    drop(lines);

    // WAL recovery happens on the first read-write open; then the keyed check.
    let j = Journal::open(&path, key()).unwrap();
    let report = verify(&path);
    assert!(report.is_ok(), "{report:?}");
    assert!(report.records as usize >= appended.len());
    for (seq, link) in &appended {
        assert_eq!(
            &j.show(*seq).unwrap().link,
            link,
            "record {seq} changed or lost"
        );
    }
    for seq in &acked {
        assert!(
            matches!(
                j.show(*seq).unwrap().upload,
                UploadState::Acknowledged { .. }
            ),
            "ack of {seq} lost"
        );
    }
}

#[derive(Clone, Default)]
struct FakeSink {
    up: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
    refuse: Arc<Mutex<VecDeque<String>>>,
}

impl AuditSink for FakeSink {
    fn upload(&mut self, record: &JournalRecord) -> Result<String, UploadError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(UploadError::Transient("connection refused".into()));
        }
        if record.kind == RecordKind::Started {
            return Ok(String::new());
        }
        if self
            .refuse
            .lock()
            .unwrap()
            .iter()
            .any(|t| *t == record.transaction_id)
        {
            return Err(UploadError::Permanent("422 invalid record".into()));
        }
        self.received
            .lock()
            .unwrap()
            .push(record.transaction_id.clone());
        Ok(receipt_for(record))
    }
}

/// A receipt naming the record (signature not checked without a KLMS key).
fn receipt_for(record: &JournalRecord) -> String {
    kf_audit::receipt::Receipt {
        station_id: "S".into(),
        seq: record.seq as u64,
        link: record.link.clone(),
        signature: "00".repeat(64),
    }
    .to_json()
}

fn fast() -> UploaderConfig {
    UploaderConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        poll_interval: Duration::from_millis(50),
        batch: 2,
    }
}

#[test]
fn uploader_queues_while_down_and_drains_in_order() {
    let (_dir, path, mut j) = new_journal("journal.db");
    let sink = FakeSink::default();
    sink.refuse.lock().unwrap().push_back("trx_bad".into());
    let uploader = Uploader::spawn(&path, key(), sink.clone(), fast()).unwrap();
    for i in 0..5 {
        let tx = format!("trx_{i}");
        j.append(&tx, RecordKind::Started, &json!({})).unwrap();
        j.append(&tx, RecordKind::Outcome, &json!({"i": i}))
            .unwrap();
        uploader.notify();
    }
    j.append("trx_bad", RecordKind::Outcome, &json!({}))
        .unwrap();
    assert!(!uploader.flush(Duration::from_millis(300)));
    assert_eq!(j.pending_count().unwrap(), 11);
    assert!(uploader.stats().transient_failures >= 1);
    assert!(sink.received.lock().unwrap().is_empty());

    sink.up.store(true, Ordering::SeqCst);
    assert!(
        uploader.flush(Duration::from_secs(10)),
        "{:?}",
        uploader.stats()
    );
    let stats = uploader.shutdown();
    assert_eq!(stats.uploaded, 10);
    assert_eq!(stats.rejected, 1);
    assert_eq!(
        *sink.received.lock().unwrap(),
        (0..5).map(|i| format!("trx_{i}")).collect::<Vec<_>>()
    );
    assert_eq!(j.pending_count().unwrap(), 0);
    let outcome2 = j.show(4).unwrap();
    assert!(
        matches!(&outcome2.upload, UploadState::Acknowledged { receipt, .. } if *receipt == receipt_for(&outcome2)),
        "{outcome2:?}"
    );
    let bad = j
        .list(&kf_audit::ListFilter {
            transaction_id: Some("trx_bad".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(matches!(&bad[0].upload, UploadState::Rejected(why) if why.contains("422")));
    assert!(verify(&path).is_ok());
}

#[test]
fn the_uploader_never_sends_a_record_edited_after_its_append() {
    let (_dir, path, mut j) = new_journal("journal.db");
    j.append(
        "trx_0",
        RecordKind::Outcome,
        &json!({"overall_result": "SUCCESS"}),
    )
    .unwrap();
    j.append(
        "trx_1",
        RecordKind::Outcome,
        &json!({"overall_result": "FAILURE"}),
    )
    .unwrap();
    shell(&path)
        .execute(
            "UPDATE records SET body = ?1 WHERE seq = 2",
            [r#"{"overall_result":"SUCCESS"}"#],
        )
        .unwrap();
    let sink = FakeSink::default();
    sink.up.store(true, Ordering::SeqCst);
    let uploader = Uploader::spawn(&path, key(), sink.clone(), fast()).unwrap();
    assert!(!uploader.flush(Duration::from_millis(500)));
    let stats = uploader.shutdown();
    assert_eq!(*sink.received.lock().unwrap(), vec!["trx_0".to_owned()]);
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("record 2"),
        "{stats:?}"
    );
}

#[test]
fn pending_ack_reject_and_unfinished() {
    let (_dir, path, mut j) = new_journal("j.db");
    let s = j
        .append("t1", RecordKind::Started, &json!({"b": 1, "a": 2}))
        .unwrap();
    assert_eq!(s.body, r#"{"a":2,"b":1}"#);
    assert_eq!(s.prev_link, hex::encode_upper(kf_audit::GENESIS_LINK));
    let o1 = j
        .append("t1", RecordKind::Outcome, &json!({"n": 1}))
        .unwrap();
    assert_eq!(o1.prev_link, s.link);
    let o2 = j
        .append("t2", RecordKind::Outcome, &json!({"n": 2}))
        .unwrap();
    j.append("t3", RecordKind::Started, &json!({})).unwrap();
    assert_eq!(j.unfinished().unwrap(), vec!["t3".to_owned()]);
    let pending: Vec<i64> = j
        .pending_uploads(10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(pending, vec![1, o1.seq, o2.seq, 4]);
    j.mark_acknowledged(1, "").unwrap();
    j.mark_acknowledged(4, "").unwrap();
    j.mark_acknowledged(o1.seq, "").unwrap();
    j.mark_rejected(o2.seq, "400 bad record").unwrap();
    // Final states stay final.
    j.mark_acknowledged(o2.seq, "late").unwrap();
    assert!(j.pending_uploads(10).unwrap().is_empty());
    assert_eq!(
        j.show(o2.seq).unwrap().upload,
        UploadState::Rejected("400 bad record".into())
    );
    assert!(matches!(
        j.mark_acknowledged(99, ""),
        Err(AuditError::NotFound(99))
    ));
    assert!(matches!(
        j.append("t", RecordKind::Started, &json!([1])),
        Err(AuditError::InvalidBody(_))
    ));
    let head = j.head().unwrap();
    assert_eq!(head.seq, 4);
    assert!(verify(&path).is_ok());
    assert_eq!(verify(&path).acknowledged, 3);
    // A receipt for another record is a finding.
    let other = j.show(2).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let p2 = dir2.path().join("j.db");
    let mut j2 = Journal::open(&p2, key()).unwrap();
    let r = j2
        .append("t1", RecordKind::Outcome, &json!({"n": 1}))
        .unwrap();
    j2.mark_acknowledged(r.seq, &receipt_for(&other)).unwrap();
    let f = verify(&p2).finding.unwrap();
    assert_eq!(f.seq, 1);
    assert!(matches!(f.damage, Damage::ReceiptInvalid(_)), "{f:?}");
}
