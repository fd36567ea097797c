//! Station-level behaviour of the KLMS source and the durable journal:
//! KLMS down → the fob is not touched beyond its UID; kill -9 mid-run → the
//! journal verifies after restart and the interrupted fob gets a FAILURE outcome.
// They run the simulator commands (`demo`, `provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn station() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kf-station"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn write_klms_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let pki = kf_klms::pki::DevPki::generate("test CA", &["STATION-T"]).unwrap();
    let paths = pki.write_to(&dir.join("pki")).unwrap();
    let config = dir.join("station.toml");
    std::fs::write(
        &config,
        format!(
            "station_id = \"STATION-T\"\njournal = \"{}\"\n[source]\nkind = \"klms\"\n[klms]\nurl = \"{url}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("journal.db").display(),
            paths.ca_cert.display(),
            dir.join("pki/STATION-T.pem").display(),
            dir.join("pki/STATION-T.key").display(),
        ),
    )
    .unwrap();
    config
}

fn journal_records(journal: &Path) -> Vec<Value> {
    let out = run(station()
        .args(["audit", "export", "--format", "json", "--journal"])
        .arg(journal));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn klms_down_fails_at_fetch_keys_and_only_the_uid_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_klms_config(dir.path(), &format!("https://127.0.0.1:{}", closed_port()));
    let started = Instant::now();
    let out = run(station()
        .args(["provision", "--sim", "--json", "--config"])
        .arg(&config));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bounded retries: a clear failure well before any long timeout.
    assert!(started.elapsed() < Duration::from_secs(30));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["result"], "FAIL");
    assert_eq!(result["stage"], "FetchKeys");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    let trace = result["audit"]["apdu_trace"].as_array().unwrap();
    let tx: Vec<&str> = trace
        .iter()
        .filter(|e| e["direction"] == "TX")
        .map(|e| e["apdu_hex"].as_str().unwrap())
        .collect();
    assert_eq!(
        tx,
        vec!["FFCA000000"],
        "nothing but the UID read may reach the fob"
    );
    // The failure is journaled (outcome only: no STORE DATA was attempted).
    let records = journal_records(&dir.path().join("journal.db"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["kind"], "outcome");
    assert_eq!(records[0]["body"]["stage_reached"], "FETCH_KEYS");
}

