//! Child processes of the command-line tests: bounded waits and checks on
//! their outcome.

// These helpers fail the test that calls them, as `assert!` does.
#![allow(clippy::panic)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion with its standard output and error captured; a
/// process still running after `limit` (a hang, unbounded retries) is killed
/// and fails the test, with what it wrote so far.
#[track_caller]
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    wait_output_within(child, limit)
}

/// [`output_within`] for a process already started (with piped output, for
/// the output to be captured).
#[track_caller]
pub fn wait_output_within(mut child: Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                // A read error ends the capture; the bytes so far are kept.
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => break None,
            Err(e) => panic!("cannot wait for process {}: {e}", child.id()),
        }
    };
    let Some(status) = status else {
        // Killed so that the pipes close and the output so far can be shown.
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "process {} did not exit within {limit:?}\nstdout: {}\nstderr: {}",
            child.id(),
            String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
            String::from_utf8_lossy(&stderr.join().unwrap_or_default())
        );
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The process exited successfully; else the failure message shows its exit
/// status, standard output and standard error.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed vector file `committed` (a path under `crate_dir`) holds
/// exactly what the independent generator `script` (a Python 3 script under
/// `crate_dir`) prints; `PYTHON` names another interpreter than `python3`.
#[track_caller]
pub fn assert_generator_prints(crate_dir: &str, script: &str, committed: &str) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = output_within(
        Command::new(&python).arg(script).current_dir(crate_dir),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "{python} {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::path::Path::new(crate_dir).join(committed);
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        out.stdout == file,
        "{committed} differs from what {script} prints"
    );
}
