//! Packages of fobs that passed leave the container pool (moved to `done/`,
//! private-key file wiped), and a package whose fob passed is never used
//! again, even when the station stopped before moving it.
// They run the simulator (`provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{assert_no_scp03_command, pool, provision_container};

use kf_source::container::PRIVATE_KEY_FILE;
use serde_json::Value;

fn provision(pool: &Path, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let (code, outcome, _) = provision_container(pool, dir, extra);
    (code, outcome)
}

fn assert_refused_at_fetch_keys(outcome: &Value, message: &str) {
    assert_eq!(outcome["result"], "FAIL", "{outcome:#}");
    assert_eq!(
        outcome["audit"]["stage_reached"], "FETCH_KEYS",
        "{outcome:#}"
    );
    let error = outcome["error"].as_str().unwrap();
    assert!(error.contains(message), "{error}");
    assert_no_scp03_command(outcome);
}

/// Each `provision --sim` is a new virtual fob with its own random UID (the
/// same fob presented again is covered in kf-source's `pool_settle` tests).
#[test]
fn a_passed_fobs_package_moves_to_done_without_its_key_and_is_not_served_again() {
    let work = tempfile::tempdir().unwrap();
    let (pool, names) = pool(work.path(), 2, 51);
    let (code, outcome) = provision(&pool, work.path(), &[]);
    assert_eq!(code, 0, "{outcome:#}");
    assert_eq!(outcome["origin"], names[0].as_str());

    let done = pool.join("done").join(&names[0]);
    assert!(!pool.join(&names[0]).exists(), "package still in the pool");
    assert!(
        done.join("irk_keyfob.key").is_file(),
        "package not in done/"
    );
    assert!(!done.join(PRIVATE_KEY_FILE).exists(), "private key kept");
    assert!(pool.join(".used").join(&names[0]).is_file());

    // The next fob gets the next package (`done/` is not a package).
    let (code, next) = provision(&pool, work.path(), &[]);
    assert_eq!(code, 0, "{next:#}");
    assert_eq!(next["origin"], names[1].as_str());
    assert!(!pool
        .join("done")
        .join(&names[1])
        .join(PRIVATE_KEY_FILE)
        .exists());

    // Then the pool is empty: refused before any SCP03 command.
    let (code, last) = provision(&pool, work.path(), &[]);
    assert_eq!(code, 1, "{last:#}");
    assert_refused_at_fetch_keys(&last, "no unused package");
    assert!(pool.join("done").join(&names[0]).is_dir());
}

#[test]
fn keep_packages_and_a_done_dir_elsewhere() {
    let work = tempfile::tempdir().unwrap();
    let (pool, names) = pool(work.path(), 1, 52);
    let key = std::fs::read(pool.join(&names[0]).join(PRIVATE_KEY_FILE)).unwrap();
    let finished = work.path().join("finished");
    let (code, outcome) = provision(
        &pool,
        work.path(),
        &["--keep-packages", "--done-dir", finished.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{outcome:#}");
    assert_eq!(
        std::fs::read(finished.join(&names[0]).join(PRIVATE_KEY_FILE)).unwrap(),
        key
    );
    assert!(!pool.join(&names[0]).exists());
    assert!(!pool.join("done").exists());
}

/// The station stops after the journal's SUCCESS record and before the
/// move: the package is still in the pool at the next start, but it is never
/// used again (its claim marker, then its IRK fingerprint).
#[test]
fn a_package_left_in_the_pool_after_a_success_is_not_reused() {
    let work = tempfile::tempdir().unwrap();
    let (pool, names) = pool(work.path(), 2, 53);
    let (code, outcome) = provision(&pool, work.path(), &["--keep-packages"]);
    assert_eq!(code, 0, "{outcome:#}");
    // Undo the move: the state after a stop between journal write and move.
    std::fs::rename(pool.join("done").join(&names[0]), pool.join(&names[0])).unwrap();

    // Its claim marker keeps it from any other fob.
    let (code, next) = provision(&pool, work.path(), &[]);
    assert_eq!(code, 0, "{next:#}");
    assert_eq!(next["origin"], names[1].as_str());

    // With the marker deleted by hand, a fob gets it, and its IRK is refused.
    std::fs::remove_file(pool.join(".used").join(&names[0])).unwrap();
    let (code, again) = provision(&pool, work.path(), &[]);
    assert_eq!(code, 1, "{again:#}");
    assert_refused_at_fetch_keys(&again, "already personalized");
    assert_eq!(again["origin"], names[0].as_str());
    let marker = std::fs::read_to_string(pool.join(".used").join(&names[0])).unwrap();
    assert!(marker.contains("status=rejected"), "{marker}");
    assert!(
        pool.join(&names[0]).is_dir(),
        "a refused package stays for the operator"
    );
}

/// `--manifest-key` / `--require-manifest`: a signed package passes, an
/// unsigned one is refused before any SCP03 command and marked rejected.
#[test]
fn required_manifests_are_verified_with_the_producer_key() {
    use kf_source::container::manifest::{sign_manifest, MANIFEST_FILE};
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    let work = tempfile::tempdir().unwrap();
    let (pool, names) = pool(work.path(), 2, 54);
    let producer = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let pem = p256::PublicKey::from(producer.verifying_key())
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let key_file = work.path().join("producer.pem");
    std::fs::write(&key_file, pem).unwrap();
    // Only the second package is signed; the first (handed out first) is not.
    let files = kf_source::container::PackageFiles::read(&pool.join(&names[1])).unwrap();
    std::fs::write(
        pool.join(&names[1]).join(MANIFEST_FILE),
        sign_manifest(&names[1], &files, &producer),
    )
    .unwrap();
    let flags = [
        "--manifest-key",
        key_file.to_str().unwrap(),
        "--require-manifest",
    ];
    let (code, unsigned) = provision(&pool, work.path(), &flags);
    assert_eq!(code, 1, "{unsigned:#}");
    assert_refused_at_fetch_keys(&unsigned, "manifest.json is missing");
    let (code, signed) = provision(&pool, work.path(), &flags);
    assert_eq!(code, 0, "{signed:#}");
    assert_eq!(signed["origin"], names[1].as_str());
    assert!(pool
        .join("done")
        .join(&names[1])
        .join(MANIFEST_FILE)
        .is_file());
}
