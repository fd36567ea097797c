//! A credential database written by an earlier release (`tests/data/written-by-fa2dbe2/`)
//! opens, answers and takes updates with the current code: its PIN and PUK policies read back
//! with every attribute, its key signs with the PIN, a wrong PIN is counted and changePIN works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn sks(db: &Path, args: &[&str], pin: Option<(&str, &str)>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sks"));
    cmd.arg("--db").arg(db).args(args);
    for var in [
        "SKS_PIN",
        "SKS_NEW_PIN",
        "SKS_DB",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    if let Some((pin, new_pin)) = pin {
        cmd.env("SKS_PIN", pin);
        if !new_pin.is_empty() {
            cmd.env("SKS_NEW_PIN", new_pin);
        }
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A copy of the earlier release's database and key file, the key file made owner-only as
/// `sks init` creates it (git does not keep the mode).
fn earlier_database() -> (tempfile::TempDir, std::path::PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/written-by-fa2dbe2");
    let dir = tempfile::tempdir().unwrap();
    for file in ["sks.db", "sks.db.key"] {
        let to = dir.path().join(file);
        std::fs::copy(from.join(file), &to).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let db = dir.path().join("sks.db");
    (dir, db)
}

#[test]
fn a_database_of_an_earlier_release_opens_signs_and_takes_a_new_pin() {
    let (_dir, db) = earlier_database();
    let (ok, keys) = sks(&db, &["keys"], None);
    assert!(ok, "{keys}");
    assert!(
        keys.contains("CN=Demo User (renewed)") && keys.contains("CN=Demo HOTP"),
        "{keys}"
    );
    let show = |db: &Path| {
        let (ok, out) = sks(db, &["key", "show", "4"], None);
        assert!(ok, "{out}");
        out
    };
    let policies = show(&db);
    assert!(
        policies.contains("PIN: format 0 retry 3 errors 0 grouping 1 patterns 0x00 length 4..8"),
        "{policies}"
    );
    assert!(
        policies.contains("PUK: format 0 retry 3 errors 0"),
        "{policies}"
    );

    let data = "5A".repeat(32);
    let sign = ["sign", "4", "--data-hex", &data];
    let (ok, out) = sks(&db, &sign, Some(("2468", "")));
    assert!(ok, "{out}");
    let der = hex::decode(out.trim()).unwrap();
    assert_eq!(der.first(), Some(&0x30), "a DER ECDSA signature: {out}");

    let (ok, out) = sks(&db, &sign, Some(("9999", "")));
    assert!(!ok && out.contains("ERROR_AUTHORIZATION"), "{out}");
    assert!(
        show(&db).contains("errors 1 grouping"),
        "the wrong PIN is counted"
    );

    let (ok, out) = sks(&db, &["change-pin", "4"], Some(("2468", "1357")));
    assert!(ok, "{out}");
    let (ok, out) = sks(&db, &sign, Some(("2468", "")));
    assert!(
        !ok && out.contains("ERROR_AUTHORIZATION"),
        "the old PIN: {out}"
    );
    let (ok, out) = sks(&db, &sign, Some(("1357", "")));
    assert!(ok, "the new PIN: {out}");
    assert!(show(&db).contains("errors 0 grouping"), "{}", show(&db));
}
