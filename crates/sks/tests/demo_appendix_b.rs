//! Appendix B end to end (methods 1-14, 52, 70-74, 100, 103 through the demo) over the
//! in-memory engine, the byte-level wire loopback, and SQLite with a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use sks_core::api::SksApi;
use sks_core::wire::WireLoopback;
use sks_core::Sks;
use sks_sqlite::SqliteStorage;

#[test]
fn appendix_b_demo_in_memory() {
    let mut sks = common::memory_sks();
    let rep = sks_issuer::demo::run(&mut sks).unwrap();
    assert_eq!(rep.steps.len(), 5);
    assert_eq!(common::keys(&mut sks), vec![rep.signing_key, rep.hotp_key]);
}

#[test]
fn appendix_b_demo_through_the_wire_codec() {
    let mut client = WireLoopback {
        inner: common::memory_sks(),
    };
    sks_issuer::demo::run(&mut client).unwrap();
}

#[test]
fn appendix_b_demo_on_sqlite_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sks.db");
    let clock = common::clock();
    let rep = {
        let mut sks = Sks::initialize(
            SqliteStorage::open(&path).unwrap(),
            common::config(clock.clone()),
        )
        .unwrap();
        sks_issuer::demo::run(&mut sks).unwrap()
    };
    let mut sks = Sks::open(SqliteStorage::open(&path).unwrap(), common::config(clock)).unwrap();
    assert_eq!(common::keys(&mut sks), vec![rep.signing_key, rep.hotp_key]);
    common::sign(&mut sks, rep.signing_key, sks_issuer::demo::DEMO_PIN).unwrap();
    let _ = sks
        .call(sks_core::Request::GetDeviceInfo(
            sks_core::api::req::GetDeviceInfo {},
        ))
        .unwrap();
}
