#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The same ledger suite against both backends (SQLite file, a real
//! PostgreSQL started by the test), and three `kf-klms serve` processes on
//! one PostgreSQL database: one-time issuance, re-issue and audit ingest hold
//! across instances.
//!
//! One PostgreSQL server serves the whole test binary (each test its own
//! database); it stops when the last test using it ends.

mod common;

use std::any::Any;
use std::sync::Barrier;

use kf_klms::anchor::ChainRefusal;
use kf_klms::ledger::postgres::{PgLedger, PgTarget};
use kf_klms::ledger::AnchorRequest;
use kf_klms::ledger::{
    AuditFlag, AuditRecord, AuditStored, Ledger, LedgerError, LedgerOp, LedgerOutcome, LedgerStore,
    NewIssuance, OperatorAction,
};
use kf_testkit::postgres::Postgres;
use zeroize::Zeroizing;

const UID_A: &str = "04112233445566778899";
const UID_B: &str = "04AABBCCDDEEFF001122";

/// One ledger of one backend; `open` connects again to the same ledger (a
/// restart, or another instance); `sql` runs statements on it as someone with
/// the database's password would (no ledger open meanwhile).
struct Target {
    _keep: Box<dyn Any>,
    open: Box<dyn Fn() -> Box<dyn LedgerStore>>,
    sql: Box<dyn Fn(&str)>,
}

fn sqlite() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let raw = path.clone();
    Target {
        _keep: Box::new(dir),
        open: Box::new(move || Box::new(Ledger::open(&path).unwrap())),
        sql: Box::new(move |sql| {
            rusqlite::Connection::open(&raw)
                .unwrap()
                .execute_batch(sql)
                .unwrap()
        }),
    }
}

fn postgres() -> Target {
    let pg = Postgres::shared().unwrap();
    let url = pg.fresh_database().unwrap();
    let raw = url.clone();
    Target {
        _keep: Box::new(pg),
        open: Box::new(move || {
            let target = PgTarget::new(Zeroizing::new(url.clone()), None).unwrap();
            Box::new(PgLedger::connect(&target).unwrap())
        }),
        sql: Box::new(move |sql| {
            postgres::Client::connect(&raw, postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap()
        }),
    }
}

fn issuance(txid: &str, now: i64) -> NewIssuance<'_> {
    NewIssuance {
        transaction_id: txid,
        fob_uid: UID_A,
        station: "station-01",
        reader_id: "R1",
        key_version: 1,
        issued_at_ms: now,
        expires_at_ms: now + 5000,
    }
}

fn audit(txid: &str, uid: &str, now_ms: i64) -> AuditRecord {
    AuditRecord {
        transaction_id: txid.to_owned(),
        station: "station-01".to_owned(),
        fob_uid: uid.to_owned(),
        overall_result: "SUCCESS".to_owned(),
        body: "{}".to_owned(),
        now_ms,
    }
}

fn op_issue(txid: &str, uid: &str, now: i64) -> LedgerOp {
    let new = NewIssuance {
        fob_uid: uid,
        ..issuance(txid, now)
    };
    LedgerOp::Issue(new.to_owned_issuance())
}

fn op_anchor(seq: u64, prev: u8, link: u8) -> LedgerOp {
    LedgerOp::Anchor(AnchorRequest {
        station: "S1".into(),
        seq,
        prev_link: [prev; 32],
        link: [link; 32],
        audit: None,
        now_ms: 1,
    })
}

