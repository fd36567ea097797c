//! The independent issuer (`tests/independent_issuer/`, Python with `cryptography`, written
//! from the byte-layout specification alone) drives `sks serve` through complete provisioning
//! sessions and checks every MAC, attestation and stored result. A shared misreading of the
//! specification by the engine and the Rust issuer emulation shows up here.
//!
//! Needs `python3` (or `$PYTHON`) with the PyPI package `cryptography`; `scripts/setup-deps.sh`
//! installs it. A missing interpreter or package fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::start_serve;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Upper bound for the whole Python run (it takes about a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Kills and reaps the child on drop, so a failing assertion never leaks `sks serve`.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Fails loudly when the interpreter or `cryptography` is missing.
fn require_python_cryptography() {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import cryptography; print(cryptography.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{py}` cannot import the PyPI package `cryptography` (run scripts/setup-deps.sh or \
             `{py} -m pip install cryptography`): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("`{py}` is required for the independent issuer: {e}"),
    }
}

/// `sks init --db DB`, then `sks serve` on a random loopback port.
fn start_server(db: &Path) -> (Reaped, String, std::path::PathBuf) {
    let init = Command::new(env!("CARGO_BIN_EXE_sks"))
        .args(["init", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(init.status.success(), "sks init: {init:?}");
    let (child, addr, token) = start_serve(db);
    (Reaped(child), addr, token)
}

/// Runs `python3 -m independent_issuer --connect ADDR --token-file FILE`; returns (success,
/// stdout, stderr).
fn run_issuer(addr: &str, token: &Path) -> (bool, String, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut child = Command::new(python())
        .args([
            "-m",
            "independent_issuer",
            "--connect",
            addr,
            "--token-file",
        ])
        .arg(token)
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut child = Reaped(child);
    let (tx, rx) = mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(RUN_TIMEOUT)
        .unwrap_or_else(|_| panic!("the independent issuer did not finish in {RUN_TIMEOUT:?}"));
    let status = child.0.wait().unwrap();
    let err = err_reader.join().unwrap_or_default();
    (status.success(), out, err)
}

/// Parses `independent issuer: OK, N checks, M sessions, T s`.
fn summary(out: &str) -> Option<(u32, u32)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("independent issuer: OK, "))?;
    let mut words = line
        .trim_start_matches("independent issuer: OK, ")
        .split(", ");
    let checks = words.next()?.strip_suffix(" checks")?.parse().ok()?;
    let sessions = words.next()?.strip_suffix(" sessions")?.parse().ok()?;
    Some((checks, sessions))
}

#[test]
fn independent_issuer_agrees_with_sks_serve() {
    require_python_cryptography();
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, token) = start_server(&dir.path().join("sks.db"));
    let (ok, out, err) = run_issuer(&addr, &token);
    assert!(ok, "independent issuer failed:\n{out}\n{err}");
    let (checks, sessions) =
        summary(&out).unwrap_or_else(|| panic!("no summary line in:\n{out}\n{err}"));
    // Every scenario ran: 23 sessions (A, B, C, D, the mode mismatch, four SessionKeyLimit
    // sessions, optional key algorithms, unknown key ID, ten PIN-rule sessions, tampered MAC,
    // abort) and at least the checks counted when this was written.
    assert_eq!(sessions, 23, "{out}");
    assert!(checks >= 380, "only {checks} checks ran:\n{out}");
}

#[test]
fn summary_line_parser() {
    assert_eq!(
        summary("x\nindependent issuer: OK, 224 checks, 10 sessions, 0.89 s\n"),
        Some((224, 10))
    );
    assert_eq!(
        summary("independent issuer: DISCREPANCY after 3 checks: x"),
        None
    );
}
