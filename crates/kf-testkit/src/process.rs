//! Checks on finished child processes (the command-line tests).

use std::process::Output;

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
