#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `kf-klms chain state | reset` and `kf-klms receipt-key` through the binary.

use std::process::{Command, Output};

use kf_klms::ledger::AnchorRequest;
use kf_klms::ledger::{Ledger, LedgerOp};

fn klms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kf-klms"))
        .args(args)
        .env_remove("KF_KLMS_MASTER_KEY")
        .output()
        .unwrap()
}

fn anchor(station: &str, seq: u64, prev: u8, link: u8) -> LedgerOp {
    LedgerOp::Anchor(AnchorRequest {
        station: station.into(),
        seq,
        prev_link: [prev; 32],
        link: [link; 32],
        audit: None,
        now_ms: 1_764_900_000_000,
    })
}

#[test]
fn chain_state_lists_each_station_and_reset_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let mut l = Ledger::open(&ledger).unwrap();
    l.apply_batch(&[
        anchor("LINE-04-PC-12", 1, 0, 1),
        anchor("LINE-04-PC-12", 2, 1, 2),
        anchor("LINE-05-PC-01", 1, 0, 7),
        anchor("LINE-05-PC-01", 1, 0, 8), // fork: refused, alert
    ])
    .unwrap();
    drop(l);
    let path = ledger.to_str().unwrap();
    let out = klms(&["chain", "state", "--ledger", path, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["station"], "LINE-04-PC-12");
    assert_eq!(rows[0]["seq"], 2);
    assert_eq!(rows[0]["link"], "02".repeat(32));
    assert_eq!(rows[1]["alerts"], 1);
    let table = klms(&["chain", "state", "--ledger", path]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("LINE-05-PC-01"));

    let out = klms(&[
        "chain",
        "reset",
        "LINE-04-PC-12",
        "--reason",
        "disk replaced",
        "--ledger",
        path,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = Ledger::open(&ledger).unwrap();
    assert_eq!(l.chain_head("LINE-04-PC-12").unwrap().0, 0);
    // No ledger, no reason: refused without creating anything.
    let missing = dir.path().join("missing.db");
    let out = klms(&["chain", "state", "--ledger", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!missing.exists());
    let out = klms(&[
        "chain",
        "reset",
        "LINE-04-PC-12",
        "--reason",
        " ",
        "--ledger",
        path,
    ]);
    assert!(!out.status.success());
}

#[test]
fn receipt_key_is_the_public_key_of_the_configured_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let out = klms(&["pki", "init", pki_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = pki_dir.join("klms.toml");
    let out = klms(&["receipt-key", "--config", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).unwrap();
    let key = kf_audit::receipt::klms_key_from_pem(&pem).unwrap();
    let master = std::fs::read_to_string(pki_dir.join("master-key.hex")).unwrap();
    let signer = kf_klms::receipt::ReceiptSigner::derive(
        &kf_crypto::AesKey::from_hex(master.trim()).unwrap(),
    )
    .unwrap();
    assert!(signer.sign("S", 1, &[1; 32]).verify(&key));
    assert!(!pem.contains(master.trim()));
}
