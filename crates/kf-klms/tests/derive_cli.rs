#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `kf-klms derive` against the NXP KDF3 vectors (kf-crypto's
//! tests/data/crypto-vectors.json, group `nxp_kdf3_project_layout`).

use std::process::{Command, Output};

use kf_testkit::process::assert_success;

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kf-crypto/tests/data/crypto-vectors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs `kf-klms` with `args` to completion.
fn klms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kf-klms"))
        .args(args)
        .output()
        .unwrap()
}

/// `kf-klms derive` of a fixed master key for the 7-byte UID 04112233445566,
/// with `extra` arguments.
fn derive_7_byte_uid(extra: &[&str]) -> Output {
    let args = [
        "derive",
        "--master-key",
        "000102030405060708090A0B0C0D0E0F",
        "--uid",
        "04112233445566",
    ];
    klms(&[&args[..], extra].concat())
}

#[test]
fn derive_matches_kdf3_vectors() {
    let v = &vectors()["nxp_kdf3_project_layout"];
    let out = klms(&[
        "derive",
        "--master-key",
        v["master_key"].as_str().unwrap(),
        "--uid",
        v["uid"].as_str().unwrap(),
    ]);
    assert_success(&out);
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = &v["keys"];
    assert_eq!(
        got["enc"], keys["enc_label_00000001"],
        "ENC (label 00000001)"
    );
    assert_eq!(
        got["mac"], keys["mac_label_00000002"],
        "MAC (label 00000002)"
    );
    assert_eq!(
        got["dek"], keys["dek_label_00000003"],
        "DEK (label 00000003)"
    );
    assert_eq!(got.as_object().unwrap().len(), 3);
}

#[test]
fn derive_refuses_wrong_uid_length() {
    let out = derive_7_byte_uid(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 10"));
    assert!(out.stdout.is_empty());
}

#[test]
fn derive_accepts_configured_uid_length() {
    let out = derive_7_byte_uid(&["--uid-len", "7"]);
    assert!(out.status.success());
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["enc", "mac", "dek"] {
        let hex = got[k].as_str().unwrap();
        assert_eq!(hex.len(), 32);
        assert_eq!(hex, hex.to_uppercase());
    }
}

#[test]
fn pki_init_writes_a_loadable_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let out = klms(&[
        "pki",
        "init",
        pki_dir.to_str().unwrap(),
        "--station",
        "station-01",
        "--station",
        "station-02",
    ]);
    assert_success(&out);
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "station-01.pem",
        "station-02.key",
        "fob-ica.pem",
        "master-key.hex",
        "klms.toml",
    ] {
        assert!(pki_dir.join(f).exists(), "{f} missing");
    }
    let cfg = kf_klms::config::FileConfig::load(&pki_dir.join("klms.toml")).unwrap();
    assert_eq!(cfg.allowed_stations, vec!["station-01", "station-02"]);
    let resolved = cfg.resolve(&pki_dir).unwrap();
    assert_eq!(resolved.uid_len, 10);
    assert_eq!(resolved.ttl, std::time::Duration::from_secs(5));
    assert!(resolved.bind.ip().is_loopback());
    // A second init must not overwrite the CA.
    let again = klms(&["pki", "init", pki_dir.to_str().unwrap()]);
    assert!(!again.status.success());
    // Re-issue writes to the configured ledger.
    let reissue = klms(&[
        "reissue",
        "04112233445566778899",
        "--reason",
        "fob replaced",
        "--config",
        pki_dir.join("klms.toml").to_str().unwrap(),
    ]);
    assert_success(&reissue);
    assert!(pki_dir.join("klms-ledger.db").exists());
    let no_reason = klms(&[
        "reissue",
        "04112233445566778899",
        "--reason",
        "",
        "--config",
        pki_dir.join("klms.toml").to_str().unwrap(),
    ]);
    assert!(!no_reason.status.success());
}
