//! `kf-station audit verify | list | show | export` through the binary: exit
//! codes 0 intact / 1 tampered / 2 cannot check, read-only access (the
//! file's bytes and the directory are unchanged), the key file, and the
//! refusal of an earlier release's journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

mod common;
use common::{digest, listing, station_in};

fn run(dir: &Path, args: &[&str]) -> Output {
    station_in(dir).args(args).output().unwrap()
}

/// [`run`], asserting that it exits with `code` (both outputs name a failure).
fn run_expecting(dir: &Path, args: &[&str], code: i32) -> Output {
    let out = run(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn journal_with_three_fobs(dir: &Path) {
    for _ in 0..3 {
        let out = run(dir, &["provision", "--sim", "--journal", "j.db"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
}

#[test]
fn verify_exit_codes_and_read_only_access() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    journal_with_three_fobs(d);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("j.db.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "journal key mode");
    }
    let before = digest(&d.join("j.db"));
    let files = listing(d);
    for args in [
        vec!["audit", "verify", "--journal", "j.db"],
        vec!["audit", "list", "--journal", "j.db", "--pending"],
        vec!["audit", "show", "--journal", "j.db", "2"],
        vec!["audit", "export", "--journal", "j.db", "--format", "csv"],
    ] {
        run_expecting(d, &args, 0);
    }
    let out = run(d, &["audit", "verify", "--journal", "j.db"]);
    assert!(
        text(&out.stdout).contains("journal OK: 6 records, keyed chain intact"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        digest(&d.join("j.db")),
        before,
        "reading changed the journal"
    );
    assert_eq!(listing(d), files, "reading created files");

    // Tampered: the last fob's records removed by an insider → exit 1 and where.
    std::fs::copy(d.join("j.db"), d.join("t.db")).unwrap();
    std::fs::copy(d.join("j.db.key"), d.join("t.db.key")).unwrap();
    let c = rusqlite::Connection::open(d.join("t.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq > 4; DELETE FROM uploads WHERE seq > 4;",
    )
    .unwrap();
    drop(c);
    let out = run(d, &["audit", "verify", "--journal", "t.db"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(
        said.contains("record 5") && said.contains("truncated"),
        "{said}"
    );
    // And the station refuses to append to it.
    let out = run(d, &["provision", "--sim", "--journal", "t.db"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("tampered"),
        "{}",
        text(&out.stderr)
    );

    // Cannot check → exit 2: no key, wrong key, not a journal, missing file.
    std::fs::write(d.join("wrong.key"), format!("{}\n", "AB".repeat(32))).unwrap();
    let ledger = d.join("ledger.db");
    rusqlite::Connection::open(&ledger)
        .unwrap()
        .execute_batch("CREATE TABLE issuances (transaction_id TEXT PRIMARY KEY);")
        .unwrap();
    let ledger_before = digest(&ledger);
    for (args, says) in [
        (vec!["--journal", "j.db", "--key", "none.key"], "none.key"),
        (
            vec!["--journal", "j.db", "--key", "wrong.key"],
            "does not belong",
        ),
        (vec!["--journal", "ledger.db"], "not an audit journal"),
        (vec!["--journal", "missing.db"], "missing.db"),
    ] {
        let mut full = vec!["audit", "verify"];
        full.extend(&args);
        let out = run_expecting(d, &full, 2);
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains(&"AB".repeat(32)));
    }
    assert_eq!(
        digest(&ledger),
        ledger_before,
        "verify wrote to a foreign database"
    );
    assert!(!d.join("missing.db").exists());
}

#[test]
fn an_earlier_release_journal_is_refused_unchanged_with_how_to_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = rusqlite::Connection::open(d.join("old.db")).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE records (seq INTEGER PRIMARY KEY, timestamp TEXT NOT NULL,
            transaction_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL, acked_at TEXT, rejected TEXT);",
    )
    .unwrap();
    drop(c);
    let before = digest(&d.join("old.db"));
    std::fs::write(d.join("old.db.key"), format!("{}\n", "11".repeat(32))).unwrap();
    for args in [
        vec!["audit", "verify", "--journal", "old.db"],
        vec!["audit", "list", "--journal", "old.db"],
        vec!["provision", "--sim", "--journal", "old.db"],
    ] {
        let out = run_expecting(d, &args, 2);
        let err = text(&out.stderr);
        assert!(
            err.contains("earlier release") && err.contains("--legacy"),
            "{err}"
        );
    }
    let out = run(d, &["audit", "verify", "--legacy", "--journal", "old.db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 records"));
    assert_eq!(
        digest(&d.join("old.db")),
        before,
        "the old journal was rewritten"
    );
}
