#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Files the KLMS reads and writes: `serve --config` accepts regular files of
//! bounded size only, a key file that holds no key says so, `pki init` keeps
//! station names inside its directory and creates keys 0600 in 0700.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kf_klms() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kf-klms"));
    c.env_remove("KF_KLMS_MASTER_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for the child to exit within `limit` (killed and reported otherwise).
fn finish_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `serve` with `config`, which must refuse to start; returns its stderr.
fn serve_refused(config: &Path) -> String {
    let child = kf_klms()
        .args(["serve", "--config", config.to_str().unwrap()])
        .args(["--bind", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the server started: {err}");
    err
}

/// The config written by `pki init` (station "station-01") under `dir`:
/// its path and text.
fn initial_config(dir: &Path) -> (PathBuf, String) {
    let pki = dir.join("pki");
    assert!(pki_init(&pki, &["station-01"]).status.success());
    let toml = pki.join("klms.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    (toml, text)
}

/// Writes `text` with `from` replaced by `to` to `toml`, then [`serve_refused`].
fn serve_edited(toml: &Path, text: &str, from: &str, to: &str) -> String {
    std::fs::write(toml, text.replace(from, to)).unwrap();
    serve_refused(toml)
}

fn pki_init(dir: &Path, stations: &[&str]) -> Output {
    let mut c = kf_klms();
    c.args(["pki", "init", dir.to_str().unwrap()]);
    for s in stations {
        c.args(["--station", s]);
    }
    c.output().unwrap()
}

#[test]
fn config_must_be_a_bounded_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = serve_refused(Path::new("/dev/zero"));
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );

    let fifo = dir.path().join("klms.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = serve_refused(&fifo);
    assert!(
        err.contains("klms.toml") && err.contains("not a regular file"),
        "{err}"
    );

    let err = serve_refused(dir.path());
    assert!(err.contains("a directory"), "{err}");

    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 100 * 1024]).unwrap();
    let err = serve_refused(&big);
    assert!(
        err.contains("big.toml") && err.contains("limit of 65536 bytes"),
        "{err}"
    );
}

#[test]
fn key_file_holding_a_certificate_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, text) = initial_config(dir.path());
    let err = serve_edited(
        &toml,
        &text,
        "server_key = \"server.key\"",
        "server_key = \"server.pem\"",
    );
    assert!(
        err.contains("server key: no private key found in PEM (found: certificate)"),
        "{err}"
    );
}

#[test]
fn limits_and_station_names_of_the_config_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, text) = initial_config(dir.path());
    assert!(text.contains("[limits]"), "{text}");
    for (from, to, expected) in [
        (
            "idle_timeout_ms = 60000",
            "idle_timeout_ms = 0",
            "limits.idle_timeout_ms",
        ),
        (
            "idle_timeout_ms = 60000",
            "send_timeout_ms = 5",
            "unknown field `send_timeout_ms`",
        ),
        (
            "\"station-01\"",
            "\"station-01\", \"../x\"",
            "allowed_stations: identifier has character",
        ),
    ] {
        let err = serve_edited(&toml, &text, from, to);
        assert!(err.contains(expected), "{to}: {err}");
    }
}

#[test]
fn pki_init_refuses_station_names_that_leave_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("a").join("b");
    for bad in ["../../x", "/tmp/x", "x/y", "", ".hidden"] {
        let out = pki_init(&pki, &[bad]);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--station") && err.contains("identifier"),
            "{err}"
        );
    }
    assert!(!dir.path().join("x.key").exists());
    assert!(!pki.exists(), "nothing is written for a refused name");
}

#[cfg(unix)]
#[test]
fn pki_keys_are_0600_in_a_0700_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = pki_init(&pki, &["station-01"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |name: &str| {
        std::fs::metadata(pki.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        std::fs::metadata(&pki).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for secret in [
        "ca.key",
        "server.key",
        "station-01.key",
        "fob-ica.key",
        "master-key.hex",
    ] {
        assert_eq!(mode(secret), 0o600, "{secret}");
    }
    for public in ["ca.pem", "server.pem", "station-01.pem", "klms.toml"] {
        assert_eq!(mode(public), 0o644, "{public}");
    }
    // No temporary file is left behind.
    for entry in std::fs::read_dir(&pki).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_string_lossy().starts_with('.'), "{name:?}");
    }
}
