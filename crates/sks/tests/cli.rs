//! The `sks` binary: init, device-info, demo on a database, keys, key show, sign, change-pin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn sks(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sks"));
    cmd.args(args)
        .env_remove("SKS_PIN")
        .env_remove("SKS_NEW_PIN")
        .env_remove("SKS_DB");
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn cli_init_demo_keys_show_sign_change_pin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let db = db.to_str().unwrap();
    let (ok, out) = sks(&["--db", db, "keys"], &[]);
    assert!(!ok && out.contains("sks init"), "{out}");
    let (ok, out) = sks(&["init", "--db", db], &[]);
    assert!(ok && out.contains("device certificate"), "{out}");
    let (ok, out) = sks(&["--db", db, "device-info"], &[]);
    assert!(ok && out.contains("APILevel:          100"), "{out}");
    let (ok, out) = sks(&["--db", db, "demo"], &[]);
    assert!(ok && out.contains("postUpdateKey replaced key"), "{out}");
    let (ok, out) = sks(&["--db", db, "keys"], &[]);
    assert!(ok, "{out}");
    let handle = out.split_whitespace().next().unwrap().to_owned();
    assert!(
        out.contains("CN=Demo User (renewed)") && out.contains("CN=Demo HOTP"),
        "{out}"
    );
    let (ok, out) = sks(&["--db", db, "key", "show", &handle], &[]);
    assert!(ok && out.contains("ProtectionStatus:   0x03"), "{out}");
    let data = "00".repeat(32);
    let (ok, out) = sks(
        &["--db", db, "sign", &handle, "--data-hex", &data],
        &[("SKS_PIN", "2468")],
    );
    assert!(
        ok && out.trim().starts_with("30"),
        "DER ECDSA signature: {out}"
    );
    let (ok, out) = sks(
        &["--db", db, "sign", &handle, "--data-hex", &data],
        &[("SKS_PIN", "86429")],
    );
    assert!(!ok && out.contains("ERROR_AUTHORIZATION"), "{out}");
    assert!(!out.contains("86429"), "the PIN is not echoed");
    let (ok, out) = sks(
        &["--db", db, "change-pin", &handle],
        &[("SKS_PIN", "2468"), ("SKS_NEW_PIN", "1357")],
    );
    assert!(ok, "{out}");
    let (ok, out) = sks(
        &["--db", db, "sign", &handle, "--data-hex", &data],
        &[("SKS_PIN", "1357")],
    );
    assert!(ok, "{out}");
}

#[test]
fn cli_demo_runs_without_a_database() {
    let (ok, out) = sks(&["demo"], &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Appendix B session") && out.contains("signHashedData"),
        "{out}"
    );
}