fn one_time_rule_expiry_success_and_reissue(t: &Target) {
    let mut l = (t.open)();
    l.try_issue(&issuance("t1", 1000)).unwrap();
    assert!(matches!(
        l.try_issue(&issuance("t2", 2000)),
        Err(LedgerError::AlreadyIssued(_))
    ));
    assert!(matches!(
        l.check_issuable(UID_A, 2000),
        Err(LedgerError::AlreadyIssued(_))
    ));
    // Expired without a successful audit → allowed.
    assert!(l.check_issuable(UID_A, 7000).is_ok());
    l.try_issue(&issuance("t3", 7000)).unwrap();
    assert_eq!(
        l.store_audit(&audit("t3", UID_A, 7100)).unwrap(),
        AuditStored::New
    );
    assert_eq!(
        l.store_audit(&audit("t3", UID_A, 7200)).unwrap(),
        AuditStored::Duplicate
    );
    assert!(matches!(
        l.store_audit(&AuditRecord {
            body: "{\"x\":1}".to_owned(),
            ..audit("t3", UID_A, 7200)
        }),
        Err(LedgerError::ConflictingAudit)
    ));
    // Completed → refused even long after expiry, with the completed message.
    match l.try_issue(&issuance("t4", 99_000)) {
        Err(LedgerError::AlreadyIssued(why)) => assert!(why.contains("re-issue"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        l.record_reissue(UID_A, &OperatorAction::new(" ", "op", 1)),
        Err(LedgerError::MissingReason)
    ));
    l.record_reissue(UID_A, &OperatorAction::new("fob replaced", "op", 100_000))
        .unwrap();
    assert!(l.check_issuable(UID_A, 100_001).is_ok());
    l.try_issue(&issuance("t5", 100_001)).unwrap();
    assert!(matches!(
        l.try_issue(&issuance("t6", 100_002)),
        Err(LedgerError::AlreadyIssued(_))
    ));
    assert_eq!(l.issuance_count(UID_A).unwrap(), 3);
    // Durable: a new connection (restart) sees the same.
    let mut again = (t.open)();
    assert_eq!(again.issuance_count(UID_A).unwrap(), 3);
    assert!(again.is_completed("t3").unwrap());
}

fn success_for_a_superseded_or_expired_package_is_flagged(t: &Target) {
    let mut l = (t.open)();
    l.try_issue(&issuance("t1", 1000)).unwrap();
    l.try_issue(&issuance("t2", 7000)).unwrap();
    assert_eq!(
        l.store_audit(&audit("t1", UID_A, 7100)).unwrap(),
        AuditStored::Flagged(AuditFlag::Superseded)
    );
    assert!(!l.is_completed("t1").unwrap());
    assert_eq!(l.audit_flag("t1").unwrap().as_deref(), Some("superseded"));
    assert_eq!(
        l.store_audit(&audit("t2", UID_A, 7200)).unwrap(),
        AuditStored::New
    );
    assert!(l.is_completed("t2").unwrap());
    assert_eq!(l.audit_flag("t2").unwrap(), None);
    let other = NewIssuance {
        fob_uid: UID_B,
        ..issuance("t3", 20_000)
    };
    l.try_issue(&other).unwrap();
    assert_eq!(
        l.store_audit(&audit("t3", UID_B, 30_000)).unwrap(),
        AuditStored::Flagged(AuditFlag::Late)
    );
    assert!(l.is_completed("t3").unwrap());
    assert_eq!(l.audit_flag("t3").unwrap().as_deref(), Some("late"));
    assert_eq!(
        l.store_audit(&audit("t3", UID_B, 30_001)).unwrap(),
        AuditStored::Duplicate
    );
    assert_eq!(l.audit_body("t3").unwrap().as_deref(), Some("{}"));
    assert_eq!(l.audit_body("nope").unwrap(), None);
}

fn audit_checks_transaction_station_and_uid(t: &Target) {
    let mut l = (t.open)();
    l.try_issue(&issuance("t1", 1000)).unwrap();
    assert!(matches!(
        l.store_audit(&audit("nope", UID_A, 1)),
        Err(LedgerError::UnknownTransaction)
    ));
    assert!(matches!(
        l.store_audit(&AuditRecord {
            station: "station-02".to_owned(),
            ..audit("t1", UID_A, 1)
        }),
        Err(LedgerError::WrongStation)
    ));
    assert!(matches!(
        l.store_audit(&audit("t1", "00", 1)),
        Err(LedgerError::UidMismatch)
    ));
    l.store_audit(&AuditRecord {
        overall_result: "FAILURE".to_owned(),
        ..audit("t1", UID_A, 1)
    })
    .unwrap();
    assert!(!l.is_completed("t1").unwrap());
    l.try_issue(&issuance("t2", 9000)).unwrap();
}

fn batch_applies_rules_in_order_and_rolls_back_only_the_failing_op(t: &Target) {
    let mut l = (t.open)();
    l.try_issue(&issuance("t0", 1000)).unwrap();
    l.record_reissue(UID_A, &OperatorAction::new("fob replaced", "op", 1100))
        .unwrap();
    let results = l
        .apply_batch(&[
            // Consumes the re-issue, then fails on the duplicate transaction
            // id: the consumption is undone with it.
            op_issue("t0", UID_A, 1200),
            LedgerOp::Audit(audit("nope", UID_A, 1)),
            op_issue("t1", UID_A, 1201),
            op_issue("t2", UID_B, 1202),
            op_issue("t3", UID_A, 1203),
            op_issue("t4", UID_B, 1204),
            LedgerOp::Audit(audit("t2", UID_B, 1300)),
        ])
        .unwrap();
    // The duplicate transaction id is refused by the database's unique key.
    assert!(
        matches!(
            results[0],
            Err(LedgerError::Database(_) | LedgerError::Postgres(_))
        ),
        "{:?}",
        results[0]
    );
    assert!(matches!(results[1], Err(LedgerError::UnknownTransaction)));
    assert!(matches!(results[2], Ok(LedgerOutcome::Issued)));
    assert!(matches!(results[3], Ok(LedgerOutcome::Issued)));
    assert!(matches!(results[4], Err(LedgerError::AlreadyIssued(_))));
    assert!(matches!(results[5], Err(LedgerError::AlreadyIssued(_))));
    assert!(matches!(
        results[6],
        Ok(LedgerOutcome::Audit(AuditStored::New))
    ));
    drop(l);
    let mut l = (t.open)();
    assert_eq!(l.issuance_count(UID_A).unwrap(), 2);
    assert_eq!(l.issuance_count(UID_B).unwrap(), 1);
    assert!(l.is_completed("t2").unwrap());
}

fn chain_grows_along_one_line_and_reset_is_recorded(t: &Target) {
    let mut l = (t.open)();
    let results = l
        .apply_batch(&[
            op_anchor(1, 0, 1),
            op_anchor(2, 1, 2),
            op_anchor(2, 1, 2), // the same record again
            op_anchor(4, 3, 4), // gap
            op_anchor(3, 9, 3), // does not extend link 2: fork
            op_anchor(1, 0, 7), // other content under an anchored number: fork / rollback
            op_anchor(3, 2, 3),
        ])
        .unwrap();
    let codes: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(LedgerOutcome::Anchored(s)) => format!("{s:?}"),
            Err(LedgerError::ChainRefused(why)) => format!("{} {why:?}", why.code()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "New",
            "New",
            "Duplicate",
            "chain_gap Gap { expected: 3 }",
            "chain_fork Fork { head: 2 }",
            "chain_fork Fork { head: 2 }",
            "New"
        ]
    );
    assert_eq!(l.chain_head("S1").unwrap(), (3, [3; 32]));
    // Another station has its own chain.
    assert_eq!(l.chain_head("S2").unwrap(), (0, [0; 32]));
    let states = l.chain_states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!((states[0].seq, states[0].alerts), (3, 3));
    assert!(matches!(
        l.reset_chain("S1", &OperatorAction::new(" ", "op", 2)),
        Err(LedgerError::MissingReason)
    ));
    assert_eq!(
        l.reset_chain("S1", &OperatorAction::new("disk replaced", "op", 2))
            .unwrap(),
        3
    );
    let r = l.apply_batch(&[op_anchor(1, 0, 5)]).unwrap();
    assert!(matches!(
        r[0],
        Ok(LedgerOutcome::Anchored(AuditStored::New))
    ));
    let states = (t.open)().chain_states().unwrap();
    assert_eq!((states[0].seq, states[0].alerts), (1, 4));
}

