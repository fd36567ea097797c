//! Every file the station reads is a regular file within a size cap: a
//! device, FIFO or oversize input (file or standard input) is refused within
//! seconds with one line naming the input and the limit, exit code 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::station_in;

/// A hung command fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);
const BAD_INPUT: i32 = 2;

/// Runs `kf-station ARGS` with `stdin` fed from `input` (when given).
fn station(dir: &Path, args: &[&str], input: Option<Vec<u8>>) -> Output {
    let mut child = station_in(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(bytes) = input {
            // The station stops reading at its cap; a broken pipe is expected.
            let _ = stdin.write_all(&bytes);
        }
        drop(stdin);
    });
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("kf-station {args:?} did not finish within {LIMIT:?}");
        }
    }
}

fn assert_refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[cfg(unix)]
/// Makes the FIFO `dir/name`.
fn mkfifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    assert!(Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    path
}

#[cfg(unix)]
#[test]
fn replay_script_from_a_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = station(
        dir.path(),
        &["scp03", "replay", "--script", "/dev/zero"],
        None,
    );
    assert_refused(&out, &["/dev/zero", "expected a regular file"]);
}

#[cfg(unix)]
#[test]
fn replay_script_from_a_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path(), "script.json");
    let shown = fifo.display().to_string();
    let out = station(dir.path(), &["scp03", "replay", "--script", &shown], None);
    assert_refused(&out, &[&shown, "FIFO"]);
}

#[test]
fn an_oversize_replay_script_file_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let cap = kf_scp03::replay::SCRIPT_MAX_BYTES;
    std::fs::write(&big, vec![b' '; cap as usize + 1]).unwrap();
    let shown = big.display().to_string();
    let out = station(dir.path(), &["scp03", "replay", "--script", &shown], None);
    assert_refused(&out, &[&shown, &format!("limit of {cap} bytes")]);
}

#[test]
fn an_endless_replay_script_on_standard_input_is_cut_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cap = kf_scp03::replay::SCRIPT_MAX_BYTES;
    let input = vec![b' '; cap as usize * 2];
    let out = station(
        dir.path(),
        &["scp03", "replay", "--script", "-"],
        Some(input),
    );
    assert_refused(
        &out,
        &["<standard input>", &format!("limit of {cap} bytes")],
    );
}

#[cfg(unix)]
#[test]
fn a_config_from_a_device_or_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path(), "station.toml");
    for config in ["/dev/zero".to_owned(), fifo.display().to_string()] {
        let out = station(dir.path(), &["run", "--config", &config], None);
        assert_refused(&out, &[&config, "expected a regular file"]);
    }
}

#[test]
fn an_oversize_config_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("station.toml");
    let mut text = String::from("# padding\n");
    text.push_str(&"#".repeat(kf_files::CONFIG_MAX_BYTES as usize));
    std::fs::write(&config, text).unwrap();
    let shown = config.display().to_string();
    let out = station(dir.path(), &["run", "--config", &shown], None);
    assert_refused(
        &out,
        &[
            &shown,
            &format!("limit of {} bytes", kf_files::CONFIG_MAX_BYTES),
        ],
    );
}
