//! The errors a factory operator hits, through the real `kf-station` binary:
//! bad arguments, bad config files, missing or corrupt container files and
//! journals, a closed output pipe. Each must be one clear line on stderr, the
//! documented exit code (2 bad input, 1 failed fob), no panic, no secret, and
//! a refused invocation leaves no file behind.
// They run the simulator commands (`demo`, `provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use p256::pkcs8::DecodePrivateKey;

mod common;
use common::station_in;

const BAD_INPUT: i32 = 2;
const FAILED: i32 = 1;
const BROKEN_PIPE: i32 = 141;

fn run(dir: &Path, args: &[&str]) -> Output {
    station_in(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Non-empty lines of a stream.
fn lines(bytes: &[u8]) -> Vec<String> {
    text(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every secret the station could leak in these tests: the dev-sample static
/// keys and, when a pool is given, each package's scalar and IRK.
fn secrets(pool: Option<&kf_source::fixtures::FixturePool>) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "dev ENC".to_owned(),
            hex::encode_upper(kf_profile::DEV_SAMPLE_ENC),
        ),
        (
            "dev MAC".to_owned(),
            hex::encode_upper(kf_profile::DEV_SAMPLE_MAC),
        ),
        (
            "dev DEK".to_owned(),
            hex::encode_upper(kf_profile::DEV_SAMPLE_DEK),
        ),
    ];
    for p in pool.map(|p| p.packages.as_slice()).unwrap_or_default() {
        let key = p256::SecretKey::from_pkcs8_der(&p.private_key_der).unwrap();
        out.push((
            format!("scalar of {}", p.fesn),
            hex::encode_upper(key.to_bytes()),
        ));
        let irk = base64::engine::general_purpose::STANDARD
            .decode(p.irk_base64.as_bytes())
            .unwrap();
        out.push((format!("IRK of {}", p.fesn), hex::encode_upper(irk)));
    }
    out
}

/// No panic and no secret in either stream, also with every log enabled.
fn assert_clean(dir: &Path, args: &[&str], secrets: &[(String, String)]) {
    let quiet = run(dir, args);
    let traced = station_in(dir)
        .args(args)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    for (name, out) in [("default", &quiet), ("RUST_LOG=trace", &traced)] {
        let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains("panicked"),
            "{args:?} ({name}) panicked: {all}"
        );
        let upper = all.to_uppercase();
        for (what, hex) in secrets {
            assert!(!upper.contains(hex), "{what} leaked in {args:?} ({name})");
        }
    }
}

/// Exit 2, exactly one line on stderr starting with `error: ` and containing
/// every `needle`, nothing on stdout, no panic.
fn assert_bad_input(out: &Output, args: &[&str], needles: &[&str]) -> String {
    let stderr = lines(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(BAD_INPUT),
        "{args:?}: exit {:?}, stderr {stderr:?}",
        out.status
    );
    assert_eq!(stderr.len(), 1, "{args:?}: not one line: {stderr:?}");
    let line = stderr[0].clone();
    assert!(line.starts_with("error: "), "{args:?}: {line}");
    for needle in needles {
        assert!(line.contains(needle), "{args:?}: {needle:?} not in {line}");
    }
    assert!(
        lines(&out.stdout).is_empty(),
        "{args:?}: stdout {:?}",
        text(&out.stdout)
    );
    line
}

/// Every file below `dir`, relative.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

// ---- 1. argument errors exit 2 ----------------------------------------------