/// A stored head no anchor write produces (a negative number, a link that is
/// not 32 bytes of hex) stops anchoring for that station instead of starting
/// its chain again from the genesis link; an operator reset clears it.
fn a_corrupt_chain_head_refuses_uploads_until_a_reset(t: &Target) {
    for corruption in [
        "UPDATE chain_heads SET seq = -1",
        "UPDATE chain_heads SET link = 'not hex'",
        "UPDATE chain_heads SET link = '00'",
    ] {
        let mut l = (t.open)();
        l.reset_chain("S1", &OperatorAction::new("start over", "op", 1))
            .unwrap();
        let r = l
            .apply_batch(&[op_anchor(1, 0, 1), op_anchor(2, 1, 2)])
            .unwrap();
        assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
        drop(l);
        (t.sql)(corruption);
        let mut l = (t.open)();
        for op in [op_anchor(1, 0, 1), op_anchor(3, 2, 3), op_anchor(1, 0, 9)] {
            let r = l.apply_batch(&[op]).unwrap();
            assert!(
                matches!(
                    &r[0],
                    Err(LedgerError::ChainRefused(why)) if why.code() == "chain_head_corrupt"
                ),
                "{corruption}: {r:?}"
            );
        }
        assert!(
            matches!(
                l.chain_head("S1"),
                Err(LedgerError::ChainRefused(ChainRefusal::CorruptHead { .. }))
            ),
            "{corruption}"
        );
        // Each refused upload left an alert for the operator.
        let alerts = l.chain_states().unwrap()[0].alerts;
        assert!(alerts >= 3, "{corruption}: {alerts} alerts");
        l.reset_chain("S1", &OperatorAction::new("head repaired", "op", 2))
            .unwrap();
        assert_eq!(
            l.chain_states().unwrap()[0].alerts,
            alerts + 1,
            "the reset's alert"
        );
        let r = l.apply_batch(&[op_anchor(1, 0, 5)]).unwrap();
        assert!(
            matches!(r[0], Ok(LedgerOutcome::Anchored(AuditStored::New))),
            "{corruption}: {r:?}"
        );
    }
}

