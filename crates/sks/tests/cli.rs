//! The `sks` binary: init, device-info, demo on a database, keys, key show, sign, change-pin,
//! and no PIN or token in the output of `sks serve` or its clients.
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

/// Every form a secret could take in text: raw, hex in both cases, standard Base64.
fn forms(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::Engine;
    vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
        (
            "Base64",
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .into_bytes(),
        ),
    ]
}

/// `sks serve` on loopback TCP and its clients through every PIN path the
/// CLI has (a wrong PIN, the right one, changePIN, the new one): no PIN and not the
/// connection token reach the server's or the clients' output in any form.
#[test]
fn pins_and_the_token_never_reach_the_output_of_serve_or_its_clients() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let db_arg = db.to_str().unwrap();
    let (ok, out) = sks(&["init", "--db", db_arg], &[]);
    assert!(ok, "{out}");
    // The demo provisions a signing key whose PIN is 2468.
    let (ok, out) = sks(&["--db", db_arg, "demo"], &[]);
    assert!(ok, "{out}");
    let (ok, out) = sks(&["--db", db_arg, "keys"], &[]);
    assert!(ok, "{out}");
    let handle = out.split_whitespace().next().unwrap().to_owned();
    let (old_pin, wrong_pin, new_pin) = ("2468", "93017264", "80235146");

    let token_file = dir.path().join("sks.token");
    let stderr_file = dir.path().join("serve.stderr");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_sks"))
        .args([
            "serve",
            "--db",
            db_arg,
            "--listen",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(&token_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = serve.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    let addr = first
        .strip_prefix("sks serving on ")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();
    let token = std::fs::read(&token_file).unwrap();
    let remote = [
        "--connect",
        &addr,
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    let data = "11".repeat(32);
    let mut client_output = String::new();
    let mut call = |args: &[&str], envs: &[(&str, &str)], expect_ok: bool| {
        let full: Vec<&str> = remote.iter().copied().chain(args.iter().copied()).collect();
        let (ok, out) = sks(&full, envs);
        assert_eq!(ok, expect_ok, "{args:?}: {out}");
        // A signature is the only output of a good sign; it is left out of the scan (its
        // random hex could hold a four-digit PIN by chance) once it is shown to be one.
        let signature = ok && args[0] == "sign";
        if signature {
            let der = hex::decode(out.trim()).unwrap_or_else(|_| panic!("{out}"));
            assert_eq!(der.first(), Some(&0x30), "{out}");
        } else {
            client_output.push_str(&out);
        }
    };
    let sign = ["sign", &handle, "--data-hex", &data];
    call(&sign, &[("SKS_PIN", wrong_pin)], false);
    call(&sign, &[("SKS_PIN", old_pin)], true);
    call(
        &["change-pin", &handle],
        &[("SKS_PIN", old_pin), ("SKS_NEW_PIN", new_pin)],
        true,
    );
    call(&sign, &[("SKS_PIN", old_pin)], false);
    call(&sign, &[("SKS_PIN", new_pin)], true);
    assert!(
        client_output.contains("ERROR_AUTHORIZATION"),
        "{client_output}"
    );

    serve.kill().unwrap();
    serve.wait().unwrap();
    // The address is left out of the scan: its port could hold a four-digit PIN by chance.
    let mut serve_output = first.replace(&addr, "ADDR").into_bytes();
    stdout.read_to_end(&mut serve_output).unwrap();
    serve_output.extend(std::fs::read(&stderr_file).unwrap());

    let token = String::from_utf8(token).unwrap();
    let secrets = [
        ("the wrong PIN", wrong_pin.as_bytes()),
        ("the old PIN", old_pin.as_bytes()),
        ("the new PIN", new_pin.as_bytes()),
        ("the token", token.trim().as_bytes()),
    ];
    for (stream, bytes) in [
        ("serve's output", serve_output.as_slice()),
        ("the clients' output", client_output.as_bytes()),
    ] {
        for (what, secret) in secrets {
            for (form, needle) in forms(secret) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{what} reached {stream} as {form}"
                );
            }
        }
    }
}
