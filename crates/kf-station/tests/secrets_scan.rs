//! No static key, private scalar or BLE IRK reaches an audit record, the
//! journal, a log (RUST_LOG=trace) or stdout, for any source or level,
//! including failing fobs.
// They run the simulator commands (`demo`, `provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use p256::pkcs8::DecodePrivateKey;

fn station(args: &[&str], dir: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kf-station"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file below `dir`, lossily as text (SQLite stores the JSON as text).
fn all_files(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

#[test]
fn no_secret_in_audit_records_journals_logs_or_output() {
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    let fixtures = kf_source::fixtures::generate(&pool, 3, Some(11)).unwrap();
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();

    let mut outputs = Vec::new();
    for args in [
        vec![
            "demo",
            "--fobs",
            "2",
            "--level",
            "01",
            "--source",
            "dev",
            "--data-dir",
            "d1",
        ],
        vec!["demo", "--fobs", "2", "--level", "33", "--data-dir", "d2"],
        vec![
            "provision",
            "--sim",
            "--level",
            "33",
            "--journal",
            "j.db",
            "--audit-file",
            "a.jsonl",
        ],
        vec![
            "provision",
            "--sim",
            "--source",
            "container",
            "--source-dir",
            pool.to_str().unwrap(),
            "--journal",
            "j.db",
            "--audit-file",
            "a.jsonl",
            "--json",
        ],
        // A failing fob: the same package pool is now exhausted for new UIDs.
        vec![
            "provision",
            "--sim",
            "--source",
            "container",
            "--source-dir",
            pool.to_str().unwrap(),
            "--level",
            "01",
            "--journal",
            "j.db",
            "--audit-file",
            "a.jsonl",
        ],
        vec!["audit", "export", "--journal", "j.db", "--format", "csv"],
    ] {
        let (stdout, stderr) = station(&args, &run_dir);
        outputs.push((format!("stdout of {args:?}"), stdout));
        outputs.push((format!("stderr of {args:?}"), stderr));
    }
    all_files(&run_dir, &mut outputs);
    assert!(
        outputs.iter().any(|(n, _)| n.ends_with("a.jsonl")),
        "no audit file was written"
    );
    assert!(
        outputs
            .iter()
            .any(|(n, t)| n.starts_with("stderr") && t.contains("TRACE")),
        "RUST_LOG=trace produced no log to scan"
    );

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("dev ENC".into(), kf_profile::DEV_SAMPLE_ENC.to_vec()),
        ("dev MAC".into(), kf_profile::DEV_SAMPLE_MAC.to_vec()),
        ("dev DEK".into(), kf_profile::DEV_SAMPLE_DEK.to_vec()),
    ];
    for p in &fixtures.packages {
        let key = p256::SecretKey::from_pkcs8_der(&p.private_key_der).unwrap();
        secrets.push((format!("scalar of {}", p.fesn), key.to_bytes().to_vec()));
        let irk = base64::engine::general_purpose::STANDARD
            .decode(p.irk_base64.as_bytes())
            .unwrap();
        secrets.push((format!("IRK of {}", p.fesn), irk));
    }
    for (name, text) in &outputs {
        let upper = text.to_uppercase();
        for (what, bytes) in &secrets {
            let hex = hex::encode_upper(bytes);
            assert!(!upper.contains(&hex), "{what} leaked into {name}");
        }
    }
}