#[test]
fn an_invalid_level_is_a_usage_error_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--level",
        "00",
        "--data-dir",
        "d",
        "--source",
        "dev",
    ];
    let out = run(dir.path(), &args);
    assert_bad_input(&out, &args, &["--level", "\"00\"", "01, 03, 11, 13 or 33"]);
    // Refused before the data directory is created.
    assert!(
        files_below(dir.path()).is_empty(),
        "{:?}",
        files_below(dir.path())
    );

    // The same level through provision and run: the same code.
    for args in [
        vec!["provision", "--sim", "--level", "zz", "--journal", "j.db"],
        vec!["run", "--reader", "R", "--level", "00", "--journal", "j.db"],
    ] {
        let out = run(dir.path(), &args);
        assert_bad_input(&out, &args, &["security level", "01, 03, 11, 13 or 33"]);
    }
    assert!(
        files_below(dir.path()).is_empty(),
        "{:?}",
        files_below(dir.path())
    );

    // clap's own usage errors use the same code.
    let out = run(dir.path(), &["demo", "--fobs", "many"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
}

// ---- 2. config errors are one line with file, key and position --------------

#[test]
fn an_unknown_or_mistyped_config_key_is_one_line_naming_file_key_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("station.toml");
    let shown = config.display().to_string();
    for (toml, needles) in [
        (
            "station_id = \"LINE-04\"\nsecurity_level = \"01\"\nfoo = 1\n",
            vec!["unknown field `foo`", "(key `foo` at line 3 column 1)"],
        ),
        (
            "station_id = \"LINE-04\"\nverify = \"yes\"\n",
            vec![
                "invalid type: string \"yes\", expected a boolean",
                "(key `verify` at line 2 column 10)",
            ],
        ),
        (
            "[source]\nkind = \"container\"\ndri = \"/pool\"\n",
            vec![
                "unknown field `dri`",
                "(key `source.dri` at line 3 column 1)",
            ],
        ),
    ] {
        std::fs::write(&config, toml).unwrap();
        for command in ["provision", "run"] {
            let args = [command, "--sim", "--config", shown.as_str()];
            let out = run(dir.path(), &args);
            let line = assert_bad_input(&out, &args, &needles);
            assert!(
                line.starts_with(&format!("error: config {shown}: ")),
                "{line}"
            );
        }
    }
    // Nothing but the config file was created.
    assert_eq!(files_below(dir.path()), vec![PathBuf::from("station.toml")]);
}

// ---- 3. provision without a card source leaves no file -----------------------

#[test]
fn provision_without_reader_or_sim_exits_2_and_leaves_no_journal() {
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    kf_source::fixtures::generate(&pool, 1, Some(5)).unwrap();
    let run_dir = work.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let pool_arg = pool.display().to_string();
    let before = files_below(&pool);
    for args in [
        vec!["provision", "--journal", "j.db", "--audit-file", "a.jsonl"],
        vec![
            "provision",
            "--source",
            "container",
            "--source-dir",
            pool_arg.as_str(),
            "--journal",
            "j.db",
        ],
        vec!["run", "--journal", "j.db"],
    ] {
        let out = run(&run_dir, &args);
        assert_bad_input(&out, &args, &["reader"]);
        assert!(
            !run_dir.join("j.db").exists(),
            "{args:?} created the journal"
        );
        assert!(
            files_below(&run_dir).is_empty(),
            "{args:?} left {:?}",
            files_below(&run_dir)
        );
        // No package was claimed (no `.used/` marker).
        assert_eq!(files_below(&pool), before, "{args:?}");
    }
}

// ---- 5. a closed stdout pipe ends the process quietly -------------------------

