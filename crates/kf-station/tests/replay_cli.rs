//! `kf-station scp03 replay` against the published card transcripts
//! (`../shared/vectors/scp03-replay-pysim-aes128.json`, copied to kf-scp03's tests/data).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../kf-scp03/tests/data/scp03-replay-pysim-aes128.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn replay(script: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.json");
    std::fs::write(&file, script).unwrap();
    Command::new(env!("CARGO_BIN_EXE_kf-station"))
        .args(["scp03", "replay", "--script"])
        .arg(&file)
        .args(extra)
        .output()
        .unwrap()
}

/// Every field the vector file expects must match the CLI output exactly.
fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let sub = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in output"));
                assert_subset(v, sub, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{path}: length");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_subset(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::String(e), Value::String(a)) => {
            assert_eq!(e.to_uppercase(), *a, "{path}");
            assert_eq!(a.to_uppercase(), *a, "{path}: hex must be upper case");
        }
        (e, a) => assert_eq!(e, a, "{path}"),
    }
}

#[test]
fn replay_cli_matches_every_published_transcript() {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let source = case["source"].as_str().unwrap();
        let out = replay(&case["input"].to_string(), &[]);
        assert!(
            out.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let actual: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_subset(&case["expected"], &actual, source);
        assert!(
            actual.get("session_keys").is_none(),
            "{source}: keys printed unasked"
        );
    }
}

#[test]
fn replay_cli_prints_session_keys_only_when_asked() {
    let vectors = vectors();
    let input = vectors["cases"][0]["input"].to_string();
    let out = replay(&input, &["--show-session-keys"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("session_keys"), "{text}");
}

#[test]
fn replay_cli_rejects_malformed_input_with_exit_2_and_one_line() {
    let vectors = vectors();
    let mut odd_hex = vectors["cases"][0]["input"].clone();
    odd_hex["host_challenge"] = Value::String("ABC".into());
    let mut bad_level = vectors["cases"][0]["input"].clone();
    bad_level["security_level"] = Value::String("02".into());
    for script in [
        "",
        "{",
        "[]",
        "{\"static_keys\": 1}",
        &odd_hex.to_string(),
        &bad_level.to_string(),
    ] {
        let out = replay(script, &[]);
        assert_eq!(out.status.code(), Some(2), "script {script:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line on stderr: {err:?}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn replay_cli_reports_a_wrong_key_without_stopping() {
    let vectors = vectors();
    let mut input = vectors["cases"][0]["input"].clone();
    input["static_keys"]["mac"] = Value::String("00".repeat(16));
    let out = replay(&input.to_string(), &[]);
    assert!(out.status.success());
    let actual: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actual["card_cryptogram_valid"], Value::Bool(false));
    assert_eq!(
        actual["commands"].as_array().unwrap().len(),
        input["commands"].as_array().unwrap().len()
    );
}
