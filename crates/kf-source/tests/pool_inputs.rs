//! A hostile package pool: FIFOs, symbolic links and oversize files in place
//! of the shared certificates, a claim marker or a package file are refused
//! within seconds with an error naming the file, and nothing is read from
//! outside the pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use kf_source::container::{ContainerSource, ICA_CERT_FILE, IRK_FILE, IRK_MAX_BYTES};
use kf_source::fixtures;
use kf_source::{CardKeys, ProvisioningSource};

/// A blocked open fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

fn within_limit<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("the pool blocked for more than {LIMIT:?}"))
}

/// A pool of `count` fixture packages; returns it and its first package name.
fn pool(count: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut names = fixtures::generate(dir.path(), count, Some(7))
        .unwrap()
        .dir_names();
    (dir, names.remove(0))
}

/// The error `err` names the file at `path` and says `what` about it.
fn assert_names(err: &str, path: &Path, what: impl AsRef<str>) {
    assert!(
        err.contains(&path.display().to_string()) && err.contains(what.as_ref()),
        "{err}"
    );
}

fn fetch_error(pool: PathBuf) -> String {
    within_limit(move || {
        let mut source = ContainerSource::open(&pool, CardKeys::dev_sample().unwrap()).unwrap();
        source.fetch(&[1, 2, 3, 4]).unwrap_err().to_string()
    })
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success());
}

/// With a FIFO at `fifo` (in place of the file there, if any), fetching from
/// `pool` fails naming it.
#[cfg(unix)]
fn assert_fetch_refuses_fifo(pool: &Path, fifo: &Path) {
    mkfifo(fifo);
    let err = fetch_error(pool.to_path_buf());
    assert_names(&err, fifo, "FIFO");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_ica_certificate_is_refused() {
    let (dir, _) = pool(1);
    let ica = dir.path().join(ICA_CERT_FILE);
    mkfifo(&ica);
    let pool = dir.path().to_path_buf();
    let err = within_limit(move || {
        ContainerSource::open(&pool, CardKeys::dev_sample().unwrap())
            .err()
            .unwrap()
            .to_string()
    });
    assert_names(&err, &ica, "FIFO");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_a_claim_marker_is_refused() {
    let (dir, first) = pool(2);
    let used = dir.path().join(".used");
    std::fs::create_dir(&used).unwrap();
    assert_fetch_refuses_fifo(dir.path(), &used.join(&first));
}

#[cfg(unix)]
#[test]
fn a_fifo_inside_a_package_is_refused() {
    let (dir, first) = pool(1);
    assert_fetch_refuses_fifo(dir.path(), &dir.path().join(&first).join(IRK_FILE));
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_inside_a_package_is_not_followed_out_of_the_pool() {
    let (dir, first) = pool(1);
    let outside = tempfile::tempdir().unwrap();
    let (other, other_first) = pool(1);
    // A valid IRK file outside the pool, linked into the package.
    let target = outside.path().join("irk");
    std::fs::copy(other.path().join(&other_first).join(IRK_FILE), &target).unwrap();
    let irk = dir.path().join(&first).join(IRK_FILE);
    std::fs::remove_file(&irk).unwrap();
    std::os::unix::fs::symlink(&target, &irk).unwrap();
    let err = fetch_error(dir.path().to_path_buf());
    assert_names(&err, &irk, "symbolic link");
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_to_a_package_outside_the_pool_is_not_a_package() {
    let (dir, first) = pool(1);
    let (other, other_first) = pool(1);
    // Replace the only package by a link to a valid package elsewhere.
    std::fs::remove_dir_all(dir.path().join(&first)).unwrap();
    let link = dir.path().join(&other_first);
    std::os::unix::fs::symlink(other.path().join(&other_first), &link).unwrap();
    let err = fetch_error(dir.path().to_path_buf());
    assert!(err.contains("no unused package left"), "{err}");
    let source = ContainerSource::open(dir.path(), CardKeys::dev_sample().unwrap()).unwrap();
    let err = source.load_package(&other_first).unwrap_err().to_string();
    assert_names(&err, &link, "symbolic link");
}

#[test]
fn an_oversize_package_file_names_the_limit() {
    let (dir, first) = pool(1);
    let irk = dir.path().join(&first).join(IRK_FILE);
    std::fs::write(&irk, vec![b'A'; IRK_MAX_BYTES as usize + 1]).unwrap();
    let err = fetch_error(dir.path().to_path_buf());
    assert_names(&err, &irk, format!("limit of {IRK_MAX_BYTES} bytes"));
}
