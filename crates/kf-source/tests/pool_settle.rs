//! What a container pool does with a package once its fob's outcome is
//! durable: done (moved out, key wiped), released, kept for the fob, rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::pool;
use kf_source::container::{ContainerSource, PRIVATE_KEY_FILE};
use kf_source::{CardKeys, PoolOptions, ProvisioningSource, Settlement, SourceError};

const UID_A: [u8; 7] = [0x04, 1, 2, 3, 4, 5, 6];
const UID_B: [u8; 7] = [0x04, 9, 9, 9, 9, 9, 9];

fn open(pool: &Path, options: &PoolOptions) -> ContainerSource {
    ContainerSource::open_with(pool, CardKeys::dev_sample().unwrap(), options).unwrap()
}

fn origin(source: &mut ContainerSource, uid: &[u8]) -> String {
    source.fetch(uid).unwrap().origin
}

#[test]
fn a_done_package_leaves_the_pool_with_its_key_wiped_and_is_not_claimed_again() {
    let (dir, pool, names) = pool(2, 41);
    let key_path = pool.join(&names[0]).join(PRIVATE_KEY_FILE);
    let key_len = std::fs::metadata(&key_path).unwrap().len();
    // A second hard link shows what happened to the file's content.
    let witness = dir.path().join("witness");
    std::fs::hard_link(&key_path, &witness).unwrap();

    let mut source = open(&pool, &PoolOptions::default());
    assert_eq!(source.done_dir(), pool.join("done"));
    assert_eq!(origin(&mut source, &UID_A), names[0]);
    source.settle(&names[0], Settlement::Done).unwrap();

    let done = pool.join("done").join(&names[0]);
    assert!(!pool.join(&names[0]).exists(), "still in the pool");
    assert!(done.join("FESN.txt").is_file());
    assert!(done.join("irk_keyfob.key").is_file());
    assert!(!done.join(PRIVATE_KEY_FILE).exists(), "key file kept");
    assert_eq!(
        std::fs::read(&witness).unwrap(),
        vec![0u8; usize::try_from(key_len).unwrap()],
        "key file not overwritten with zeros of the same length"
    );
    assert!(
        pool.join(".used").join(&names[0]).is_file(),
        "claim marker gone"
    );
    // `done/` is not a package, and the finished package is not counted.
    assert_eq!(source.remaining().unwrap(), 1);

    // The same fob presented again gets no new package.
    let err = source.fetch(&UID_A).unwrap_err();
    assert!(
        matches!(&err, SourceError::FobAlreadyDone { package, .. } if package == &names[0]),
        "{err:?}"
    );
    assert!(err.to_string().contains(&names[0]));
    // Another fob gets the next package; reopening the pool changes nothing.
    let mut source = open(&pool, &PoolOptions::default());
    assert_eq!(origin(&mut source, &UID_B), names[1]);
}

#[test]
fn keep_packages_keeps_the_key_file_and_a_done_dir_elsewhere_is_used() {
    let (dir, pool, names) = pool(1, 42);
    let key = std::fs::read(pool.join(&names[0]).join(PRIVATE_KEY_FILE)).unwrap();
    let options = PoolOptions {
        done_dir: Some(dir.path().join("finished")),
        keep_packages: true,
        ..PoolOptions::default()
    };
    let mut source = open(&pool, &options);
    assert_eq!(origin(&mut source, &UID_A), names[0]);
    source.settle(&names[0], Settlement::Done).unwrap();
    let moved = dir.path().join("finished").join(&names[0]);
    assert_eq!(std::fs::read(moved.join(PRIVATE_KEY_FILE)).unwrap(), key);
    assert!(!pool.join(&names[0]).exists());
    assert!(!pool.join("done").exists());

    // Without keep, opening the pool wipes key files left in the done
    // directory (a station stopped between the move and the wipe).
    let witness = dir.path().join("witness");
    std::fs::hard_link(moved.join(PRIVATE_KEY_FILE), &witness).unwrap();
    let wiping = PoolOptions {
        keep_packages: false,
        ..options
    };
    let _source = open(&pool, &wiping);
    assert!(!moved.join(PRIVATE_KEY_FILE).exists());
    assert_eq!(std::fs::read(&witness).unwrap(), vec![0u8; key.len()]);
}

#[test]
fn a_name_already_in_the_done_directory_is_not_replaced() {
    let (_dir, pool, names) = pool(1, 43);
    std::fs::create_dir_all(pool.join("done").join(&names[0])).unwrap();
    std::fs::write(pool.join("done").join(&names[0]).join("x"), b"earlier").unwrap();
    let mut source = open(&pool, &PoolOptions::default());
    assert_eq!(origin(&mut source, &UID_A), names[0]);
    let err = source.settle(&names[0], Settlement::Done).unwrap_err();
    assert!(matches!(err, SourceError::AlreadyDone { .. }), "{err:?}");
    assert!(pool.join(&names[0]).join(PRIVATE_KEY_FILE).is_file());
    assert_eq!(
        std::fs::read(pool.join("done").join(&names[0]).join("x")).unwrap(),
        b"earlier"
    );
}

#[test]
fn a_failed_fob_releases_keeps_or_rejects_its_package() {
    let (_dir, pool, names) = pool(3, 44);
    let mut source = open(&pool, &PoolOptions::default());

    // Release: nothing reached the fob; the package stays and any fob may take it.
    assert_eq!(origin(&mut source, &UID_A), names[0]);
    source.settle(&names[0], Settlement::Release).unwrap();
    assert!(pool.join(&names[0]).join(PRIVATE_KEY_FILE).is_file());
    assert!(!pool.join(".used").join(&names[0]).exists());
    assert_eq!(origin(&mut source, &UID_B), names[0]);

    // Keep: the package stays bound to the fob that may hold part of it.
    source.settle(&names[0], Settlement::Keep).unwrap();
    assert_eq!(origin(&mut source, &UID_A), names[1]);
    assert_eq!(origin(&mut source, &UID_B), names[0]);

    // Reject: never handed out again, not even to its fob.
    source.settle(&names[1], Settlement::Reject).unwrap();
    assert_eq!(origin(&mut source, &UID_A), names[2]);
    // Releasing a rejected package does not revive it.
    source.settle(&names[1], Settlement::Release).unwrap();
    assert!(pool.join(".used").join(&names[1]).is_file());
    assert_eq!(source.remaining().unwrap(), 0);
}