/// Several connections (as several instances would hold) race for one UID
/// and upload one audit record twice: one issuance, one stored record.
fn concurrent_connections_issue_once_and_store_an_audit_once(t: &Target) {
    const RACERS: usize = 6;
    let mut ledgers: Vec<_> = (0..RACERS).map(|_| (t.open)()).collect();
    for round in 0..10 {
        let uid = format!("{round:020X}");
        let barrier = Barrier::new(RACERS);
        let results: Vec<Result<(), LedgerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = ledgers
                .iter_mut()
                .enumerate()
                .map(|(i, l)| {
                    let (barrier, uid) = (&barrier, &uid);
                    s.spawn(move || {
                        barrier.wait();
                        l.try_issue(&NewIssuance {
                            transaction_id: &format!("r{round}-{i}"),
                            fob_uid: uid,
                            ..issuance("", 1000)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let issued: Vec<usize> = (0..RACERS).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(issued.len(), 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(LedgerError::AlreadyIssued(_)))));
        assert_eq!(ledgers[0].issuance_count(&uid).unwrap(), 1);
        // The same SUCCESS record from every connection at once: stored once.
        let txid = format!("r{round}-{}", issued[0]);
        let barrier = Barrier::new(RACERS);
        let stored: Vec<Result<AuditStored, LedgerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = ledgers
                .iter_mut()
                .map(|l| {
                    let (barrier, uid, txid) = (&barrier, &uid, &txid);
                    s.spawn(move || {
                        barrier.wait();
                        l.store_audit(&audit(txid, uid, 1500))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let new = stored
            .iter()
            .filter(|r| matches!(r, Ok(AuditStored::New)))
            .count();
        let dup = stored
            .iter()
            .filter(|r| matches!(r, Ok(AuditStored::Duplicate)))
            .count();
        assert_eq!((new, dup), (1, RACERS - 1), "round {round}: {stored:?}");
        assert!(ledgers[1].is_completed(&txid).unwrap());
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(&super::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { super::$name(&super::postgres()); } )*
        }
    };
}

both_backends!(
    one_time_rule_expiry_success_and_reissue,
    success_for_a_superseded_or_expired_package_is_flagged,
    audit_checks_transaction_station_and_uid,
    batch_applies_rules_in_order_and_rolls_back_only_the_failing_op,
    chain_grows_along_one_line_and_reset_is_recorded,
    a_corrupt_chain_head_refuses_uploads_until_a_reset,
    concurrent_connections_issue_once_and_store_an_audit_once,
);

/// `kf-klms serve` children, killed by PID when dropped.
struct Instances(Vec<std::process::Child>);

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port already taken ends `serve` with a clear error once the PostgreSQL
/// ledger is open: the ledger's client is released off the server's runtime
/// (its drop runs a runtime of its own), never a panic.
#[test]
fn serve_on_a_taken_port_with_a_postgres_ledger_exits_with_a_clear_error() {
    let pg = Postgres::shared().unwrap();
    let url = pg.fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    pki_init(&pki, &url);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let log = dir.path().join("serve.log");
    let mut child = spawn_serve(&pki.join("klms.toml"), port, &url, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve on a taken port did not exit within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(taken);
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("PostgreSQL host=127.0.0.1"),
        "the ledger was not opened: {log}"
    );
    assert!(log.contains("in use"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// `kf-klms pki init DIR --station station-01` against the ledger at `url`.
fn pki_init(dir: &std::path::Path, url: &str) {
    let out = klms(
        &[
            "pki",
            "init",
            dir.to_str().unwrap(),
            "--station",
            "station-01",
        ],
        url,
    );
    assert!(out.status.success(), "{out:?}");
}

/// `kf-klms serve` on 127.0.0.1:`port` with the ledger at `url`, its log in `log`.
fn spawn_serve(
    config: &std::path::Path,
    port: u16,
    url: &str,
    log: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_kf-klms"))
        .args(["serve", "--config", config.to_str().unwrap(), "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .env("KF_KLMS_LEDGER_URL", url)
        .env_remove("KF_KLMS_MASTER_KEY")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn klms(args: &[&str], ledger_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kf-klms"))
        .args(args)
        .env("KF_KLMS_LEDGER_URL", ledger_url)
        .env_remove("KF_KLMS_MASTER_KEY")
        .output()
        .unwrap()
}

fn wait_listening(
    port: u16,
    child: &mut std::process::Child,
    log: &std::path::Path,
    deadline: std::time::Instant,
) {
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "kf-klms serve exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kf-klms serve on port {port} not listening within 60 s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn three_serve_processes_on_one_postgres_issue_each_fob_once() {
    use serde_json::{json, Value};
    let pg = Postgres::shared().unwrap();
    // A password in the URL must never reach the logs (trust auth ignores it).
    let url = format!("{} password=never-logged-pw", pg.fresh_database().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    pki_init(&pki, &url);
    let config = pki.join("klms.toml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut instances = Instances(Vec::new());
    let mut bases = Vec::new();
    for i in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join(format!("serve-{i}.log"));
        let mut child = spawn_serve(&config, port, &url, &log);
        wait_listening(port, &mut child, &log, deadline);
        instances.0.push(child);
        bases.push(format!("https://127.0.0.1:{port}"));
    }
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.path().join(format!("serve-{i}.log"))).unwrap();
        assert!(
            log.contains("PostgreSQL host=127.0.0.1") && log.contains("issuance ledger"),
            "{log}"
        );
        assert!(!log.contains("never-logged-pw"), "{log}");
    }
    let ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    let identity = format!(
        "{}{}",
        std::fs::read_to_string(pki.join("station-01.pem")).unwrap(),
        std::fs::read_to_string(pki.join("station-01.key")).unwrap()
    );
    let client = common::https_client(&ca, Some(&identity), std::time::Duration::from_secs(30));
    let issue = |base: &str, uid: &str| -> (u16, Value) {
        common::request_package(&client, base, uid, "R1")
    };
    // Concurrent requests for the same fob at all three instances (three each).
    const PER_INSTANCE: usize = 3;
    let mut first_txid = None;
    for round in 0..8 {
        let uid = format!("04{round:018X}");
        let barrier = Barrier::new(3 * PER_INSTANCE);
        let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3 * PER_INSTANCE)
                .map(|i| {
                    let (barrier, base, uid, issue) = (&barrier, &bases[i % 3], &uid, &issue);
                    s.spawn(move || {
                        barrier.wait();
                        issue(base, uid)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(ok.len(), 1, "round {round}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 409, "{body}");
            assert_eq!(body["error"], "already_issued", "{body}");
        }
        if first_txid.is_none() {
            first_txid = Some((uid, ok[0]["transaction_id"].as_str().unwrap().to_owned()));
        }
    }
    let (uid, txid) = first_txid.unwrap();
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |db: &mut postgres::Client, sql: &str, arg: &str| -> i64 {
        db.query_one(sql, &[&arg]).unwrap().get(0)
    };
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) FROM issuances WHERE fob_uid = $1",
            &uid
        ),
        1
    );
    // The same audit record at two instances at once: stored once.
    let mut record = kf_testkit::audit::success_record(&txid, &uid);
    record["stage_durations_ms"] = json!({"ReadUid": 3});
    let barrier = Barrier::new(2);
    let mut statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = bases[..2]
            .iter()
            .map(|base| {
                let (barrier, client, record) = (&barrier, &client, &record);
                s.spawn(move || {
                    barrier.wait();
                    client
                        .post(format!("{base}/v1/audit"))
                        .json(record)
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) FROM audits WHERE transaction_id = $1",
            &txid
        ),
        1
    );
    // Completed: refused everywhere until an operator re-issue, which exactly
    // one later request (at any instance) consumes.
    for base in &bases {
        assert_eq!(issue(base, &uid).0, 409);
    }
    // An operator command on the shared ledger, named by the configuration.
    let operator = |args: &[&str]| {
        let out = klms(
            &[args, &["--config", config.to_str().unwrap()]].concat(),
            &url,
        );
        assert!(out.status.success(), "{out:?}");
        out
    };
    let out = operator(&["reissue", &uid, "--reason", "fob replaced"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never-logged-pw"));
    assert_eq!(issue(&bases[2], &uid).0, 200);
    assert_eq!(issue(&bases[1], &uid).0, 409);
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) FROM issuances WHERE fob_uid = $1",
            &uid
        ),
        2
    );
    // The chain commands read the shared ledger.
    operator(&["chain", "state", "--json"]);
    drop(instances);
}

/// A ledger URL with the CA of the PostgreSQL server: the connection is TLS
/// (the server accepts nothing else), verified against that CA; a foreign CA,
/// no CA, or `sslmode=require` without a CA are refused with clear errors.
#[test]
fn postgres_ledger_over_tls_verifies_the_server() {
    let pki = kf_klms::pki::DevPki::generate("Ledger DB CA", &[]).unwrap();
    let pg = Postgres::start_tls(&pki.server.cert_pem, &pki.server.key_pem).unwrap();
    let url = pg.fresh_database().unwrap();

    let target = PgTarget::new(Zeroizing::new(url.clone()), Some(&pki.ca.cert_pem)).unwrap();
    assert!(
        target.describe().ends_with("(TLS)"),
        "{}",
        target.describe()
    );
    let mut ledger = PgLedger::connect(&target).unwrap();
    ledger.try_issue(&issuance("tx-tls", 1_000)).unwrap();
    let again = PgLedger::connect(&target)
        .unwrap()
        .try_issue(&issuance("tx-tls-2", 1_001));
    assert!(
        matches!(again, Err(LedgerError::AlreadyIssued(_))),
        "{again:?}"
    );

    // Plaintext is refused by this server (hostssl only).
    let plain = PgTarget::new(Zeroizing::new(url.clone()), None).unwrap();
    let err = PgLedger::connect(&plain).err().expect("plaintext refused");
    assert!(err.to_string().contains("pg_hba.conf"), "{err}");

    // A CA that did not sign the server's certificate: the handshake fails.
    let other = kf_klms::pki::DevPki::generate("Other CA", &[]).unwrap();
    let foreign = PgTarget::new(Zeroizing::new(url.clone()), Some(&other.ca.cert_pem)).unwrap();
    let err = PgLedger::connect(&foreign)
        .err()
        .expect("foreign CA refused");
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );

    // sslmode=require without a CA is a configuration error, before connecting.
    let err = PgTarget::new(Zeroizing::new(format!("{url} sslmode=require")), None)
        .err()
        .expect("sslmode=require needs a CA");
    assert!(err.to_string().contains("ledger_ca_file"), "{err}");
    // A CA file without a certificate says what it holds.
    let err = PgTarget::new(Zeroizing::new(url), Some(&pki.server.key_pem))
        .err()
        .expect("a key is not a CA");
    assert!(err.to_string().contains("ledger CA"), "{err}");
}

/// A server on the PostgreSQL ledger stops without a panic: the ledger's
/// blocking client is released off the server's async runtime.
#[test]
fn server_on_postgres_stops_cleanly() {
    let pg = Postgres::shared().unwrap();
    let url = pg.fresh_database().unwrap();
    let pki = kf_klms::pki::DevPki::generate("Stop CA", &["station-01"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let master = kf_crypto::AesKey::from_slice(&[0x42; 16]).unwrap();
    let mut config = kf_klms::KlmsConfig::dev(&pki, dir.path().join("unused.db"), master).unwrap();
    config.ledger_url = Some(Zeroizing::new(url));
    let server = kf_klms::spawn_server(config).unwrap();
    assert!(
        server.stop().is_ok(),
        "the server thread panicked while stopping"
    );
}
