//! Station-level behaviour of the KLMS source and the durable journal:
//! KLMS down → the fob is not touched beyond its UID; kill -9 mid-run → the
//! journal verifies after restart and the interrupted fob gets a FAILURE outcome;
//! a crash before or after every APDU (`KF_STATION_SIM_ABORT`) → the same, at
//! exactly that point; the fob torn away before or after every APDU, or its
//! answer lost (`KF_STATION_SIM_TEAR`) → a FAILURE at that APDU's stage, in the
//! journal and on screen, with the advice the fob's state calls for; KLMS
//! refusals (409, 500, 503), a KLMS that does not answer and a KLMS killed
//! during its ledger commit → FetchKeys, retry is safe, and the fob gets its
//! package once the KLMS is back; a package that expires before INITIALIZE
//! UPDATE never reaches the fob.
// They run the simulator commands (`demo`, `provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{digest, station};
use kf_testkit::process::assert_success;
use serde_json::Value;

/// The `--json` outcome of a station run that failed (exit code 1).
fn failed_outcome(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Overall bound of every wait in these tests: generous for a loaded 2-core
/// machine, and a failure (never a silent give-up) when it runs out.
const WAIT: Duration = Duration::from_secs(600);

/// Runs `cmd` to completion; a station that does not exit within [`WAIT`]
/// (a hang, unbounded retries) is killed and fails the test.
fn run(cmd: &mut Command) -> Output {
    kf_testkit::process::output_within(cmd, WAIT)
}

/// The commands a `--json` outcome says were sent to the fob, in order.
fn sent(result: &Value) -> Vec<String> {
    result["audit"]["apdu_trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "TX")
        .map(|e| e["apdu_hex"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that only the fob's identity was read (UID, SELECT, CPLC).
fn assert_only_identity_read(result: &Value) {
    assert_eq!(
        sent(result),
        ["FFCA000000", "00A4040008A00000015100000000", "80CA9F7F00"],
        "nothing but the identity read (UID, CPLC) may reach the fob: {result}"
    );
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn write_klms_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let pki = kf_klms::pki::DevPki::generate("test CA", &["STATION-T"]).unwrap();
    write_klms_config_for(dir, url, &pki)
}

fn write_klms_config_for(dir: &Path, url: &str, pki: &kf_klms::pki::DevPki) -> std::path::PathBuf {
    let paths = pki.write_to(&dir.join("pki")).unwrap();
    write_station_config(dir, url, &paths.ca_cert, &dir.join("pki"))
}

/// `dir/station.toml`: station `STATION-T` with its journal in `dir`, on the
/// KLMS at `url` trusted through `ca`, with the certificate and key of
/// `STATION-T` in `pki`.
fn write_station_config(dir: &Path, url: &str, ca: &Path, pki: &Path) -> std::path::PathBuf {
    let config = dir.join("station.toml");
    std::fs::write(
        &config,
        format!(
            "station_id = \"STATION-T\"\njournal = \"{}\"\n[source]\nkind = \"klms\"\n[klms]\nurl = \"{url}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join("journal.db").display(),
            ca.display(),
            pki.join("STATION-T.pem").display(),
            pki.join("STATION-T.key").display(),
        ),
    )
    .unwrap();
    config
}

/// A dev KLMS with the master key `master` repeated and its ledger at
/// `dir/ledger.db`, changed by `adjust` before it starts, and the station's
/// configuration for it (under `dir`).
fn klms_and_config(
    dir: &Path,
    master: u8,
    adjust: impl FnOnce(&mut kf_klms::KlmsConfig),
) -> (kf_klms::ServerHandle, std::path::PathBuf) {
    let pki = kf_klms::pki::DevPki::generate("test CA", &["STATION-T"]).unwrap();
    let master = kf_crypto::AesKey::from_slice(&[master; 16]).unwrap();
    let mut klms = kf_klms::KlmsConfig::dev(&pki, dir.join("ledger.db"), master).unwrap();
    adjust(&mut klms);
    let server = kf_klms::spawn_server(klms).unwrap();
    let config = write_klms_config_for(dir, &server.base_url(), &pki);
    (server, config)
}

fn journal_records(journal: &Path) -> Vec<Value> {
    let out = run(station()
        .args(["audit", "export", "--format", "json", "--journal"])
        .arg(journal));
    assert_success(&out);
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `kf-station audit verify` of `journal`, run to completion.
fn verify_journal(journal: &Path) -> Output {
    run(station()
        .args(["audit", "verify", "--journal"])
        .arg(journal))
}

/// The journal verifies; else the verifier's report is the failure message.
#[track_caller]
fn assert_journal_verifies(journal: &Path) {
    assert_success(&verify_journal(journal));
}

#[test]
fn klms_down_fails_at_fetch_keys_and_only_the_identity_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_klms_config(dir.path(), &format!("https://127.0.0.1:{}", closed_port()));
    let out = run(station()
        .args(["provision", "--sim", "--json", "--config"])
        .arg(&config));
    // Bounded retries: `run` fails the test if the station never gives up.
    let result = failed_outcome(&out);
    assert_eq!(result["result"], "FAIL");
    assert_eq!(result["stage"], "FetchKeys");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    assert_only_identity_read(&result);
    // The failure is journaled (outcome only: no STORE DATA was attempted).
    let records = journal_records(&dir.path().join("journal.db"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["kind"], "outcome");
    assert_eq!(records[0]["body"]["stage_reached"], "FETCH_KEYS");
}

#[cfg(unix)]
#[test]
fn kill_9_during_a_run_leaves_a_verifiable_journal_and_closes_the_interrupted_fob() {
    // A run journals two records per fob (started, outcome). The virtual
    // fobs answer at the modeled speed of a 106 kbit/s link (about a quarter
    // of a second a fob), so the kill falls mid-run on any machine.
    const FOBS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = station()
        .args([
            "demo",
            "--source",
            "dev",
            "--fobs",
            &FOBS.to_string(),
            "--json",
            "--link",
            "106k",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it journal some records (it generates its packages first), then kill -9.
    let journal = data.join("journal.db");
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the demo journaled fewer than 20 records in {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        let listed = run(station()
            .args(["audit", "list", "--limit", "20", "--journal"])
            .arg(&journal));
        if listed.status.success() && String::from_utf8_lossy(&listed.stdout).lines().count() >= 20
        {
            break;
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the demo finished before it could be killed"
    );
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();

    assert_journal_verifies(&journal);
    let before = journal_records(&journal);
    assert!(
        (2..2 * FOBS).contains(&before.len()),
        "the kill must fall mid-run; the journal holds {} of {} records",
        before.len(),
        2 * FOBS
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
    assert_success(&again);
    let after = journal_records(&journal);
    assert!(after.len() > before.len());
    let verify = verify_journal(&journal);
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

/// `provision --sim --json` against the KLMS of `config`, which must run to a PASS or FAIL
/// (exit 0 or 1: the sim fob does not hold the KLMS's diversified keys, and either way the
/// outcome is journaled, uploaded and anchored).
fn provision_to_an_outcome(config: &Path) -> Output {
    let out = provision_sim(config);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `provision --sim --json` against the KLMS of `config`, whatever its exit code.
fn provision_sim(config: &Path) -> Output {
    run(station()
        .args(["provision", "--sim", "--json", "--config"])
        .arg(config))
}

/// The KLMS operator resets the station's chain in the ledger of `d` for `reason`, and the
/// station sets its journal (and key) in `d` aside to start a new one from record 1.
fn reset_chain_and_set_the_journal_aside(d: &Path, reason: &str) {
    kf_klms::ledger::Ledger::open(d.join("ledger.db"))
        .unwrap()
        .reset_chain(
            "STATION-T",
            &kf_klms::ledger::OperatorAction::new(reason, "test", 1),
        )
        .unwrap();
    std::fs::rename(d.join("journal.db"), d.join("old-journal.db")).unwrap();
    std::fs::rename(d.join("journal.db.key"), d.join("old-journal.db.key")).unwrap();
}

/// A journal restored from an older copy is refused at start-up against the
/// KLMS's anchor, unchanged; after an operator reset at the KLMS a new
/// journal is accepted from record 1.
#[test]
fn a_rolled_back_journal_is_refused_at_start_up_until_the_klms_operator_resets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (server, config) = klms_and_config(d, 0x33, |_| {});
    let ledger = d.join("ledger.db");
    let provision = || provision_sim(&config);
    let anchored = || {
        kf_klms::ledger::Ledger::open(&ledger)
            .unwrap()
            .chain_head("STATION-T")
            .unwrap()
            .0
    };
    provision_to_an_outcome(&config);
    let journal = d.join("journal.db");
    let backup = d.join("backup.db");
    std::fs::copy(&journal, &backup).unwrap();
    let first = anchored();
    assert!(first >= 1, "nothing anchored after the first run");
    provision_to_an_outcome(&config);
    assert!(anchored() > first);
    // Offline verification with the KLMS receipt key and against the anchor.
    let receipt_key = d.join("klms-receipt.pem");
    std::fs::write(
        &receipt_key,
        kf_klms::receipt::ReceiptSigner::derive(
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
    let before = digest(&journal);
    let out = provision();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rolled back") && err.contains("kf-klms chain reset"),
        "{err}"
    );
    assert_eq!(
        digest(&journal),
        before,
        "the refused journal was written to"
    );

    // The KLMS operator acknowledges the reset; the station starts a new journal.
    reset_chain_and_set_the_journal_aside(d, "journal disk replaced");
    provision_to_an_outcome(&config);
    assert!(anchored() >= 1);
    let states = kf_klms::ledger::Ledger::open(&ledger)
        .unwrap()
        .chain_states()
        .unwrap();
    assert_eq!(states[0].alerts, 1, "{states:?}");
    server.shutdown();
}

/// A KLMS whose stored chain head for the station was damaged (a link that is not hex):
/// the station does not start on it, says why and that the KLMS operator resets the chain,
/// and writes nothing to its journal; after the reset it runs again.
#[test]
fn a_corrupt_chain_head_at_the_klms_stops_the_station_until_the_operator_resets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (server, config) = klms_and_config(d, 0x34, |_| {});
    provision_to_an_outcome(&config);
    rusqlite::Connection::open(d.join("ledger.db"))
        .unwrap()
        .execute_batch("UPDATE chain_heads SET link = 'not hex' WHERE station = 'STATION-T'")
        .unwrap();
    let journal = d.join("journal.db");
    let before = digest(&journal);
    let out = provision_sim(&config);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("chain head")
            && err.contains("corrupt")
            && err.contains("kf-klms chain reset"),
        "{err}"
    );
    assert_eq!(digest(&journal), before, "the journal was written to");

    reset_chain_and_set_the_journal_aside(d, "ledger restored");
    provision_to_an_outcome(&config);
    server.shutdown();
}

/// A KLMS with nothing left to hand out: every key-package request gets 503.
struct NoContent(Arc<AtomicUsize>);

impl kf_klms::content::ContentProvider for NoContent {
    fn content_for(
        &self,
        _fob_uid: &[u8],
    ) -> Result<kf_klms::content::FobContent, kf_klms::content::ContentError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(kf_klms::content::ContentError::Exhausted)
    }
}

/// A master key whose derivations fail (the KLMS answers 500) and are counted; its receipt
/// key works, so the server starts.
struct BrokenDerivation(kf_klms::keystore::FileKey, Arc<AtomicUsize>);

impl kf_klms::keystore::KeyBackend for BrokenDerivation {
    fn describe(&self) -> String {
        "a key whose derivations fail".into()
    }
    fn diversify(&self, _uid: &[u8]) -> Result<kf_crypto::StaticKeys, kf_klms::keystore::KeyError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Err(kf_klms::keystore::KeyError::Failed(
            "the test's broken key".into(),
        ))
    }
    fn receipt_seed(
        &self,
        counter: u32,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, kf_klms::keystore::KeyError> {
        kf_klms::keystore::KeyBackend::receipt_seed(&self.0, counter)
    }
}

/// Runs `provision --sim --json` (always the same fob) against the KLMS of
/// `config`; returns the result line and the exit code.
fn provision_with_klms(config: &Path) -> (Value, Option<i32>) {
    provision_with_klms_env(config, &[])
}

/// [`provision_with_klms`] with these variables set.
fn provision_with_klms_env(config: &Path, env: &[(&str, &str)]) -> (Value, Option<i32>) {
    let out = run(station()
        .args([
            "provision",
            "--sim",
            "--sim-uid",
            "04A1B2C3D4E5F6070809",
            "--json",
        ])
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied()));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON result ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (result, out.status.code())
}

/// A KLMS refusal reaches the operator at FetchKeys: the reason, "retry is
/// safe", nothing but the identity read on the fob, and the outcome journaled.
fn assert_refused_at_fetch_keys(result: &Value, code: Option<i32>, reason: &str) {
    assert_eq!(code, Some(1), "{result}");
    assert_eq!(result["result"], "FAIL");
    assert_eq!(result["stage"], "FetchKeys");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains(reason), "{error}");
    assert_eq!(result["retry"], "safe");
    assert_only_identity_read(result);
}

#[test]
fn a_fob_already_issued_a_klms_without_content_and_a_failing_klms_are_refused_at_fetch_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (server, config) = klms_and_config(dir.path(), 0x42, |_| {});
    // The first request for the sim fob's UID gets its package (whatever the
    // fob then does with keys it does not hold); the second is refused 409.
    let (first, _) = provision_with_klms(&config);
    assert_ne!(first["stage"], "FetchKeys", "{first}");
    let (second, code) = provision_with_klms(&config);
    assert_refused_at_fetch_keys(&second, code, "already");
    let records = journal_records(&dir.path().join("journal.db"));
    assert_eq!(
        records.last().unwrap()["body"]["stage_reached"],
        "FETCH_KEYS"
    );
    drop(server);

    // 503 from the KLMS: retried, three attempts in all (the client's default), then
    // refused.
    let dir = tempfile::tempdir().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let (_server, config) = klms_and_config(dir.path(), 0x42, |klms| {
        klms.content = Arc::new(NoContent(Arc::clone(&asked)));
    });
    let (result, code) = provision_with_klms(&config);
    assert_refused_at_fetch_keys(&result, code, "503");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        3,
        "attempts at a KLMS answering 503"
    );

    // 500 from the KLMS (its key derivation fails): refused at FetchKeys after one request
    // (a server error is not retried: only 502 to 504 are).
    let dir = tempfile::tempdir().unwrap();
    let derivations = Arc::new(AtomicUsize::new(0));
    let (_server, config) = klms_and_config(dir.path(), 0x42, |klms| {
        let master = kf_crypto::AesKey::from_slice(&[0x42; 16]).unwrap();
        klms.key = Arc::new(BrokenDerivation(
            kf_klms::keystore::FileKey::new(master),
            Arc::clone(&derivations),
        ));
    });
    let (result, code) = provision_with_klms(&config);
    assert_refused_at_fetch_keys(&result, code, "HTTP 500");
    assert_eq!(
        derivations.load(Ordering::SeqCst),
        1,
        "requests to a KLMS answering 500"
    );
}

/// A key package that expires after it was fetched and before INITIALIZE UPDATE (its time
/// to live 1.5 s, the station held 3 s after the fetch by its test hook): the fob fails at
/// InitializeUpdate with "expired", retry is safe, nothing but the identity read reached the
/// fob (no SELECT of the applet, no INITIALIZE UPDATE with keys past their time), and the
/// FAILURE outcome is journaled.
#[test]
fn a_klms_package_expiring_before_initialize_update_never_reaches_the_fob() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, config) = klms_and_config(dir.path(), 0x42, |klms| {
        klms.ttl = Duration::from_millis(1500);
    });
    let (result, code) = provision_with_klms_env(&config, &[("KF_STATION_TEST_STALL_MS", "3000")]);
    assert_eq!(code, Some(1), "{result}");
    assert_eq!(result["stage"], "InitializeUpdate", "{result}");
    assert!(
        result["error"].as_str().unwrap().contains("expired"),
        "{result}"
    );
    assert_eq!(result["retry"], "safe", "{result}");
    assert_only_identity_read(&result);
    let records = journal_records(&dir.path().join("journal.db"));
    let outcome = records.last().unwrap();
    assert_eq!(outcome["kind"], "outcome");
    assert_eq!(outcome["body"]["stage_reached"], "INITIALIZE_UPDATE");
    assert_eq!(outcome["body"]["overall_result"], "FAILURE");
}

/// The failure reason the next start gives a fob the station crashed on
/// (`kf-station`'s `journal::INTERRUPTED_REASON`).
const INTERRUPTED: &str =
    "station stopped during personalization; outcome unknown, re-present the fob";

/// The station process aborts (power loss) before the fob sees APDU N, or
/// right after the fob executed it, for every N of a session. The next start
/// works and closes what the crash left open: exactly one interrupted outcome
/// for the crashed fob once its "started" record was written (right before
/// the first STORE DATA), none before; the journal verifies either way.
#[cfg(unix)]
#[test]
fn a_crash_at_every_apdu_leaves_one_interrupted_record_once_a_store_data_was_due() {
    use std::os::unix::process::ExitStatusExt;
    const CRASHED: &str = "04C0FFEE112233445566";
    let dir = tempfile::tempdir().unwrap();
    let provision = |journal: &Path, uid: &str| {
        let mut cmd = station();
        cmd.args(["provision", "--sim", "--sim-uid", uid, "--source", "dev"])
            .args(["--json", "--journal"])
            .arg(journal);
        cmd
    };
    // A full session: its commands, and where the first STORE DATA is.
    let full = run(&mut provision(&dir.path().join("full.db"), CRASHED));
    assert_success(&full);
    let result: Value = serde_json::from_slice(&full.stdout).unwrap();
    let tx = sent(&result);
    let first_store = tx.iter().position(|a| a.get(2..4) == Some("E2")).unwrap();
    for when in ["before", "after"] {
        for (n, apdu) in tx.iter().enumerate() {
            let what = format!("crash {when} APDU {n} ({})", &apdu[..4]);
            let journal = dir.path().join(format!("{when}-{n}.db"));
            let crashed = run(
                provision(&journal, CRASHED).env("KF_STATION_SIM_ABORT", format!("{when}:{n}"))
            );
            assert_eq!(crashed.status.signal(), Some(6), "{what}: not aborted");
            let next = run(&mut provision(&journal, "04AAAAAAAAAAAAAAAAAA"));
            assert!(
                next.status.success(),
                "{what}: the next start failed: {}",
                String::from_utf8_lossy(&next.stderr)
            );
            let verify = verify_journal(&journal);
            assert!(verify.status.success(), "{what}: journal does not verify");
            let records = journal_records(&journal);
            let interrupted: Vec<&Value> = records
                .iter()
                .filter(|r| r["kind"] == "outcome" && r["body"]["failure_reason"] == INTERRUPTED)
                .collect();
            let crashed_fob = records
                .iter()
                .filter(|r| r["body"]["fob_uid"] == CRASHED)
                .count();
            if n >= first_store {
                assert_eq!(interrupted.len(), 1, "{what}");
                assert_eq!(interrupted[0]["body"]["fob_uid"], CRASHED, "{what}");
                assert_eq!(
                    interrupted[0]["body"]["stage_reached"], "PAYLOAD_DELIVERY",
                    "{what}"
                );
                // Its started record and the outcome the restart wrote.
                assert_eq!(crashed_fob, 2, "{what}");
            } else {
                assert!(interrupted.is_empty(), "{what}");
                assert_eq!(crashed_fob, 0, "{what}: nothing was due to reach the fob");
            }
        }
    }
}

/// The stage an APDU of a full session belongs to, as the README documents
/// the stages (not as the pipeline computes them): the identity read (UID,
/// SELECT of the ISD, CPLC) is ReadUid; SELECT of the applet and INITIALIZE
/// UPDATE are InitializeUpdate; the last STORE DATA (P1 `80`) is the
/// LifecycleTransition, the others PayloadDelivery.
fn documented_stage(tx: &[String], n: usize) -> &'static str {
    let apdu = tx[n].as_str();
    let last_store = tx.iter().rposition(|a| a.get(2..4) == Some("E2"));
    match apdu.get(..4).unwrap_or_default() {
        "FFCA" | "80CA" => "ReadUid",
        "00A4" if apdu.contains("A000000151") => "ReadUid",
        "00A4" | "8050" => "InitializeUpdate",
        "8482" => "ExternalAuthenticate",
        _ if apdu.get(2..4) == Some("E2") && Some(n) == last_store => "LifecycleTransition",
        _ if apdu.get(2..4) == Some("E2") => "PayloadDelivery",
        _ if apdu.get(2..4) == Some("DB") => "PostPersonalization",
        _ if apdu.get(2..4) == Some("88") => "Verify",
        other => panic!("APDU {n} ({other}) is in no documented stage"),
    }
}

/// The fob torn away before each APDU, after the fob executed it, or its
/// answer lost, at levels 01, 03 and 33, with the journal: the station never
/// reports success; the line the operator reads and the journal's outcome name
/// the stage of that APDU; the advice is "presented again" only while no
/// STORE DATA was sent, and "set aside for a check" from the first one on
/// (the card may have executed it: the dangerous case is the last STORE DATA
/// or the life-cycle change done by the card while the host saw a failure);
/// a started record precedes the outcome exactly when a STORE DATA was due.
#[test]
fn a_tear_at_every_apdu_is_journaled_at_its_stage_with_the_advice_the_fob_needs() {
    const SAFE: &str = "(nothing was written; the fob may be presented again)";
    const CHECK: &str = "(the fob may hold part of its content; set it aside for a check)";
    let dir = tempfile::tempdir().unwrap();
    let provision = |journal: &Path, level: &str, uid: &str| {
        let mut cmd = station();
        cmd.args(["provision", "--sim", "--sim-uid", uid, "--source", "dev"])
            .args(["--level", level, "--journal"])
            .arg(journal);
        cmd
    };
    let check_level = |level: &str| -> usize {
        let mut checked = 0;
        let full = run(provision(
            &dir.path().join(format!("full-{level}.db")),
            level,
            "04C0FFEE112233440000",
        )
        .arg("--json"));
        assert_success(&full);
        let tx = sent(&serde_json::from_slice(&full.stdout).unwrap());
        let first_store = tx.iter().position(|a| a.get(2..4) == Some("E2")).unwrap();
        for cut in ["before", "after", "lost"] {
            let journal = dir.path().join(format!("{level}-{cut}.db"));
            let mut expected = Vec::new();
            for (n, apdu) in tx.iter().enumerate() {
                let what = format!("level {level}, {cut}:{n} ({})", &apdu[..4]);
                let uid = format!("04C0FFEE11223344{n:04X}");
                let out = run(provision(&journal, level, &uid)
                    .env("KF_STATION_SIM_TEAR", format!("{cut}:{n}")));
                let line = String::from_utf8_lossy(&out.stdout).into_owned();
                assert_eq!(out.status.code(), Some(1), "{what}: {line}");
                let stage = documented_stage(&tx, n);
                assert!(line.starts_with("FAIL"), "{what}: {line}");
                assert!(line.contains(&format!(" at {stage}: ")), "{what}: {line}");
                let advice = if n >= first_store { CHECK } else { SAFE };
                assert!(line.trim_end().ends_with(advice), "{what}: {line}");
                // Cut at the UID read itself, the fob is journaled without a UID.
                let journaled_uid = if n == 0 { String::new() } else { uid };
                expected.push((journaled_uid, stage, n >= first_store));
                checked += 1;
            }
            assert_journal_verifies(&journal);
            let records = journal_records(&journal);
            for (uid, stage, started) in expected {
                let kinds: Vec<(&str, &str)> = records
                    .iter()
                    .filter(|r| r["body"]["fob_uid"] == uid.as_str())
                    .map(|r| {
                        (
                            r["kind"].as_str().unwrap(),
                            r["body"]["overall_result"].as_str().unwrap_or("-"),
                        )
                    })
                    .collect();
                let want: &[(&str, &str)] = if started {
                    &[("started", "-"), ("outcome", "FAILURE")]
                } else {
                    &[("outcome", "FAILURE")]
                };
                assert_eq!(kinds, want, "level {level}, {cut}, fob {uid}");
                let outcome = records
                    .iter()
                    .find(|r| r["kind"] == "outcome" && r["body"]["fob_uid"] == uid.as_str())
                    .unwrap();
                let journaled = outcome["body"]["stage_reached"].as_str().unwrap();
                assert_eq!(
                    journaled.replace('_', ""),
                    stage.to_uppercase(),
                    "level {level}, {cut}, fob {uid}"
                );
            }
        }
        checked
    };
    // The levels side by side: each run is a process of its own.
    let checked: usize = std::thread::scope(|s| {
        let levels = ["01", "03", "33"].map(|level| s.spawn(move || check_level(level)));
        levels.into_iter().map(|l| l.join().unwrap()).sum()
    });
    // 3 levels × 3 cuts × every APDU of a session (12 at each level).
    assert_eq!(checked, 3 * 3 * 12);
}

#[test]
fn three_readers_share_one_journal_chain_and_the_klms_anchors_all_of_it() {
    const FOBS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = run(station()
        .args([
            "demo",
            "--readers",
            "3",
            "--fobs",
            &FOBS.to_string(),
            // Each fob takes tens of milliseconds, so every reader gets fobs.
            "--link",
            "848k",
            "--json",
            "--data-dir",
        ])
        .arg(&data));
    assert_success(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["fobs"], FOBS);
    assert_eq!(summary["readers"], 3);
    assert_eq!(summary["failed"], 0);
    // Every journal record reached the KLMS and was anchored there in order.
    assert_eq!(summary["audit_uploaded"], 2 * FOBS);
    assert_eq!(summary["audit_pending"], 0);

    let journal = data.join("journal.db");
    assert_journal_verifies(&journal);
    let records = journal_records(&journal);
    assert_eq!(records.len(), 2 * FOBS);
    let mut per_reader = std::collections::BTreeMap::<String, usize>::new();
    let mut uids = std::collections::BTreeSet::new();
    for record in records.iter().filter(|r| r["kind"] == "outcome") {
        assert_eq!(record["body"]["overall_result"], "SUCCESS");
        let reader = record["body"]["reader_id"].as_str().unwrap().to_string();
        *per_reader.entry(reader).or_default() += 1;
        assert!(uids.insert(record["body"]["fob_uid"].as_str().unwrap().to_string()));
    }
    assert_eq!(
        per_reader.keys().collect::<Vec<_>>(),
        ["DEMO-READER-01", "DEMO-READER-02", "DEMO-READER-03"]
    );
    assert_eq!(per_reader.values().sum::<usize>(), FOBS);
    // Each fob's "started" record precedes its outcome in the one chain.
    for outcome in records.iter().filter(|r| r["kind"] == "outcome") {
        let tx = &outcome["transaction_id"];
        assert!(tx.is_string());
        let started = records
            .iter()
            .position(|r| r["kind"] == "started" && &r["transaction_id"] == tx)
            .unwrap();
        let done = records.iter().position(|r| r == outcome).unwrap();
        assert!(started < done);
    }
}

/// A KLMS that accepts the request and does not answer (its ledger is held
/// by another writer): the station gives up after its request timeout, at
/// FetchKeys, with only the identity read from the fob, and says so.
#[test]
fn a_klms_that_does_not_answer_times_out_at_fetch_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The KLMS waits for the ledger for as long as the test does, so the
    // held request survives however slowly the station reaches its timeout.
    let (server, config) = klms_and_config(d, 0x44, |klms| {
        klms.limits.ledger_lock_wait_ms = WAIT.as_millis().try_into().unwrap();
    });
    let ledger = d.join("ledger.db");
    // Another writer holds the ledger until the station has given up: the
    // KLMS waits for it, the station's request times out after 5 s.
    let holder = rusqlite::Connection::open(&ledger).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    const UID: &str = "04A0A1A2A3A4A5A6A7A8";
    let provision = || {
        run(station()
            .args(["provision", "--sim", "--sim-uid", UID, "--json", "--config"])
            .arg(&config))
    };
    let out = provision();
    holder.execute_batch("COMMIT").unwrap();
    let result = failed_outcome(&out);
    assert_eq!(result["stage"], "FetchKeys", "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("did not answer within 5000 ms"), "{error}");
    assert_eq!(result["retry"], "safe", "{result}");
    assert_only_identity_read(&result);

    // The KLMS finishes the request it was holding once the ledger is free;
    // the fob presented again gets its package (and, being a dev-key
    // simulator, fails later, at INITIALIZE UPDATE: the KLMS key set is not
    // on it). A timed-out fetch does not lock the fob out.
    let deadline = Instant::now() + WAIT;
    while holder
        .query_row(
            "SELECT COUNT(*) FROM issuances WHERE fob_uid = ?1",
            [UID],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the KLMS never issued the package"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again: Value = serde_json::from_slice(&provision().stdout).unwrap();
    assert_eq!(again["stage"], "InitializeUpdate", "{again}");
    server.shutdown();
}

/// `kf-klms`, built beside `kf-station` by the workspace build.
fn klms_binary() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_kf-station")).with_file_name(if cfg!(windows) {
        "kf-klms.exe"
    } else {
        "kf-klms"
    });
    assert!(
        path.is_file(),
        "{} is missing: build the workspace (`cargo build --workspace --all-features`)",
        path.display()
    );
    path
}

