//! What the station's integration tests share: the binary, its `--json`
//! outcome, generated container pools, and the check that no SCP03 command
//! reached the fob.
#![allow(dead_code)]

pub mod secrets;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The station binary under test.
pub fn station() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kf-station"))
}

/// The station binary run in `dir`, with no `KF_*` setting and no `RUST_LOG`
/// from the caller's shell: only what the test passes counts.
pub fn station_in(dir: &Path) -> Command {
    let mut command = station();
    command.current_dir(dir).env_remove("RUST_LOG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KF_") {
            command.env_remove(key);
        }
    }
    command
}

/// SHA-256 of the file at `path` (to show that it did not change).
pub fn digest(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// The names in `dir`, sorted (to show that no file came or went).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `cmd` (a `--json` command): (exit code, the JSON outcome, stderr).
pub fn json_outcome(cmd: &mut Command) -> (i32, Value, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON outcome ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// `provision --sim` on the container pool with extra flags, journal `j.db`
/// in `dir`: (exit code, the `--json` outcome, stderr).
pub fn provision_container(pool: &Path, dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    json_outcome(
        station_in(dir)
            .args([
                "provision",
                "--sim",
                "--source",
                "container",
                "--source-dir",
            ])
            .arg(pool)
            .args(["--journal", "j.db", "--json"])
            .args(extra),
    )
}

/// A pool of `count` generated packages in `root/pool`; their directory
/// names, sorted.
pub fn pool(root: &Path, count: usize, seed: u64) -> (PathBuf, Vec<String>) {
    let pool = root.join("pool");
    let names = kf_source::fixtures::generate(&pool, count, Some(seed))
        .unwrap()
        .dir_names();
    (pool, names)
}

/// No SCP03 command (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, STORE DATA)
/// in the outcome's APDU trace.
pub fn assert_no_scp03_command(outcome: &Value) {
    for entry in outcome["audit"]["apdu_trace"].as_array().unwrap() {
        if entry["direction"] != "TX" {
            continue;
        }
        let apdu = entry["apdu_hex"].as_str().unwrap();
        assert!(
            !matches!(&apdu[2..4], "50" | "82" | "E2"),
            "an SCP03 command reached the fob: {apdu}"
        );
    }
}
