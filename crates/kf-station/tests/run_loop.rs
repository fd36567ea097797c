//! `kf-station run` (the station loop) end to end: the real binary on a real
//! pcscd with the vsmartcard vpcd driver, virtual fobs presented and removed
//! one after the other, Ctrl-C (SIGINT) to stop, then the journal checked with
//! `kf-station audit`.
//!
//! Needs root and the Debian packages `pcscd vsmartcard-vpcd libpcsclite-dev`
//! (scripts/test.sh installs them). A missing piece FAILS the test loudly.
//! pcsc-lite has one socket per machine (`/run/pcscd/pcscd.comm`), so the
//! child station inherits nothing special: it talks to the pcscd this test
//! started. Tests in this binary take turns on it (`kf_testkit::VpcdStack`).
#![cfg(all(unix, feature = "pcsc"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a SIGINT may take to end the station before the test fails: a
/// generous bound for a loaded machine (a station waiting for the fob to be
/// removed never exits, since nobody removes it).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

use kf_apdu::gp::ins::STORE_DATA;
use kf_card::{FobConfig, Uid, VirtualFob};
use kf_crypto::StaticKeys;
use kf_profile::{AppletLifeCycle, DEV_SAMPLE_KVN};
use kf_testkit::VpcdStack;

mod common;
use common::secrets::{all_files, assert_no_leak, session_keys};
use kf_transport::pcsc::PcscContext;
use kf_transport::vpcd::BridgeHandle;
use serde_json::Value;

/// Upper bound for any single step (a fob takes tens of milliseconds; pcscd
/// notices insertion and removal within its ~400 ms poll).
const STEP: Duration = Duration::from_secs(15);
/// Presents `fob` on vpcd slot 0 and waits until pcscd reports the card.
fn insert(stack: &VpcdStack, context: &PcscContext, fob: VirtualFob) -> BridgeHandle<VirtualFob> {
    let bridge = stack.insert(fob, STEP).unwrap();
    context
        .wait_for_card(&stack.reader_name(0), Some(STEP))
        .unwrap();
    bridge
}

/// Takes the fob out of the field and waits until pcscd reports the reader
/// empty (so the station's own removal wait sees it before the next fob).
fn remove(
    stack: &VpcdStack,
    context: &PcscContext,
    bridge: BridgeHandle<VirtualFob>,
) -> VirtualFob {
    let fob = bridge.stop_and_join().unwrap();
    context
        .wait_for_removal(&stack.reader_name(0), Some(STEP))
        .unwrap();
    fob
}

fn good_fob(uid: &Uid) -> VirtualFob {
    VirtualFob::new(FobConfig::dev_sample().with_uid(uid.clone())).unwrap()
}

/// A fob whose key set under the dev-sample KVN is not the dev-sample one:
/// the card cryptogram cannot match and SCP03 authentication fails.
fn foreign_key_fob(uid: &Uid) -> VirtualFob {
    let keys = StaticKeys::from_hex(
        "000102030405060708090A0B0C0D0E0F",
        "101112131415161718191A1B1C1D1E1F",
        "202122232425262728292A2B2C2D2E2F",
    )
    .unwrap();
    let config = FobConfig::dev_sample()
        .with_uid(uid.clone())
        .with_only_key_set(DEV_SAMPLE_KVN, keys);
    VirtualFob::new(config).unwrap()
}

fn hex_uid(uid: &Uid) -> String {
    hex::encode_upper(uid.as_bytes())
}

/// A running `kf-station run`, its output collected line by line. Dropping
/// it kills the child (a failed assertion must not leave it behind).
/// One channel per stream: the threads reading stdout and stderr race, so a
/// line of one stream must stay queued while the other is searched.
struct Station {
    child: Child,
    out_lines: Receiver<String>,
    err_lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    tx: std::sync::mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(line);
        }
    });
}

impl Station {
    fn spawn(reader: &str, journal: &Path, audit_file: &Path) -> Station {
        Station::spawn_with(
            &["--source", "dev", "--reader", reader],
            journal,
            audit_file,
        )
    }

    /// `run ARGS --journal … --audit-file … --console 127.0.0.1:0`.
    fn spawn_with(args: &[&str], journal: &Path, audit_file: &Path) -> Station {
        Station::spawn_logging(args, journal, audit_file, "")
    }

    /// [`Station::spawn_with`] with `RUST_LOG=log` (the caller's `RUST_LOG` when empty).
    fn spawn_logging(args: &[&str], journal: &Path, audit_file: &Path, log: &str) -> Station {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kf-station"));
        if !log.is_empty() {
            cmd.env("RUST_LOG", log);
        }
        // Only this test's settings: no KF_* override from the caller's shell.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KF_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .env("KF_STATION_ID", "RUN-LOOP-TEST")
            .arg("run")
            .args(args)
            .arg("--journal")
            .arg(journal)
            .arg("--audit-file")
            .arg(audit_file)
            .args(["--console", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out_tx, out_lines) = channel();
        let (err_tx, err_lines) = channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), stdout.clone(), out_tx);
        collect(child.stderr.take().unwrap(), stderr.clone(), err_tx);
        Station {
            child,
            out_lines,
            err_lines,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> (String, String) {
        let get = |s: &Arc<Mutex<String>>| s.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (get(&self.stdout), get(&self.stderr))
    }

    fn fail(&mut self, what: &str) -> ! {
        let status = self.child.try_wait().ok().flatten();
        let (out, err) = self.output();
        panic!(
            "{what} (station exit status: {status:?})\n--- stdout ---\n{out}--- stderr ---\n{err}"
        );
    }

    /// Waits for a stdout line (`stdout == true`) or stderr line matching
    /// `want`; returns it.
    fn expect(&mut self, stdout: bool, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let lines = if stdout {
                &self.out_lines
            } else {
                &self.err_lines
            };
            match lines.recv_timeout(left) {
                Ok(l) if want(&l) => return l,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => self.fail(&format!("no {what} within {STEP:?}")),
                Err(RecvTimeoutError::Disconnected) => {
                    // The stream closed: the station is exiting; let it finish
                    // so the failure shows its exit status.
                    std::thread::sleep(Duration::from_millis(300));
                    self.fail(&format!("the station exited before {what}"))
                }
            }
        }
    }