#[cfg(unix)]
/// Runs with stdout a pipe whose read end is already closed, so the first
/// write fails with EPIPE whatever the timing. The pipe is the stdin of a
/// `true` that has exited: its only reader is gone (std closes the parent's
/// copy at spawn; `std::io::pipe` is newer than the MSRV).
fn run_into_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    let mut sink = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = sink.stdin.take().unwrap();
    sink.wait().unwrap();
    station_in(dir)
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_exits_141_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A journal with records to list.
    let out = run(dir.path(), &["provision", "--sim", "--journal", "j.db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for args in [
        vec!["audit", "list", "--journal", "j.db"],
        vec!["audit", "show", "--journal", "j.db", "1"],
        vec!["audit", "export", "--journal", "j.db", "--format", "json"],
        vec!["audit", "export", "--journal", "j.db", "--format", "csv"],
        vec!["audit", "verify", "--journal", "j.db"],
        vec!["provision", "--sim", "--journal", "j.db", "--json"],
        vec!["fixtures", "generate", "pool", "--count", "1"],
        vec!["self-test"],
    ] {
        let out = run_into_closed_pipe(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(BROKEN_PIPE), "{args:?}: {stderr}");
    }
    // readers needs pcscd; with or without it, never a panic.
    let out = run_into_closed_pipe(dir.path(), &["readers", "--json"]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "readers: {stderr}");
    assert!(
        matches!(out.status.code(), Some(BROKEN_PIPE) | Some(FAILED)),
        "readers: {:?} {stderr}",
        out.status
    );
    // The records provisioned before the pipe closed are all in the journal.
    let out = run(dir.path(), &["audit", "verify", "--journal", "j.db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_pipe_closed_after_the_first_line_exits_141_without_a_panic() {
    // `kf-station audit list | head -1` with more output than a pipe buffers.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["demo", "--fobs", "40", "--source", "dev", "--data-dir", "d"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut child = station_in(dir.path())
        .args([
            "audit",
            "export",
            "--journal",
            "d/journal.db",
            "--format",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with(b"seq,"), "{}", text(&first));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The export (about 270 kB) outruns any pipe buffer, so a write fails.
    assert_eq!(out.status.code(), Some(BROKEN_PIPE), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
}

// ---- 6. missing and corrupt files ---------------------------------------------

/// A fresh pool of one package in `work/pool`.
fn pool(work: &Path) -> (PathBuf, kf_source::fixtures::FixturePool, PathBuf) {
    let dir = work.join("pool");
    let fixtures = kf_source::fixtures::generate(&dir, 1, Some(9)).unwrap();
    let package = dir.join(fixtures.packages[0].dir_name());
    (dir, fixtures, package)
}

fn provision_container(pool: &Path) -> Vec<String> {
    [
        "provision",
        "--sim",
        "--source",
        "container",
        "--source-dir",
        pool.to_str().unwrap(),
        "--journal",
        "j.db",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Reads the file at `path`, lets `edit` change its bytes and writes them back.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    edit(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// `provision --sim` over a fresh one-package container pool, run in its own
/// folder after `damage(pool, package folder)` changed the pool.
struct ContainerRun {
    _work: tempfile::TempDir,
    run_dir: PathBuf,
    fixtures: kf_source::fixtures::FixturePool,
    args: Vec<String>,
    out: Output,
}

impl ContainerRun {
    fn after(damage: impl FnOnce(&Path, &Path)) -> ContainerRun {
        let work = tempfile::tempdir().unwrap();
        let (pool, fixtures, package) = pool(work.path());
        damage(&pool, &package);
        let run_dir = work.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let args = provision_container(&pool);
        let out = run(
            &run_dir,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        ContainerRun {
            _work: work,
            run_dir,
            fixtures,
            args,
            out,
        }
    }

    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

#[test]
fn missing_or_corrupt_shared_container_files_are_refused_with_exit_2() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &[&str]); 5] = [
        (
            "pool directory missing",
            |pool| std::fs::remove_dir_all(pool).unwrap(),
            &["ica_cert.der", "file is missing"],
        ),
        (
            "ICA certificate missing",
            |pool| std::fs::remove_file(pool.join("ica_cert.der")).unwrap(),
            &["ica_cert.der", "file is missing"],
        ),
        (
            "ICA certificate truncated",
            |pool| {
                rewrite(&pool.join("ica_cert.der"), |der| {
                    der.truncate(der.len() / 2)
                })
            },
            &["ica_cert.der", "certificate is invalid"],
        ),
        (
            "root certificate with a wrong DER tag",
            |pool| rewrite(&pool.join("cms_root_cert.der"), |der| der[0] = 0x31),
            &["cms_root_cert.der", "certificate is invalid"],
        ),
        (
            "root certificate in PEM instead of DER",
            |pool| {
                let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n";
                std::fs::write(pool.join("cms_root_cert.der"), pem).unwrap();
            },
            &["cms_root_cert.der", "certificate is invalid"],
        ),
    ];
    for (name, damage, needles) in cases {
        let r = ContainerRun::after(|pool, _| damage(pool));
        let (run_dir, args, out) = (&r.run_dir, r.args(), &r.out);
        let line = assert_bad_input(out, &args, needles);
        assert!(!line.is_empty(), "{name}");
        assert!(!run_dir.join("j.db").exists(), "{name}: journal created");
        assert_clean(run_dir, &args, &secrets(Some(&r.fixtures)));
    }
}

#[test]
fn a_missing_or_corrupt_package_file_fails_the_fob_with_one_line_and_exit_1() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &[&str]); 5] = [
        (
            "device certificate missing",
            |pkg| std::fs::remove_file(pkg.join("keyfob_public.der")).unwrap(),
            &["keyfob_public.der", "file is missing"],
        ),
        (
            "private key truncated",
            |pkg| {
                rewrite(&pkg.join("keyfob_private.der"), |der| {
                    der.truncate(der.len() - 20)
                })
            },
            &["keyfob_private.der", "private key is invalid"],
        ),
        (
            "private key with a wrong DER tag",
            |pkg| rewrite(&pkg.join("keyfob_private.der"), |der| der[0] = 0x04),
            &["keyfob_private.der", "private key is invalid"],
        ),
        (
            "device certificate truncated",
            |pkg| rewrite(&pkg.join("keyfob_public.der"), |der| der.truncate(100)),
            &["keyfob_public.der", "certificate is invalid"],
        ),
        (
            "IRK not base64",
            |pkg| std::fs::write(pkg.join("irk_keyfob.key"), "not base64!").unwrap(),
            &["irk_keyfob.key", "not strict Base64", "rule"],
        ),
    ];
    for (name, damage, needles) in cases {
        let r = ContainerRun::after(|_, package| damage(package));
        let (run_dir, args, out) = (&r.run_dir, r.args(), &r.out);
        assert_eq!(
            out.status.code(),
            Some(FAILED),
            "{name}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        let stdout = lines(&out.stdout);
        assert_eq!(stdout.len(), 1, "{name}: {stdout:?}");
        assert!(stdout[0].starts_with("FAIL "), "{name}: {}", stdout[0]);
        assert!(stdout[0].contains("at FetchKeys"), "{name}: {}", stdout[0]);
        for needle in needles {
            assert!(
                stdout[0].contains(needle),
                "{name}: {needle:?} not in {}",
                stdout[0]
            );
        }
        assert!(
            lines(&out.stderr).is_empty(),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"), "{name}");
        assert_clean(run_dir, &args, &secrets(Some(&r.fixtures)));
    }
}

#[test]
fn a_missing_config_file_is_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/station.toml");
    let shown = missing.display().to_string();
    for command in ["provision", "run"] {
        let args = [command, "--sim", "--config", shown.as_str()];
        let out = run(dir.path(), &args);
        assert_bad_input(
            &out,
            &args,
            &[&format!("config {shown}: cannot read"), "file is missing"],
        );
        assert_clean(dir.path(), &args, &secrets(None));
    }
    assert!(files_below(dir.path()).is_empty());
}

#[test]
fn a_missing_or_corrupt_journal_is_one_line_exit_2_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["provision", "--sim", "--journal", "good.db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let good = std::fs::read(dir.path().join("good.db")).unwrap();
    assert!(good.starts_with(b"SQLite format 3\0"));
    std::fs::write(dir.path().join("truncated.db"), &good[..good.len() / 3]).unwrap();
    let mut wrong_magic = good.clone();
    wrong_magic[..16].copy_from_slice(b"NOT A DATABASE!\0");
    std::fs::write(dir.path().join("magic.db"), &wrong_magic).unwrap();
    std::fs::write(dir.path().join("text.db"), "station journal\n").unwrap();

    for journal in ["missing.db", "truncated.db", "magic.db", "text.db"] {
        for sub in [
            vec!["list"],
            vec!["show", "1"],
            vec!["export", "--format", "csv"],
            vec!["verify"],
        ] {
            let mut args = vec!["audit"];
            args.extend(&sub);
            args.extend(["--journal", journal]);
            let out = run(dir.path(), &args);
            assert_bad_input(&out, &args, &[journal]);
            assert_clean(dir.path(), &args, &secrets(None));
        }
    }
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn fixtures_into_an_unusable_path_is_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    let out = run(
        dir.path(),
        &["fixtures", "generate", "pool", "--count", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for target in ["a-file", "pool"] {
        let args = ["fixtures", "generate", target, "--count", "1"];
        let out = run(dir.path(), &args);
        assert_bad_input(&out, &args, &[target]);
        assert_clean(dir.path(), &args, &secrets(None));
    }
}