/// `kf-klms serve` on a free loopback port; killed (SIGKILL) when dropped.
struct KlmsProcess {
    child: std::process::Child,
    port: u16,
}

impl KlmsProcess {
    fn start(config: &Path) -> KlmsProcess {
        let port = closed_port();
        let mut child = Command::new(klms_binary())
            .args(["serve", "--config"])
            .arg(config)
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("KF_KLMS_MASTER_KEY")
            .env_remove("KF_KLMS_LEDGER_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "kf-klms serve exited");
            assert!(Instant::now() < deadline, "kf-klms serve never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        KlmsProcess { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KlmsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Established TCP connections to `port` on loopback (Linux /proc/net/tcp).
#[cfg(target_os = "linux")]
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[2].ends_with(&format!(":{port:04X}")) && cols[3] == "01"
        })
        .count()
}

/// Whether a thread of process `pid` is in `nanosleep`/`clock_nanosleep`
/// (x86-64 syscalls 35 and 230): SQLite's busy handler waiting for a lock.
/// The runtime's idle threads wait in `epoll_wait` or `futex` instead.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn sleeping_in_a_syscall(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("syscall"))
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            .is_some_and(|n| n == "35" || n == "230")
    })
}

/// The KLMS process killed while the station's request waits in its ledger
/// commit: the station fails the fob at FetchKeys (retry safe), the ledger
/// stays intact, and the fob presented again to a restarted KLMS gets its
/// package.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn the_klms_killed_during_a_commit_fails_the_fob_safely_and_recovers_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = run(Command::new(klms_binary())
        .args(["pki", "init"])
        .arg(d.join("klms"))
        .args(["--station", "STATION-T"]));
    assert!(init.status.success(), "{init:?}");
    let klms_config = d.join("klms/klms.toml");
    let ledger = d.join("klms/klms-ledger.db");
    let station_config = |port: u16| {
        let url = format!("https://127.0.0.1:{port}");
        write_station_config(d, &url, &d.join("klms/ca.pem"), &d.join("klms"))
    };
    const UID: &str = "04B0B1B2B3B4B5B6B7B8";
    let provision = |config: &Path| {
        station()
            .args(["provision", "--sim", "--sim-uid", UID, "--json", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let mut klms = KlmsProcess::start(&klms_config);
    // The ledger exists once the KLMS runs; hold it so the commit waits.
    let holder = rusqlite::Connection::open(&ledger).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let baseline = established_to(klms.port);
    let fetching = provision(&station_config(klms.port));
    // Wait until a KLMS thread sleeps in SQLite's busy handler: the
    // station's request is then inside the ledger commit.
    let deadline = Instant::now() + WAIT;
    while established_to(klms.port) <= baseline || !sleeping_in_a_syscall(klms.child.id()) {
        assert!(
            Instant::now() < deadline,
            "the station's request never reached the KLMS ledger"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    klms.kill();
    holder.execute_batch("COMMIT").unwrap();
    let out = kf_testkit::process::wait_output_within(fetching, WAIT);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["stage"], "FetchKeys", "{result}");
    assert_eq!(result["retry"], "safe", "{result}");
    let error = result["error"].as_str().unwrap();
    // Sent once, not retried: the KLMS may have acted on it.
    assert!(
        error.contains("KLMS unreachable") && error.contains("after 1 attempt(s)"),
        "{error}"
    );
    assert_only_identity_read(&result);
    let check: String = holder
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(holder);

    // A new KLMS on the same ledger: the fob gets its package.
    let klms = KlmsProcess::start(&klms_config);
    let again =
        kf_testkit::process::wait_output_within(provision(&station_config(klms.port)), WAIT);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["stage"], "InitializeUpdate", "{again}");
    let verify = verify_journal(&d.join("journal.db"));
    assert!(verify.status.success(), "{verify:?}");
}