    fn expect_result(&mut self, result: &str, uid: &Uid) -> String {
        let prefix = format!("{result}  {}  ", hex_uid(uid));
        self.expect(true, &format!("`{prefix}…` line"), |l| {
            l.starts_with(&prefix)
        })
    }

    /// SIGINT (what Ctrl-C sends), then waits for the exit.
    fn interrupt(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed");
        while sent.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.fail(&format!(
            "the station did not exit within {within:?} of SIGINT"
        ))
    }

    /// SIGINT, then checks the exit: code `code` and no panic; returns
    /// stdout and how long the station took to exit.
    fn interrupt_expecting(&mut self, code: i32) -> (String, Duration) {
        let (status, took) = self.interrupt(EXIT_TIMEOUT);
        let (stdout, stderr) = self.finish_output();
        assert_eq!(
            status.code(),
            Some(code),
            "--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        );
        assert_no_panic(&stdout, &stderr);
        (stdout, took)
    }

    /// The rest of the output after the child exited (reader threads drain).
    fn finish_output(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for lines in [&self.out_lines, &self.err_lines] {
            while Instant::now() < deadline {
                if let Err(RecvTimeoutError::Disconnected) =
                    lines.recv_timeout(Duration::from_millis(50))
                {
                    break;
                }
            }
        }
        self.output()
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn station_cli(args: &[&str], journal: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kf-station"))
        .args(args)
        .arg("--journal")
        .arg(journal)
        .output()
        .unwrap()
}

/// Runs `audit verify` on `journal`, asserts it passed; returns its stdout.
fn verify_journal(journal: &Path) -> String {
    let verify = station_cli(&["audit", "verify"], journal);
    let stdout = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(verify.status.success(), "{stdout}");
    stdout
}

fn journal_records(journal: &Path) -> Vec<Value> {
    let out = station_cli(&["audit", "export", "--format", "json"], journal);
    assert!(
        out.status.success(),
        "audit export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn assert_no_panic(stdout: &str, stderr: &str) {
    for text in [stdout, stderr] {
        assert!(
            !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
            "the station panicked:\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        );
    }
}

struct Paths {
    journal: PathBuf,
    audit_file: PathBuf,
}

fn paths(stack: &VpcdStack) -> Paths {
    Paths {
        journal: stack.dir().join("journal.db"),
        audit_file: stack.dir().join("audit.jsonl"),
    }
}

/// pcscd with one vpcd reader and a station running on it.
fn one_reader_station() -> (VpcdStack, PcscContext, Paths, Station) {
    let stack = VpcdStack::start().unwrap();
    let reader = stack.reader_name(0);
    let context = PcscContext::establish().unwrap();
    let paths = paths(&stack);
    let station = Station::spawn(&reader, &paths.journal, &paths.audit_file);
    (stack, context, paths, station)
}

/// Polls `done` every `pause` until it holds; fails with `what` after [`STEP`].
#[track_caller]
fn wait_until(what: &str, pause: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(pause);
    }
}

#[test]
fn run_loop_provisions_two_fobs_fails_a_foreign_key_fob_and_stops_on_sigint() {
    let t0 = Instant::now();
    let (stack, context, paths, mut station) = one_reader_station();
    let reader = stack.reader_name(0);
    let console = station.expect(true, "the console address", |l| l.starts_with("console: "));
    let console = console.trim_start_matches("console: ").to_owned();
    station.expect(false, "the `present a fob` prompt", |l| {
        l.contains("present a fob")
    });
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let get = |path: &str| {
        http.get(format!("{console}{path}"))
            .send()
            .and_then(|r| r.text())
            .unwrap()
    };
    let state: Value = serde_json::from_str(&get("state")).unwrap();
    // A PC/SC name becomes an identifier (the KLMS's charset) for the
    // console, the audit records and the KLMS requests.
    let reader_id = reader.replace(' ', "_");
    assert_eq!(state["readers"][0]["reader_id"], reader_id, "{state}");
    assert_eq!(state["readers"][0]["state"], "idle", "{state}");

    let uids: Vec<Uid> = (1..=3u8)
        .map(|n| Uid::new(&[0x04, 0x52, 0x55, 0x4E, 0, 0, 0, 0, 0, n]).unwrap())
        .collect();

    // Two good fobs, one after the other.
    let mut personalized = Vec::new();
    for (n, uid) in uids[..2].iter().enumerate() {
        let bridge = insert(&stack, &context, good_fob(uid));
        let line = station.expect_result("PASS", uid);
        assert!(
            line.ends_with(&format!("[{reader_id}; good {}, failed 0]", n + 1)),
            "{line}"
        );
        personalized.push(remove(&stack, &context, bridge));
    }
    for fob in &personalized {
        assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
        assert_eq!(fob.stored_dgi_tags().len(), 6);
    }

    // A fob with other static keys: FAIL at SCP03 authentication, loop goes on.
    let bridge = insert(&stack, &context, foreign_key_fob(&uids[2]));
    let line = station.expect_result("FAIL", &uids[2]);
    assert!(line.contains("at InitializeUpdate"), "{line}");
    assert!(line.ends_with("; good 2, failed 1]"), "{line}");
    // The console shows it in operator words, and counts what the metrics count.
    let state: Value = serde_json::from_str(&get("state")).unwrap();
    let tile = &state["readers"][0];
    assert_eq!(tile["state"], "fail", "{state}");
    assert_eq!(
        tile["reason"], "fob keys do not match — put it aside",
        "{state}"
    );
    assert_eq!(
        (tile["good"].as_u64(), tile["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let metrics = get("metrics");
    for outcome in [("pass", 2), ("fail", 1)] {
        let want = format!(
            "kf_station_fobs_total{{outcome=\"{}\",reader=\"{reader_id}\"}} {}",
            outcome.0, outcome.1
        );
        assert!(metrics.contains(&want), "{want} not in\n{metrics}");
    }
    let refused = remove(&stack, &context, bridge);
    assert_eq!(refused.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
    assert!(refused.stored_dgi_tags().is_empty());

    // Ctrl-C on an empty reader: the station stops promptly; a failed fob
    // during the run makes the exit code 1 (exit::FAILED), as `run` documents.
    let (stdout, took) = station.interrupt_expecting(1);
    assert!(
        stdout.contains("stopped: good 2, failed 1"),
        "--- stdout ---\n{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS  ")).count(),
        2
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("FAIL  ")).count(),
        1
    );

    // The journal: a started record for each good fob (before STORE DATA),
    // one outcome per fob, the chain intact.
    let records = journal_records(&paths.journal);
    let outcomes: Vec<&Value> = records.iter().filter(|r| r["kind"] == "outcome").collect();
    let results: Vec<(String, String)> = outcomes
        .iter()
        .map(|r| {
            assert_eq!(r["body"]["eol_station_id"], "RUN-LOOP-TEST");
            assert_eq!(r["body"]["reader_id"], reader_id.as_str());
            (
                r["body"]["fob_uid"].as_str().unwrap().to_owned(),
                r["body"]["overall_result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        results,
        vec![
            (hex_uid(&uids[0]), "SUCCESS".to_owned()),
            (hex_uid(&uids[1]), "SUCCESS".to_owned()),
            (hex_uid(&uids[2]), "FAILURE".to_owned()),
        ]
    );
    let started: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "started")
        .map(|r| &r["transaction_id"])
        .collect();
    let succeeded: Vec<&Value> = outcomes
        .iter()
        .filter(|r| r["body"]["overall_result"] == "SUCCESS")
        .map(|r| &r["transaction_id"])
        .collect();
    assert_eq!(started, succeeded);
    assert_eq!(records.len(), 5);
    assert!(verify_journal(&paths.journal).contains("journal OK: 5 records"));
    // The JSON-lines copy holds the three outcomes.
    let copy = std::fs::read_to_string(&paths.audit_file).unwrap();
    assert_eq!(copy.lines().count(), 3, "{copy}");

    eprintln!(
        "run loop: SIGINT to exit {took:?}, whole test {:?}",
        t0.elapsed()
    );
}

#[test]
fn sigint_while_a_fob_is_still_in_the_field_stops_without_waiting_for_its_removal() {
    let t0 = Instant::now();
    let (stack, context, paths, mut station) = one_reader_station();
    station.expect(false, "the `present a fob` prompt", |l| {
        l.contains("present a fob")
    });
    let uid = Uid::new(&[0x04, 0x53, 0x49, 0x47, 0, 0, 0, 0, 0, 1]).unwrap();
    let bridge = insert(&stack, &context, good_fob(&uid));
    station.expect_result("PASS", &uid);
    station.expect(false, "the `remove the fob` prompt", |l| {
        l.contains("remove the fob")
    });

    // The fob stays on the reader: Ctrl-C must not wait for it to be taken off.
    let (stdout, took) = station.interrupt_expecting(0);
    assert!(
        stdout.contains("stopped: good 1, failed 0"),
        "--- stdout ---\n{stdout}"
    );
    let fob = remove(&stack, &context, bridge);
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    assert!(verify_journal(&paths.journal).contains("journal OK: 2 records"));
    eprintln!(
        "fob left in the field: SIGINT to exit {took:?}, whole test {:?}",
        t0.elapsed()
    );
}

/// A good fob that takes at least 100 ms an APDU (a slow chip): two of them
/// on two readers overlap in time, whatever pcscd's polling adds.
fn slow_fob(uid: &Uid) -> kf_transport::PacedCard<VirtualFob> {
    use kf_transport::link::{BitRate, ChipCosts, LinkModel};
    let model = LinkModel {
        chip: ChipCosts {
            dispatch: Duration::from_millis(100),
            ..ChipCosts::JCOP4_ESTIMATE
        },
        ..LinkModel::new(BitRate::K106)
    };
    kf_transport::PacedCard::new(good_fob(uid), Some(model))
}

/// Waits for the "present a fob" prompt of each of `reader_ids`, in
/// whatever order the reader workers print them.
fn expect_prompts(station: &mut Station, reader_ids: &[&str]) {
    let prefixes: Vec<String> = reader_ids
        .iter()
        .map(|id| format!("reader {id} ("))
        .collect();
    let mut seen = vec![false; reader_ids.len()];
    while seen.contains(&false) {
        let line = station.expect(false, &format!("the prompts of {reader_ids:?}"), |l| {
            l.contains("present a fob") && prefixes.iter().any(|p| l.starts_with(p))
        });
        if let Some(at) = prefixes.iter().position(|p| line.starts_with(p)) {
            seen[at] = true;
        }
    }
}

/// Waits for one stdout line starting with `result  UID` for each of `uids`,
/// in whatever order they come; returns them in the order of `uids`.
fn expect_results(station: &mut Station, result: &str, uids: &[&Uid]) -> Vec<String> {
    let prefixes: Vec<String> = uids
        .iter()
        .map(|uid| format!("{result}  {}  ", hex_uid(uid)))
        .collect();
    let mut found: Vec<Option<String>> = vec![None; uids.len()];
    while found.iter().any(Option::is_none) {
        let line = station.expect(true, &format!("{result} lines for {prefixes:?}"), |l| {
            prefixes.iter().any(|p| l.starts_with(p))
        });
        let at = prefixes.iter().position(|p| line.starts_with(p)).unwrap();
        found[at] = Some(line);
    }
    found.into_iter().map(Option::unwrap).collect()
}

/// `run --source dev` on both vpcd readers of `stack` (`[[readers]]`
/// pattern `Virtual PCD 00 0?` named `reader_id`, `reader_id-2`), once both
/// have said they wait for a fob.
fn two_reader_station(stack: &VpcdStack, paths: &Paths, reader_id: &str) -> Station {
    let config = stack.dir().join("line.toml");
    std::fs::write(
        &config,
        format!("[[readers]]\nname = \"Virtual PCD 00 0?\"\nreader_id = \"{reader_id}\"\n"),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut station = Station::spawn_with(
        &["--source", "dev", "--config", &config],
        &paths.journal,
        &paths.audit_file,
    );
    expect_prompts(&mut station, &[reader_id, &format!("{reader_id}-2")]);
    station
}

#[test]
fn two_readers_work_at_once_and_a_fob_torn_away_on_one_leaves_the_other_working() {
    let stack = VpcdStack::start().expect("pcscd + vpcd");
    let context = PcscContext::establish().unwrap();
    let paths = paths(&stack);
    let mut station = two_reader_station(&stack, &paths, "LINE_01_R");
    let console = station.expect(true, "the console address", |l| l.starts_with("console: "));
    let console = console.trim_start_matches("console: ").to_string();
    let uids: Vec<Uid> = (1..=4u8)
        .map(|n| Uid::new(&[0x04, 0x4C, 0x49, 0x4E, 0, 0, 0, 0, 0, n]).unwrap())
        .collect();

    // One fob on each reader at the same time: both pass, in parallel.
    let a = match stack.insert_at(0, slow_fob(&uids[0]), STEP) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("PCSCD LOG:\n{}", stack.pcscd().log_tail());
            station.fail(&format!("{e}"));
        }
    };
    let b = stack.insert_at(1, slow_fob(&uids[1]), STEP).unwrap();
    let lines = expect_results(&mut station, "PASS", &[&uids[0], &uids[1]]);
    assert!(lines[0].contains("[LINE_01_R; "), "{lines:?}");
    assert!(lines[1].contains("[LINE_01_R-2; "), "{lines:?}");
    for (bridge, slot) in [(a, 0), (b, 1)] {
        let fob = bridge.stop_and_join().unwrap();
        assert_eq!(
            fob.card().applet_life_cycle(),
            AppletLifeCycle::Personalized
        );
        context
            .wait_for_removal(&stack.reader_name(slot), Some(STEP))
            .unwrap();
    }

    // A fob torn away in the middle of its personalization on reader 1: it
    // fails and is journaled; the fob on reader 2 passes all the same.
    let c = stack.insert_at(0, slow_fob(&uids[2]), STEP).unwrap();
    let d = stack.insert_at(1, slow_fob(&uids[3]), STEP).unwrap();
    wait_until(
        "the station never talked to fob C",
        Duration::from_millis(10),
        || c.control().apdus() >= 4,
    );
    let torn = c.stop_and_join().unwrap();
    let failed = expect_results(&mut station, "FAIL", &[&uids[2]]);
    assert!(failed[0].contains("[LINE_01_R; "), "{failed:?}");
    expect_results(&mut station, "PASS", &[&uids[3]]);
    assert_ne!(
        torn.card().applet_life_cycle(),
        AppletLifeCycle::Personalized
    );
    assert_eq!(
        d.stop_and_join().unwrap().card().applet_life_cycle(),
        AppletLifeCycle::Personalized
    );

    // The console has one tile per reader with its own counters.
    let state: Value = reqwest::blocking::get(format!("{console}state"))
        .and_then(|r| r.json())
        .unwrap();
    let tiles: Vec<(String, u64, u64)> = state["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["reader_id"].as_str().unwrap().to_string(),
                t["good"].as_u64().unwrap(),
                t["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tiles,
        [
            ("LINE_01_R".to_string(), 1, 1),
            ("LINE_01_R-2".to_string(), 2, 0)
        ],
        "{state}"
    );

    let (stdout, _) = station.interrupt_expecting(1);
    assert!(stdout.contains("stopped: good 3, failed 1"), "{stdout}");

    // One chain for both readers; each fob's records name its reader; the
    // first two fobs overlapped (both started before either finished).
    let records = journal_records(&paths.journal);
    let kinds: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["body"]["fob_uid"].as_str().unwrap().to_string(),
                r["body"]["reader_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let first_outcome = kinds.iter().position(|k| k.0 == "outcome").unwrap();
    let started_before: Vec<&String> = kinds[..first_outcome].iter().map(|k| &k.1).collect();
    assert_eq!(
        started_before.len(),
        2,
        "both fobs start before either ends: {kinds:?}"
    );
    let outcomes: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["kind"] == "outcome")
        .map(|r| {
            (
                r["body"]["fob_uid"].as_str().unwrap().to_string(),
                r["body"]["reader_id"].as_str().unwrap().to_string(),
                r["body"]["overall_result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (uid, reader, result) in [
        (&uids[0], "LINE_01_R", "SUCCESS"),
        (&uids[1], "LINE_01_R-2", "SUCCESS"),
        (&uids[2], "LINE_01_R", "FAILURE"),
        (&uids[3], "LINE_01_R-2", "SUCCESS"),
    ] {
        let want = (hex_uid(uid), reader.to_string(), result.to_string());
        assert!(outcomes.contains(&want), "{want:?} not in {outcomes:?}");
    }
    assert_eq!(outcomes.len(), 4);
    verify_journal(&paths.journal);
}

/// A KLMS in this process and a station configuration for it: the KLMS source, the
/// station settings `settings` (TOML lines), and one reader per id in `reader_ids`
/// (vpcd slots 0, 1, …).
#[cfg(feature = "sim")]
struct KlmsLine {
    server: kf_klms::ServerHandle,
    master: kf_crypto::AesKey,
    key_version: u8,
    config: String,
}

#[cfg(feature = "sim")]
impl KlmsLine {
    fn start(
        stack: &VpcdStack,
        master: [u8; 16],
        settings: &str,
        reader_ids: &[&str],
        adjust: impl FnOnce(&mut kf_klms::KlmsConfig),
    ) -> KlmsLine {
        let work = stack.dir().join("klms");
        std::fs::create_dir_all(&work).unwrap();
        // The station's identity is the KF_STATION_ID `Station` sets.
        let pki = kf_klms::pki::DevPki::generate("line CA", &["RUN-LOOP-TEST"]).unwrap();
        let pki_paths = pki.write_to(&work.join("pki")).unwrap();
        let master = kf_crypto::AesKey::from_slice(&master).unwrap();
        let mut klms =
            kf_klms::KlmsConfig::dev(&pki, work.join("ledger.db"), master.duplicate()).unwrap();
        adjust(&mut klms);
        let key_version = klms.key_version;
        let server = kf_klms::spawn_server(klms).unwrap();
        let mut toml = format!(
            "station_id = \"RUN-LOOP-TEST\"\n{settings}[source]\nkind = \"klms\"\n\
             [klms]\nurl = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            server.base_url(),
            pki_paths.ca_cert.display(),
            work.join("pki/RUN-LOOP-TEST.pem").display(),
            work.join("pki/RUN-LOOP-TEST.key").display(),
        );
        for (slot, id) in reader_ids.iter().enumerate() {
            toml.push_str(&format!(
                "[[readers]]\nname = \"{}\"\nreader_id = \"{id}\"\n",
                stack.reader_name(slot as u8)
            ));
        }
        let config = work.join("station.toml");
        std::fs::write(&config, toml).unwrap();
        KlmsLine {
            server,
            master,
            key_version,
            config: config.to_string_lossy().into_owned(),
        }
    }
}

/// `run` with the KLMS source, a package TTL of 1.5 s, and a fob that answers EXTERNAL
/// AUTHENTICATE only after 3 s: the package expired before the first STORE DATA, so the
/// fob fails at PayloadDelivery with "expired", is told it may be presented again, and
/// holds nothing (no STORE DATA reached it); the journal has its FAILURE outcome and no
/// started record.
#[cfg(feature = "sim")]
#[test]
fn a_klms_package_expiring_before_store_data_fails_the_fob_before_any_store_data() {
    let stack = VpcdStack::start().expect("pcscd + vpcd");
    let paths = paths(&stack);
    let KlmsLine {
        server,
        master,
        key_version,
        config,
    } = KlmsLine::start(&stack, [0x5B; 16], "", &["LINE_04_R1"], |klms| {
        klms.ttl = Duration::from_millis(1500);
    });
    let mut station =
        Station::spawn_with(&["--config", &config], &paths.journal, &paths.audit_file);
    expect_prompts(&mut station, &["LINE_04_R1"]);
    let uid = Uid::new(&[0x04, 0x45, 0x58, 0x50, 0x49, 0x52, 0x45, 0, 0, 1]).unwrap();
    let fob = klms_fob(&uid, &master, key_version);
    // The fob takes 3 s over EXTERNAL AUTHENTICATE (a slow chip), the first time.
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&stalled);
    let stalling = kf_transport::Intercepted::new(fob, move |fob: &mut VirtualFob, apdu: &[u8]| {
        if apdu.get(1) == Some(&kf_apdu::gp::ins::EXTERNAL_AUTHENTICATE)
            && !seen.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_secs(3));
        }
        kf_transport::VirtualCard::process_apdu(fob, apdu)
    });
    let bridge = stack.insert_at(0, stalling, STEP).unwrap();
    let failed = expect_results(&mut station, "FAIL", &[&uid]);
    let line = &failed[0];
    assert!(line.contains(" at PayloadDelivery: "), "{line}");
    assert!(line.contains("expired"), "{line}");
    assert!(
        line.contains("(nothing was written; the fob may be presented again)"),
        "{line}"
    );
    let fob = bridge.stop_and_join().unwrap().into_inner();
    assert!(
        stalled.load(std::sync::atomic::Ordering::SeqCst),
        "the fob never saw EXTERNAL AUTHENTICATE"
    );
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
    assert!(fob.stored_dgi_tags().is_empty());
    station.interrupt_expecting(1);
    let records = journal_records(&paths.journal);
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["body"]["stage_reached"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(kinds, [("outcome", "PAYLOAD_DELIVERY")], "{records:?}");
    assert_eq!(records[0]["body"]["overall_result"], "FAILURE");
    verify_journal(&paths.journal);
    server.shutdown();
}

#[cfg(feature = "sim")]
/// A fob carrying only the keys the KLMS diversifies from `master` for `uid`.
fn klms_fob(uid: &Uid, master: &kf_crypto::AesKey, key_version: u8) -> VirtualFob {
    let keys = kf_crypto::kdf::diversify_static_keys(master, uid.as_bytes()).unwrap();
    VirtualFob::new(
        FobConfig::dev_sample()
            .with_uid(uid.clone())
            .with_only_key_set(key_version, keys),
    )
    .unwrap()
}

#[cfg(feature = "sim")]
/// A slow fob (see [`slow_fob`]) carrying the keys the KLMS diversifies from
/// `master` for its UID.
fn slow_klms_fob(
    uid: &Uid,
    master: &kf_crypto::AesKey,
    key_version: u8,
) -> kf_transport::PacedCard<VirtualFob> {
    let paced = slow_fob(uid);
    kf_transport::PacedCard::new(klms_fob(uid, master, key_version), paced.model().copied())
}

#[cfg(feature = "sim")]
#[test]
fn klms_source_on_two_readers_and_ctrl_c_during_store_data_lets_both_fobs_finish() {
    let stack = VpcdStack::start().expect("pcscd + vpcd");
    let paths = paths(&stack);
    let KlmsLine {
        server,
        master,
        key_version,
        config,
    } = KlmsLine::start(
        &stack,
        [0x5A; 16],
        "security_level = \"33\"\n",
        &["LINE_02_R1", "LINE_02_R2"],
        |_| {},
    );
    // Every log on: the scan at the end looks through it for keys.
    let mut station = Station::spawn_logging(
        &["--config", &config],
        &paths.journal,
        &paths.audit_file,
        "trace",
    );
    expect_prompts(&mut station, &["LINE_02_R1", "LINE_02_R2"]);
    let uids: Vec<Uid> = (1..=2u8)
        .map(|n| Uid::new(&[0x04, 0x4B, 0x4C, 0x4D, 0x53, 0, 0, 0, 0, n]).unwrap())
        .collect();
    let a = stack
        .insert_at(0, slow_klms_fob(&uids[0], &master, key_version), STEP)
        .unwrap();
    let b = stack
        .insert_at(1, slow_klms_fob(&uids[1], &master, key_version), STEP)
        .unwrap();
    // The interrupt comes while fob A is inside its STORE DATA sequence (the paced fob takes
    // a while over each command, so the station cannot be past it when the signal lands).
    wait_until(
        "fob A never reached STORE DATA",
        Duration::from_millis(5),
        || a.control().last_ins() == Some(STORE_DATA),
    );
    // Both fobs in flight finish; nothing is left half personalized.
    let (stdout, _) = station.interrupt_expecting(0);
    let (_, stderr) = station.output();
    assert!(stdout.contains("stopped: good 2, failed 0"), "{stdout}");
    assert!(
        stdout.contains("audit upload: 4 sent, 0 pending"),
        "{stdout}"
    );
    for bridge in [a, b] {
        let fob = bridge.stop_and_join().unwrap();
        assert_eq!(
            fob.card().applet_life_cycle(),
            AppletLifeCycle::Personalized
        );
    }
    let records = journal_records(&paths.journal);
    let outcomes: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["kind"] == "outcome")
        .map(|r| {
            let body = &r["body"];
            (
                body["fob_uid"].as_str().unwrap().to_string(),
                body["reader_id"].as_str().unwrap().to_string(),
                body["overall_result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    for (uid, reader) in [(&uids[0], "LINE_02_R1"), (&uids[1], "LINE_02_R2")] {
        let want = (hex_uid(uid), reader.to_string(), "SUCCESS".to_string());
        assert!(outcomes.contains(&want), "{want:?} not in {outcomes:?}");
    }
    // Each package came from the KLMS (its transaction id, not a local one).
    for record in &records {
        let tx = record["transaction_id"].as_str().unwrap();
        assert!(!tx.starts_with("local-"), "{tx}");
    }
    server.shutdown();

    // No key of these KLMS-keyed fobs reached the station's output, its log, journal or audit
    // file, or the KLMS's ledger: neither the master key, nor the static keys derived from it,
    // nor the session keys of either fob (recomputed from the challenges in the audit records).
    assert!(
        stderr.contains("TRACE"),
        "RUST_LOG=trace produced no log to scan"
    );
    let derived = |uid: &[u8]| kf_crypto::kdf::diversify_static_keys(&master, uid).unwrap();
    let audit = std::fs::read(&paths.audit_file).unwrap();
    let sessions = session_keys(&audit, |fob| derived(&hex::decode(fob).unwrap()));
    assert_eq!(sessions.len(), 3 * uids.len(), "session keys of both fobs");
    let mut secrets = sessions;
    secrets.push(("KLMS master key".into(), master.expose_secret().to_vec()));
    for uid in &uids {
        let keys = derived(uid.as_bytes());
        for (name, key) in [("ENC", &keys.enc), ("MAC", &keys.mac), ("DEK", &keys.dek)] {
            secrets.push((
                format!("derived {name} of {}", hex_uid(uid)),
                key.expose_secret().to_vec(),
            ));
        }
    }
    let mut outputs = vec![
        ("stdout".to_owned(), stdout.into_bytes()),
        ("stderr".to_owned(), stderr.into_bytes()),
    ];
    all_files(stack.dir(), &mut outputs);
    assert!(outputs.iter().any(|(n, _)| n.ends_with("ledger.db")));
    assert_no_leak(&outputs, &secrets);
}

/// The smart card service going away (Windows stops it when the last reader
/// is unplugged) takes every reader with it: the fob on the way fails and is
/// journaled, the station waits, and when the service and its readers come
/// back a worker starts on each and the next fob passes.
#[test]
fn readers_that_vanish_with_the_service_come_back_to_work_when_it_returns() {
    let mut stack = VpcdStack::start().expect("pcscd + vpcd");
    let context = PcscContext::establish().unwrap();
    let paths = paths(&stack);
    let mut station = two_reader_station(&stack, &paths, "LINE_03_R");
    let uids: Vec<Uid> = (1..=2u8)
        .map(|n| Uid::new(&[0x04, 0x53, 0x56, 0x43, 0, 0, 0, 0, 0, n]).unwrap())
        .collect();

    // The service stops while a fob is being personalized on reader 1.
    let a = stack.insert_at(0, slow_fob(&uids[0]), STEP).unwrap();
    wait_until(
        "the station never talked to fob A",
        Duration::from_millis(10),
        || a.control().apdus() >= 4,
    );
    drop(context);
    stack.pcscd_mut().stop().unwrap();
    let failed = expect_results(&mut station, "FAIL", &[&uids[0]]);
    assert!(
        failed[0].contains("[LINE_03_R; good 0, failed 1]"),
        "{failed:?}"
    );
    station.expect(false, "the wait for the service", |l| {
        l.contains("smart card service stopped")
    });
    a.stop_and_join().unwrap();

    // Back again: both readers work, a fob on reader 2 passes.
    stack.pcscd_mut().restart().unwrap();
    station.expect(false, "the service back", |l| {
        l.contains("smart card service running again")
    });
    expect_prompts(&mut station, &["LINE_03_R", "LINE_03_R-2"]);
    let b = stack.insert_at(1, slow_fob(&uids[1]), STEP).unwrap();
    let passed = expect_results(&mut station, "PASS", &[&uids[1]]);
    assert!(
        passed[0].contains("[LINE_03_R-2; good 1, failed 1]"),
        "{passed:?}"
    );
    b.stop_and_join().unwrap();

    station.interrupt_expecting(1);
    let outcomes: Vec<(String, String)> = journal_records(&paths.journal)
        .iter()
        .filter(|r| r["kind"] == "outcome")
        .map(|r| {
            (
                r["body"]["fob_uid"].as_str().unwrap().to_string(),
                r["body"]["overall_result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (hex_uid(&uids[0]), "FAILURE".to_string()),
            (hex_uid(&uids[1]), "SUCCESS".to_string())
        ]
    );
    verify_journal(&paths.journal);
}

/// Whether a held command reaches the fob before the station dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// The fob never executes the command.
    Before,
    /// The fob executes it; its response never reaches the station.
    After,
}

/// The state of a held command: reached, then released by the test.
#[derive(Default)]
struct Hold {
    reached: bool,
    released: bool,
}

type HoldGate = Arc<(Mutex<Hold>, std::sync::Condvar)>;

/// A good fob that records the INS of each command and holds command number
/// `at` (from 0) without answering until the test releases it, so the test
/// can kill the station at that exact point of the session.
fn held_fob(
    uid: &Uid,
    at: Option<(usize, Crash)>,
) -> (
    impl kf_transport::VirtualCard + Send + 'static,
    Arc<Mutex<Vec<u8>>>,
    HoldGate,
) {
    let ins: Arc<Mutex<Vec<u8>>> = Arc::default();
    let hold: HoldGate = Arc::default();
    let (seen, gate) = (ins.clone(), hold.clone());
    let fob =
        kf_transport::Intercepted::new(good_fob(uid), move |fob: &mut VirtualFob, apdu: &[u8]| {
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(apdu.get(1).copied().unwrap_or(0));
                seen.len() - 1
            };
            let Some((_, crash)) = at.filter(|(at, _)| *at == n) else {
                return fob.process_apdu(apdu);
            };
            let response = match crash {
                Crash::After => fob.process_apdu(apdu),
                Crash::Before => vec![0x6F, 0x00],
            };
            let (state, cv) = &*gate;
            state.lock().unwrap().reached = true;
            cv.notify_all();
            drop(
                cv.wait_while(state.lock().unwrap(), |h| !h.released)
                    .unwrap(),
            );
            response
        });
    (fob, ins, hold)
}

/// Waits until the held command arrived (and, for [`Crash::After`], ran).
fn wait_reached(hold: &HoldGate) {
    let (state, cv) = &**hold;
    let (guard, timeout) = cv
        .wait_timeout_while(state.lock().unwrap(), STEP, |h| !h.reached)
        .unwrap();
    assert!(
        !timeout.timed_out() && guard.reached,
        "the station never sent the command to crash at"
    );
}

fn release(hold: &HoldGate) {
    hold.0.lock().unwrap().released = true;
    hold.1.notify_all();
}

/// The station dies (SIGKILL: power loss, a killed process) at every command
/// of the session, before the fob sees it or right after the fob executed it,
/// and `run` is started again on the same journal with the fob still on the
/// reader. The restart records exactly one interrupted outcome
/// for the fob once its "started" record was due (right before the first
/// STORE DATA), none before, says so on stderr, and then gives the fob a
/// definite outcome of its own: PASS while the fob can still take its
/// content, FAIL with "set it aside" once it cannot; the journal verifies.
#[test]
fn run_killed_at_each_stage_closes_the_fob_as_interrupted_on_restart() {
    let stack = VpcdStack::start().expect("pcscd + vpcd");
    let reader = stack.reader_name(0);
    let context = PcscContext::establish().unwrap();

    // One full session, to learn its commands.
    let reference = Uid::new(&[0x04, 0x4B, 0x49, 0x4C, 0, 0, 0, 0, 0, 0]).unwrap();
    let journal = stack.dir().join("reference.db");
    let audit_file = stack.dir().join("reference.jsonl");
    let mut station = Station::spawn(&reader, &journal, &audit_file);
    let (fob, ins, _) = held_fob(&reference, None);
    let bridge = stack.insert(fob, STEP).unwrap();
    station.expect_result("PASS", &reference);
    bridge.stop_and_join().unwrap();
    context.wait_for_removal(&reader, Some(STEP)).unwrap();
    station.interrupt_expecting(0);
    let ins = ins.lock().unwrap().clone();
    let first_store = ins.iter().position(|&i| i == STORE_DATA).unwrap();
    let last_store = ins.iter().rposition(|&i| i == STORE_DATA).unwrap();

    // Crash points: before and after every command of the session.
    let points: Vec<(usize, Crash)> = (0..ins.len())
        .flat_map(|n| [(n, Crash::Before), (n, Crash::After)])
        .collect();

    for (k, &(n, crash)) in points.iter().enumerate() {
        let what = format!("crash {crash:?} command {n} (INS {:02X})", ins[n]);
        let uid = Uid::new(&[0x04, 0x4B, 0x49, 0x4C, 0, 0, 0, 0, 1, k as u8]).unwrap();
        let journal = stack.dir().join(format!("crash-{k}.db"));
        let audit_file = stack.dir().join(format!("crash-{k}.jsonl"));
        let mut station = Station::spawn(&reader, &journal, &audit_file);
        station.expect(false, "the `present a fob` prompt", |l| {
            l.contains("present a fob")
        });
        let (fob, _, hold) = held_fob(&uid, Some((n, crash)));
        let bridge = stack.insert(fob, STEP).unwrap();
        wait_reached(&hold);
        station.child.kill().unwrap();
        station.child.wait().unwrap();
        release(&hold);

        // The restart finds the fob still on the reader.
        let mut station = Station::spawn(&reader, &journal, &audit_file);
        let interrupted_line = "journal: 1 personalization(s) interrupted";
        let outcome = station.expect(true, &format!("{what}: an outcome"), |l| {
            l.starts_with(&format!("PASS  {}  ", hex_uid(&uid)))
                || l.starts_with(&format!("FAIL  {}  ", hex_uid(&uid)))
        });
        bridge.stop_and_join().unwrap();
        context.wait_for_removal(&reader, Some(STEP)).unwrap();
        let code = if outcome.starts_with("PASS") { 0 } else { 1 };
        station.interrupt_expecting(code);
        let (_, stderr) = station.output();
        let records = journal_records(&journal);
        let interrupted: Vec<&Value> = records
            .iter()
            .filter(|r| r["kind"] == "outcome" && r["body"]["failure_reason"] == INTERRUPTED)
            .collect();
        if n >= first_store {
            assert_eq!(interrupted.len(), 1, "{what}");
            assert_eq!(interrupted[0]["body"]["fob_uid"], hex_uid(&uid), "{what}");
            assert!(stderr.contains(interrupted_line), "{what}: {stderr}");
        } else {
            assert!(interrupted.is_empty(), "{what}");
            assert!(!stderr.contains(interrupted_line), "{what}: {stderr}");
        }
        // Until the last STORE DATA has run, the fob takes its content
        // again; from then on it refuses it, and the operator is told to set
        // it aside, never shown a PASS.
        if n < last_store || (n == last_store && crash == Crash::Before) {
            assert!(outcome.starts_with("PASS"), "{what}: {outcome}");
        } else {
            assert!(outcome.starts_with("FAIL"), "{what}: {outcome}");
            assert!(
                outcome.contains("set it aside for a check"),
                "{what}: {outcome}"
            );
        }
        verify_journal(&journal);
        eprintln!("{what}: restart gave `{outcome}`");
    }
}

/// The failure reason of a personalization the station was stopped in
/// (`kf-station`'s `journal::INTERRUPTED_REASON`).
const INTERRUPTED: &str =
    "station stopped during personalization; outcome unknown, re-present the fob";
