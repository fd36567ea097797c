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
        station()
            .args([
                "provision",
                "--sim",
                "--source",
                "container",
                "--source-dir",
            ])
            .arg(pool)
            .args(["--journal", "j.db", "--json"])
            .args(extra)
            .current_dir(dir)
            .env_remove("KF_SOURCE")
            .env_remove("KF_SOURCE_DIR")
            .env_remove("KF_JOURNAL")
            .env_remove("KF_DONE_DIR")
            .env_remove("KF_KEEP_PACKAGES"),
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
