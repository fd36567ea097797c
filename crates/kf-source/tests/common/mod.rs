//! What the container pool tests share.
#![allow(dead_code)]

use std::path::PathBuf;

/// A pool of `count` generated packages in a temporary directory: the
/// directory (removed on drop), the pool in it, its package names sorted.
pub fn pool(count: usize, seed: u64) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    let names = kf_source::fixtures::generate(&pool, count, Some(seed))
        .unwrap()
        .dir_names();
    (dir, pool, names)
}

/// The source has nothing left for the fob `uid`.
#[track_caller]
pub fn assert_exhausted(source: &mut impl kf_source::ProvisioningSource, uid: &[u8]) {
    let result = source.fetch(uid);
    assert!(
        matches!(result, Err(kf_source::SourceError::PoolExhausted { .. })),
        "{:?}",
        result.map(|input| input.origin)
    );
}
