//! The factory build of the station (`--no-default-features --features pcsc`):
//! the binary links neither the virtual fob, nor the reference KLMS server,
//! nor the benchmark or test crates, and the simulator commands say how to get
//! them (exit 2, one line) without touching any file. Run by
//! `scripts/factory-check.sh`, which also checks the dependency tree with
//! `cargo tree`; `scripts/test.sh` runs it only when the Windows step is
//! skipped, since `scripts/windows-e2e.sh` checks the same of the Windows exe.
#![cfg(not(feature = "sim"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const BAD_INPUT: i32 = 2;

fn station(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kf-station"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("KF_SIM")
        .env_remove("KF_READER")
        .env_remove("KF_JOURNAL")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn simulator_commands_exit_2_and_say_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["demo"],
        vec!["demo", "--fobs", "3", "--data-dir", "d"],
        vec!["self-test"],
        vec!["sim", "serve", "--vpcd", "127.0.0.1:35963"],
        vec!["bench", "--fobs", "2", "--transport", "loopback"],
        vec!["provision", "--sim", "--journal", "j.db"],
    ] {
        let out = station(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(BAD_INPUT), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: `")
                && lines[0].contains("factory build")
                && lines[0].contains("`sim` feature"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a refused command left files: {left:?}");
}

#[test]
fn help_marks_the_simulator_commands_as_not_in_this_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = station(dir.path(), &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["demo", "self-test", "bench", "sim"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("no {command} in --help:\n{help}"));
        assert!(line.contains("Not in this factory build"), "{line}");
    }
    // The production commands are all there.
    for command in ["provision", "run", "audit", "fixtures", "scp03", "readers"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "no {command} in --help:\n{help}"
        );
    }
}

/// Crate names survive in the binary's symbols (`kf_transport::...`); a crate
/// that is not linked leaves none.
#[test]
fn the_binary_links_no_simulator_server_bench_or_test_crate() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_kf-station")).unwrap();
    let binary = String::from_utf8_lossy(&bytes);
    let holds = |name: &str| binary.contains(name);
    // Control: the search finds crates that are linked.
    for linked in ["kf_transport", "kf_perso", "kf_source", "kf_audit"] {
        assert!(holds(linked), "{linked} not found: the check is broken");
    }
    for absent in ["kf_card", "kf_klms", "kf_bench", "kf_testkit"] {
        assert!(!holds(absent), "the factory binary links {absent}");
    }
}