#[cfg(unix)]
#[test]
fn kill_9_during_a_run_leaves_a_verifiable_journal_and_closes_the_interrupted_fob() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = station()
        .args([
            "demo",
            "--source",
            "dev",
            "--fobs",
            "1500",
            "--json",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it journal some records (it generates its packages first), then kill -9.
    let journal = data.join("journal.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let listed = run(station()
            .args(["audit", "list", "--limit", "20", "--journal"])
            .arg(&journal));
        if listed.status.success() && String::from_utf8_lossy(&listed.stdout).lines().count() >= 20
        {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();

    let verify = run(station()
        .args(["audit", "verify", "--journal"])
        .arg(&journal));
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let before = journal_records(&journal);
    assert!(
        before.len() >= 2,
        "the run journaled nothing before the kill"
    );

    // Restart: any started-without-outcome fob is closed as FAILURE, and the
    // chain still verifies.
    let again = run(station()
        .args([
            "demo",
            "--source",
            "dev",
            "--fobs",
            "1",
            "--json",
            "--data-dir",
        ])
        .arg(&data));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let after = journal_records(&journal);
    assert!(after.len() > before.len());
    let verify = run(station()
        .args(["audit", "verify", "--journal"])
        .arg(&journal));
    assert!(verify.status.success());
    // Every record present before the restart is still there, unchanged.
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old["link"], new["link"]);
    }
    // No transaction is left without an outcome.
    let mut started = std::collections::BTreeSet::new();
    let mut outcomes = std::collections::BTreeSet::new();
    for r in &after {
        let tx = r["transaction_id"].as_str().unwrap().to_string();
        if r["kind"] == "started" {
            started.insert(tx);
        } else {
            outcomes.insert(tx);
        }
    }
    assert!(
        started.is_subset(&outcomes),
        "a started fob has no outcome after restart"
    );
}

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// A journal restored from an older copy is refused at start-up against the
/// KLMS's anchor, unchanged; after an operator reset at the KLMS a new
/// journal is accepted from record 1.
#[test]
fn a_rolled_back_journal_is_refused_at_start_up_until_the_klms_operator_resets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = kf_klms::pki::DevPki::generate("test CA", &["STATION-T"]).unwrap();
    let paths = pki.write_to(&d.join("pki")).unwrap();
    let ledger = d.join("ledger.db");
    let master = kf_crypto::AesKey::from_slice(&[0x33; 16]).unwrap();
    let server =
        kf_klms::spawn_server(kf_klms::KlmsConfig::dev(&pki, ledger.clone(), master).unwrap())
            .unwrap();
    let config = d.join("station.toml");
    std::fs::write(
        &config,
        format!(
            "station_id = \"STATION-T\"\njournal = \"{}\"\n[source]\nkind = \"klms\"\n[klms]\nurl = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            d.join("journal.db").display(),
            server.base_url(),
            paths.ca_cert.display(),
            d.join("pki/STATION-T.pem").display(),
            d.join("pki/STATION-T.key").display(),
        ),
    )
    .unwrap();
    let provision = || {
        run(station()
            .args(["provision", "--sim", "--json", "--config"])
            .arg(&config))
    };
    let anchored = || {
        kf_klms::ledger::Ledger::open(&ledger)
            .unwrap()
            .chain_head("STATION-T")
            .unwrap()
            .0
    };
    // The sim fob does not hold the KLMS's diversified keys: each run is a
    // journaled FAILURE outcome, uploaded and anchored all the same.
    let out = provision();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = d.join("journal.db");
    let backup = d.join("backup.db");
    std::fs::copy(&journal, &backup).unwrap();
    let first = anchored();
    assert!(first >= 1, "nothing anchored after the first run");
    let out = provision();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(anchored() > first);
    // Offline verification with the KLMS receipt key and against the anchor.
    let receipt_key = d.join("klms-receipt.pem");
    std::fs::write(
        &receipt_key,
        kf_klms::anchor::ReceiptSigner::derive(
            &kf_crypto::AesKey::from_slice(&[0x33; 16]).unwrap(),
        )
        .unwrap()
        .public_key_pem()
        .unwrap(),
    )
    .unwrap();
    let verify = || {
        run(station()
            .args(["audit", "verify", "--journal"])
            .arg(&journal)
            .arg("--klms-key")
            .arg(&receipt_key)
            .arg("--against-klms")
            .arg(&config))
    };
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Roll back: the older copy replaces the journal. On its own it is a
    // consistent journal; against the KLMS anchor it is truncated.
    std::fs::copy(&backup, &journal).unwrap();
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tail truncated"));
    // The station refuses to run on it.
    let before = sha(&journal);
    let out = provision();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rolled back") && err.contains("kf-klms chain reset"),
        "{err}"
    );
    assert_eq!(sha(&journal), before, "the refused journal was written to");

    // The KLMS operator acknowledges the reset; the station starts a new journal.
    kf_klms::ledger::Ledger::open(&ledger)
        .unwrap()
        .reset_chain("STATION-T", "journal disk replaced", "test", 1)
        .unwrap();
    std::fs::rename(&journal, d.join("old-journal.db")).unwrap();
    std::fs::rename(d.join("journal.db.key"), d.join("old-journal.db.key")).unwrap();
    let out = provision();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(anchored() >= 1);
    let states = kf_klms::ledger::Ledger::open(&ledger)
        .unwrap()
        .chain_states()
        .unwrap();
    assert_eq!(states[0].alerts, 1, "{states:?}");
    server.shutdown();
}
