//! The claim ledger: concurrent sources sharing one pool never hand out a package twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use kf_source::{CardKeys, ContainerSource, ProvisioningSource, SourceError};

#[test]
fn concurrent_stations_never_share_a_package() {
    let dir = tempfile::tempdir().unwrap();
    kf_source::fixtures::generate(dir.path(), 8, Some(77)).unwrap();
    let handles: Vec<_> = (0u8..4)
        .map(|station| {
            let pool = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut source =
                    ContainerSource::open(pool, CardKeys::dev_sample().unwrap()).unwrap();
                let mut got = Vec::new();
                for fob in 0u8.. {
                    match source.fetch(&[station, fob, 0, 0, 0, 0, 0]) {
                        Ok(input) => got.push(input.origin),
                        Err(SourceError::PoolExhausted { .. }) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                got
            })
        })
        .collect();
    let all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 8);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 8);
    // Every claim is on disk with its UID.
    let markers = std::fs::read_dir(dir.path().join(".used")).unwrap().count();
    assert_eq!(markers, 8);
}

#[test]
fn deleting_a_marker_releases_the_package() {
    let dir = tempfile::tempdir().unwrap();
    kf_source::fixtures::generate(dir.path(), 1, Some(78)).unwrap();
    let mut source = ContainerSource::open(dir.path(), CardKeys::dev_sample().unwrap()).unwrap();
    let first = source.fetch(&[1; 10]).unwrap().origin;
    let marker = dir.path().join(".used").join(&first);
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(text.contains("uid=01010101010101010101"), "{text}");
    common::assert_exhausted(&mut source, &[2; 10]);
    std::fs::remove_file(marker).unwrap();
    assert_eq!(source.fetch(&[2; 10]).unwrap().origin, first);
}
