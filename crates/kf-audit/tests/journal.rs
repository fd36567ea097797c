#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Journal durability and tamper evidence; uploader store-and-forward.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kf_audit::{
    AuditSink, BreakReason, Journal, JournalRecord, UploadError, UploadState, Uploader,
    UploaderConfig,
};
use serde_json::json;

fn filled(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut j = Journal::open(&path).unwrap();
    for i in 0..n {
        let tx = format!("trx_{i}");
        j.append_started(&tx, &json!({"fob_uid": "04112233445566778899"}))
            .unwrap();
        j.append_outcome(&tx, &json!({"overall_result": "SUCCESS", "i": i}))
            .unwrap();
    }
    (dir, path, j)
}

#[test]
fn verify_reports_the_edited_record() {
    let (_d, path, j) = filled(5);
    assert!(j.verify().unwrap().is_ok());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE records SET body = ?1 WHERE seq = 7",
        [r#"{"overall_result":"FAILURE"}"#],
    )
    .unwrap();
    let report = j.verify().unwrap();
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, 7);
    assert_eq!(broken.reason, BreakReason::HashMismatch);
    assert!(broken.to_string().contains("record 7"));
}

#[test]
fn verify_reports_a_recomputed_hash_as_a_broken_link() {
    // An attacker who edits a row and recomputes its own hash breaks the next link.
    let (_d, path, j) = filled(3);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE records SET hash = ?1 WHERE seq = 2",
        [&"AB".repeat(32)],
    )
    .unwrap();
    let broken = j.verify().unwrap().first_broken.unwrap();
    // Row 2's stored hash no longer matches its content.
    assert_eq!(broken.seq, 2);
    raw.execute(
        "UPDATE records SET prev_hash = ?1 WHERE seq = 4",
        [&"CD".repeat(32)],
    )
    .unwrap();
    assert_eq!(j.verify().unwrap().first_broken.unwrap().seq, 2);
}

#[test]
fn verify_reports_a_deleted_record() {
    let (_d, path, j) = filled(3);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("DELETE FROM records WHERE seq = 3", [])
        .unwrap();
    let broken = j.verify().unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 4);
    assert_eq!(broken.reason, BreakReason::SequenceGap { expected: 3 });
}

#[test]
fn verify_reports_a_relinked_record() {
    let (_d, path, j) = filled(2);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE records SET prev_hash = ?1 WHERE seq = 3",
        [&"00".repeat(32)],
    )
    .unwrap();
    let broken = j.verify().unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 3);
    assert_eq!(broken.reason, BreakReason::PrevHashMismatch);
}

const CHILD_ENV: &str = "KF_AUDIT_CRASH_CHILD_JOURNAL";

/// In the child process (env set): append forever, printing each durable
/// append and acknowledgement. In the normal test run: a short self-check of
/// the same loop body, so this test asserts something either way.
#[test]
fn crash_child_appender() {
    let (path, endless) = match std::env::var(CHILD_ENV) {
        Ok(p) => (std::path::PathBuf::from(p), true),
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("self-check.db");
            std::mem::forget(dir);
            (p, false)
        }
    };
    let mut j = Journal::open(&path).unwrap();
    let mut i = 0u64;
    loop {
        let tx = format!("trx_{i}");
        let rec = j
            .append_outcome(&tx, &json!({"overall_result": "SUCCESS", "i": i}))
            .unwrap();
        println!("APPENDED {} {}", rec.seq, rec.hash);
        if i % 2 == 0 {
            j.mark_acknowledged(rec.seq).unwrap();
            println!("ACKED {}", rec.seq);
        }
        i += 1;
        if !endless && i == 4 {
            assert!(j.verify().unwrap().is_ok());
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
            ["APPENDED", seq, hash] => appended.push((seq.parse().unwrap(), (*hash).to_owned())),
            ["ACKED", seq] => acked.push(seq.parse().unwrap()),
            _ => {}
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix, TerminateProcess on Windows
    child.wait().unwrap();
    drop(lines);

    let j = Journal::open(&path).unwrap();
    let report = j.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.records as usize >= appended.len());
    for (seq, hash) in &appended {
        assert_eq!(
            &j.show(*seq).unwrap().hash,
            hash,
            "record {seq} changed or lost"
        );
    }
    for seq in &acked {
        assert!(
            matches!(j.show(*seq).unwrap().upload, UploadState::Acknowledged(_)),
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
    fn upload(&mut self, record: &JournalRecord) -> Result<(), UploadError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(UploadError::Transient("connection refused".into()));
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
        Ok(())
    }
}

#[test]
fn uploader_queues_while_down_and_drains_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut j = Journal::open(&path).unwrap();
    let sink = FakeSink::default();
    sink.refuse.lock().unwrap().push_back("trx_bad".into());
    let uploader = Uploader::spawn(
        &path,
        sink.clone(),
        UploaderConfig {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            batch: 2,
        },
    )
    .unwrap();
    for i in 0..5 {
        let tx = format!("trx_{i}");
        j.append_started(&tx, &json!({})).unwrap();
        j.append_outcome(&tx, &json!({"i": i})).unwrap();
        uploader.notify();
    }
    j.append_outcome("trx_bad", &json!({})).unwrap();
    assert!(!uploader.flush(Duration::from_millis(300)));
    assert_eq!(j.pending_count().unwrap(), 6);
    assert!(uploader.stats().transient_failures >= 1);
    assert!(sink.received.lock().unwrap().is_empty());

    sink.up.store(true, Ordering::SeqCst);
    assert!(
        uploader.flush(Duration::from_secs(10)),
        "{:?}",
        uploader.stats()
    );
    let stats = uploader.shutdown();
    assert_eq!(stats.uploaded, 5);
    assert_eq!(stats.rejected, 1);
    assert_eq!(
        *sink.received.lock().unwrap(),
        (0..5).map(|i| format!("trx_{i}")).collect::<Vec<_>>()
    );
    assert_eq!(j.pending_count().unwrap(), 0);
    let bad = j
        .list(&kf_audit::ListFilter {
            transaction_id: Some("trx_bad".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(matches!(&bad[0].upload, UploadState::Rejected(why) if why.contains("422")));
    // Started records are never uploaded.
    assert!(!sink.received.lock().unwrap().iter().any(|t| t == "trx_bad"));
}
