//! Credential database (§2.5): SQLite restart with an open session, durable PIN/PUK counters,
//! storage failures (ERROR_STORAGE, memory rolled back to the durable state), and one atomic
//! batch per closeProvisioningSession.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, SksApi};
use sks_core::model::RecordId;
use sks_core::storage::{Change, StorageError};
use sks_core::{ErrorCode, MemoryStorage, Sks, Storage};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use sks_sqlite::SqliteStorage;
use std::collections::BTreeMap;

#[test]
fn open_session_survives_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sks.db");
    let clock = clock();
    let ident = identity();
    let mut iss = ident.session("https://issuer.example.com/x", "S1");
    let (ph, pin) = {
        let mut s =
            Sks::initialize(SqliteStorage::open(&path).unwrap(), config(clock.clone())).unwrap();
        let ph = open(&mut s, &mut iss);
        let pin = s
            .create_pin_policy(iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap())
            .unwrap()
            .pin_policy_handle;
        (ph, pin)
    };
    let mut s = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock)).unwrap();
    assert_eq!(session_count(&mut s, true), 1);
    let mut spec = KeyEntrySpec::new("Key.1");
    spec.pin_policy = Some((pin, "PIN.1".into(), true));
    spec.pin_value = b"1234".to_vec();
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    sign(&mut s, k.handle, "1234").unwrap();
    let _ = ph;
}

#[test]
fn pin_and_puk_error_counters_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sks.db");
    let clock = clock();
    let k = {
        let mut s =
            Sks::initialize(SqliteStorage::open(&path).unwrap(), config(clock.clone())).unwrap();
        let k = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
        assert!(sign(&mut s, k.handle, "0000").is_err());
        assert!(s
            .unlock_key(req::UnlockKey {
                key_handle: k.handle,
                authorization: sks_core::secret::Secret::from("0")
            })
            .is_err());
        k
    };
    let mut s = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock.clone())).unwrap();
    let p = protection(&mut s, k.handle);
    assert_eq!((p.pin_error_count, p.puk_error_count), (1, 1));
    assert!(sign(&mut s, k.handle, "0000").is_err());
    assert!(sign(&mut s, k.handle, "0000").is_err());
    drop(s);
    let mut s = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock)).unwrap();
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "still locked after restart"
    );
}

#[test]
fn storage_failure_returns_error_storage_and_keeps_durable_state() {
    let mut s = Sks::initialize(MemoryStorage::new(), config(clock())).unwrap();
    let ident = identity();
    let mut iss = ident.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    s.storage_mut().fail_after = Some(0);
    assert_eq!(
        code(close(&mut s, &mut iss)),
        ErrorCodeOf(ErrorCode::Storage)
    );
    assert!(keys(&mut s).is_empty(), "the close did not happen");
    assert_eq!(session_count(&mut s, true), 1, "the session is still open");
    // A failed PIN counter write is reported, not silently lost.
    let mut s = Sks::initialize(MemoryStorage::new(), config(clock())).unwrap();
    let pk = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    s.storage_mut().fail_after = Some(0);
    assert_eq!(
        code(sign(&mut s, pk.handle, "0000")),
        ErrorCodeOf(ErrorCode::Storage)
    );
    assert_eq!(protection(&mut s, pk.handle).pin_error_count, 0);
    let _ = k;
}

/// Records the batches applied.
#[derive(Default)]
struct Counting {
    inner: MemoryStorage,
    batches: Vec<usize>,
}

impl Storage for Counting {
    fn load(&mut self) -> Result<BTreeMap<RecordId, sks_core::secret::Secret>, StorageError> {
        self.inner.load()
    }
    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
        self.batches.push(batch.len());
        self.inner.apply(batch)
    }
}

#[test]
fn close_with_post_operations_is_one_atomic_batch() {
    let mut s = Sks::initialize(Counting::default(), config(clock())).unwrap();
    let ident = identity();
    let target = pin_key_session(&mut s, &ident, PinPolicy::new("PIN.1"), "1234");
    let mut iss = ident.session("https://issuer.example.com/x", "S2");
    open(&mut s, &mut iss);
    let new = key(&mut s, &mut iss, &KeyEntrySpec::new("New"));
    s.post_update_key(
        iss.post_update_key(new.handle, &new.ee, target.handle, &target.ee)
            .unwrap(),
    )
    .unwrap();
    let before = s.storage_mut().batches.len();
    close(&mut s, &mut iss).unwrap();
    let batches = &s.storage_mut().batches[before..];
    assert_eq!(batches.len(), 1, "one batch for the whole commit");
    // New key record moved to the target handle, old new-key record deleted, PIN/PUK moved,
    // old session deleted, new session closed.
    assert!(batches[0] >= 5, "batch has {} changes", batches[0]);
    // Read-only calls write nothing.
    let n = s.storage_mut().batches.len();
    let _ = s.get_device_info(req::GetDeviceInfo {}).unwrap();
    let _ = keys(&mut s);
    assert_eq!(s.storage_mut().batches.len(), n);
}

#[test]
fn a_second_process_cannot_open_a_database_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sks.db");
    let first = Sks::initialize(SqliteStorage::open(&path).unwrap(), config(clock())).unwrap();
    assert!(SqliteStorage::open(&path)
        .and_then(|mut s| s.load().map(|_| ()))
        .is_err());
    drop(first);
    Sks::open(SqliteStorage::open(&path).unwrap(), config(clock())).unwrap();
}
