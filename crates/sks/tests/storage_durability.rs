//! Credential database (§2.5): SQLite restart with an open session, durable PIN/PUK counters,
//! storage failures (ERROR_STORAGE, memory rolled back to the durable state), and one atomic
//! batch per closeProvisioningSession.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, KeyUse, SksApi};
use sks_core::consts::{Protection, ALG_AES128_CBC, ALG_ECDH_RAW, ALG_HMAC_SHA256, ALG_RSA_1_5};
use sks_core::model::RecordId;
use sks_core::storage::{Change, Durability, StorageError};
use sks_core::{ErrorCode, MemoryStorage, Sks, Storage};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use sks_sqlite::SqliteStorage;
use std::collections::BTreeMap;

const AUTHORIZATION: ErrorCodeOf = ErrorCodeOf(ErrorCode::Authorization);

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
        assert_eq!(code(sign(&mut s, k.handle, "0000")), AUTHORIZATION);
        assert_eq!(code(unlock_key(&mut s, k.handle, "0")), AUTHORIZATION);
        k
    };
    let mut s = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock.clone())).unwrap();
    let p = protection(&mut s, k.handle);
    assert_eq!((p.pin_error_count, p.puk_error_count), (1, 1));
    assert_eq!(code(sign(&mut s, k.handle, "0000")), AUTHORIZATION);
    assert_eq!(code(sign(&mut s, k.handle, "0000")), AUTHORIZATION);
    drop(s);
    let mut s = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock)).unwrap();
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        AUTHORIZATION,
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

/// A store that refuses every write answers a right PIN as it answers a wrong one
/// (ERROR_STORAGE): it is no oracle for guessing PINs past the retry limit while the
/// error counter cannot be written.
#[test]
fn a_store_refusing_writes_tells_a_right_pin_from_no_wrong_one() {
    let mut s = Sks::initialize(MemoryStorage::new(), config(clock())).unwrap();
    let pk = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    for guess in ["0000", "1111", "2222", "3333", "4444", "1234"] {
        s.storage_mut().fail_after = Some(0);
        assert_eq!(
            code(sign(&mut s, pk.handle, guess)),
            ErrorCodeOf(ErrorCode::Storage),
            "PIN guess {guess}"
        );
    }
    s.storage_mut().fail_after = None;
    assert_eq!(protection(&mut s, pk.handle).pin_error_count, 0);
    // The store writes again: the right PIN signs, the counter is where it was.
    assert!(sign(&mut s, pk.handle, "1234").is_ok());
}

/// A closed session with a PIN-protected key, and an open second session holding a new key
/// queued by postUpdateKey to replace it.
fn key_and_pending_update(
    s: &mut impl SksApi,
    ident: &sks_issuer::IssuerIdentity,
) -> (Provisioned, sks_issuer::Issuer) {
    let target = pin_key_session(s, ident, PinPolicy::new("PIN.1"), "1234");
    let mut iss = ident.session("https://issuer.example.com/x", "S2");
    open(s, &mut iss);
    let new = key(s, &mut iss, &KeyEntrySpec::new("New"));
    s.post_update_key(
        iss.post_update_key(new.handle, &new.ee, target.handle, &target.ee)
            .unwrap(),
    )
    .unwrap();
    (target, iss)
}

#[test]
fn close_with_post_operations_is_one_atomic_batch() {
    let mut s = Sks::initialize(Recording::default(), config(clock())).unwrap();
    let ident = identity();
    let (_, mut iss) = key_and_pending_update(&mut s, &ident);
    let before = s.storage_mut().batches.len();
    close(&mut s, &mut iss).unwrap();
    let batches = &s.storage_mut().batches[before..];
    assert_eq!(batches.len(), 1, "one batch for the whole commit");
    // New key record moved to the target handle, old new-key record deleted, PIN/PUK moved,
    // old session deleted, new session closed.
    assert!(
        batches[0].len() >= 5,
        "batch has {} changes",
        batches[0].len()
    );
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
    let refused = SqliteStorage::open(&path)
        .and_then(|mut s| s.load().map(|_| ()))
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StorageError::Backend {
                backend: "sqlite",
                ..
            }
        ) && refused.to_string().contains("database is locked"),
        "{refused}"
    );
    drop(first);
    Sks::open(SqliteStorage::open(&path).unwrap(), config(clock())).unwrap();
}

/// Records the ids and the durability of every batch applied.
#[derive(Default)]
struct Recording {
    inner: MemoryStorage,
    batches: Vec<Vec<(RecordId, bool)>>,
    durability: Vec<Durability>,
}

impl Storage for Recording {
    fn load(&mut self) -> Result<BTreeMap<RecordId, sks_core::secret::Secret>, StorageError> {
        self.inner.load()
    }
    fn apply_with(
        &mut self,
        batch: &[Change<'_>],
        durability: Durability,
    ) -> Result<(), StorageError> {
        self.batches
            .push(batch.iter().map(|(id, d)| (*id, d.is_some())).collect());
        self.durability.push(durability);
        self.inner.apply(batch)
    }
}

/// An SKS whose storage is compared with the full encoding of its memory after every call:
/// the incremental writes must leave exactly what a full rewrite would.
struct Mirrored(Sks<Recording>);

impl Mirrored {
    fn check(&mut self) {
        let mut stored = self.0.storage_mut().load().unwrap();
        stored.remove(&(sks_core::model::kind::DEVICE, 0));
        let mut memory = self.0.core().state().to_records().unwrap();
        if self.0.core().state().next_handle == 0 {
            // A fresh database has no handle counter record yet (absent = 0).
            memory.remove(&(sks_core::model::kind::META, 0));
        }
        let stored: Vec<_> = stored
            .iter()
            .map(|(k, v)| (*k, v.expose().to_vec()))
            .collect();
        let memory: Vec<_> = memory
            .iter()
            .map(|(k, v)| (*k, v.expose().to_vec()))
            .collect();
        assert_eq!(stored, memory, "storage differs from memory");
    }
}

impl SksApi for Mirrored {
    fn call(
        &mut self,
        request: sks_core::Request,
    ) -> Result<sks_core::Response, sks_core::SksError> {
        let r = self.0.call(request);
        self.check();
        r
    }
}

#[test]
fn every_call_writes_only_what_it_changed_and_storage_mirrors_memory() {
    use sks_core::model::kind;
    let mut s = Mirrored(Sks::initialize(Recording::default(), config(clock())).unwrap());
    let synced = |s: &mut Mirrored| {
        s.0.storage_mut().durability.last().copied().unwrap() == Durability::Synced
    };
    // The Appendix B session and its user calls, then a PIN key, post-operations and aborts.
    sks_issuer::demo::run(&mut s).unwrap();
    let ident = identity();
    let bulk = {
        let mut iss = ident.session("https://issuer.example.com/x", "S.bulk");
        open(&mut s, &mut iss);
        let v: Vec<_> = (0..12)
            .map(|i| key(&mut s, &mut iss, &KeyEntrySpec::new(&format!("K.{i}"))))
            .collect();
        assert!(
            !synced(&mut s),
            "a step inside an open session need not be synced"
        );
        close(&mut s, &mut iss).unwrap();
        assert!(synced(&mut s), "closeProvisioningSession is synced");
        v
    };
    let (target, mut iss) = key_and_pending_update(&mut s, &ident);
    close(&mut s, &mut iss).unwrap();
    let mut aborted = ident.session("https://issuer.example.com/x", "S3");
    open(&mut s, &mut aborted);
    key(&mut s, &mut aborted, &KeyEntrySpec::new("Gone"));
    assert!(
        !synced(&mut s),
        "a step inside an open session need not be synced"
    );
    s.0.abort_provisioning_session(req::AbortProvisioningSession {
        provisioning_handle: aborted.provisioning_handle().unwrap(),
    })
    .unwrap();
    s.check();
    assert!(synced(&mut s), "abortProvisioningSession is synced");

    let last = |s: &mut Mirrored| s.0.storage_mut().batches.last().cloned().unwrap();
    let count = |s: &mut Mirrored| s.0.storage_mut().batches.len();
    // A signature with a key without a PIN writes nothing. One with a PIN writes its
    // key's error counter even when it stays 0, synced: a store that cannot write must
    // refuse a right PIN as it refuses a wrong one.
    let n = count(&mut s);
    sign(&mut s, bulk[7].handle, "").unwrap();
    assert_eq!(count(&mut s), n);
    sign(&mut s, target.handle, "1234").unwrap();
    assert_eq!(count(&mut s), n + 1);
    assert_eq!(last(&mut s), vec![((kind::KEY, target.handle), true)]);
    assert!(synced(&mut s), "a PIN check is synced");
    // A PIN error writes the one key record it changed, whatever the database size.
    assert_eq!(code(sign(&mut s, target.handle, "0000")), AUTHORIZATION);
    assert_eq!(last(&mut s), vec![((kind::KEY, target.handle), true)]);
    assert!(synced(&mut s), "a PIN error counter is synced");
    // deleteKey deletes one record.
    delete_key(&mut s, bulk[3].handle, "").unwrap();
    assert_eq!(last(&mut s), vec![((kind::KEY, bulk[3].handle), false)]);
    assert!(synced(&mut s), "a User API write is synced");
    // Creating a key writes the handle counter, the key and its session.
    let mut iss = ident.session("https://issuer.example.com/x", "S4");
    let ph = open(&mut s, &mut iss);
    let k = s
        .create_key_entry(iss.key_entry(&KeyEntrySpec::new("One")).unwrap())
        .unwrap()
        .key_handle;
    let mut written = last(&mut s);
    written.sort();
    assert_eq!(
        written,
        vec![
            ((kind::META, 0), true),
            ((kind::SESSION, ph), true),
            ((kind::KEY, k), true)
        ]
    );
    assert!(!synced(&mut s), "createKeyEntry inside an open session");
    // A restart reads back the same database.
    let storage = s.0.into_storage();
    let reopened = Sks::open(storage, config(clock())).unwrap();
    assert_eq!(
        reopened.core().state().to_records().unwrap().len(),
        reopened.core().state().keys.len()
            + reopened.core().state().sessions.len()
            + reopened.core().state().pins.len()
            + reopened.core().state().puks.len()
            + 1
    );
}

/// Runs every call of a scenario on the real SQLite store once per statement of its write
/// transaction, failing at that statement (k = 0 .. n - 1, the writes; n, before the COMMIT;
/// n + 1, the COMMIT statement itself, which SQLite then rolls back), and then once without a
/// fault.
/// Each failed attempt must answer ERROR_STORAGE and leave the database and the engine's
/// memory exactly at the state before the call (old state, never a mix); the successful run
/// must leave them at the new state, equal to each other. A PIN or PUK attempt is therefore
/// never answered unless its counter is stored, and a stored counter never goes back.
struct FaultSweep {
    sks: Option<Sks<SqliteStorage>>,
    path: std::path::PathBuf,
    fail_at: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Calls run and failing attempts made, per method ID.
    attempts: BTreeMap<u8, (usize, usize)>,
    /// Calls answered ERROR_AUTHORIZATION and the failing attempts made for them, per method ID.
    refusals: BTreeMap<u8, (usize, usize)>,
}

const NO_FAULT: usize = usize::MAX;

/// The User API methods that check a PIN or PUK and so may write an error counter:
/// deleteKey, exportKey, unlockKey, changePIN, setPIN and the cryptographic methods.
const COUNTER_METHODS: [u8; 10] = [80, 81, 82, 83, 84, 100, 101, 102, 103, 104];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Counter {
    /// The PIN error count of a key.
    Pin,
    /// The error count of a PUK policy.
    Puk,
}

/// Every PIN error count (by key handle) and PUK error count (by PUK policy handle).
type Counters = BTreeMap<(Counter, u32), u16>;

fn counters(state: &sks_core::model::State) -> Counters {
    let pins = state
        .keys
        .values()
        .filter(|k| state.pins.contains_key(&k.pin_policy))
        .map(|k| ((Counter::Pin, k.handle), k.pin_error_count));
    let puks = state
        .puks
        .values()
        .map(|p| ((Counter::Puk, p.handle), p.error_count));
    pins.chain(puks).collect()
}

/// The counters lower in `after` than in `before`, as (counter, before, after); objects
/// removed meanwhile are not compared.
fn lowered(before: &Counters, after: &Counters) -> Vec<((Counter, u32), u16, u16)> {
    before
        .iter()
        .filter_map(|(id, b)| after.get(id).filter(|a| *a < b).map(|a| (*id, *b, *a)))
        .collect()
}

/// The PIN error count of key `kh`, or the error count of its PIN policy's PUK policy.
fn counter_of(state: &sks_core::model::State, kh: u32, which: Counter) -> u16 {
    let k = &state.keys[&kh];
    match which {
        Counter::Pin => k.pin_error_count,
        Counter::Puk => state.puks[&state.pins[&k.pin_policy].puk].error_count,
    }
}

/// Records by id, as SHA-256 digests.
type Digests = Vec<(RecordId, String)>;

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl FaultSweep {
    fn new(path: &std::path::Path) -> Self {
        let fail_at = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(NO_FAULT));
        let storage = Self::storage(path, &fail_at);
        Self {
            sks: Some(Sks::initialize(storage, config(clock())).unwrap()),
            path: path.to_owned(),
            fail_at,
            attempts: BTreeMap::new(),
            refusals: BTreeMap::new(),
        }
    }

    /// The database at `path`, failing the statement whose index `fail_at` holds.
    fn storage(
        path: &std::path::Path,
        fail_at: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> SqliteStorage {
        let mut storage = SqliteStorage::open(path).unwrap();
        let at = std::sync::Arc::clone(fail_at);
        storage.set_statement_hook(Some(Box::new(move |i| {
            if i == at.load(std::sync::atomic::Ordering::SeqCst) {
                Err(StorageError::Injected)
            } else {
                Ok(())
            }
        })));
        storage
    }

    /// Closes the database and opens it again: the engine's memory is then what the disk
    /// holds, read through a new connection.
    fn reopen(&mut self) {
        drop(self.sks.take());
        let storage = Self::storage(&self.path, &self.fail_at);
        self.sks = Some(Sks::open(storage, config(clock())).unwrap());
    }

    fn sks(&mut self) -> &mut Sks<SqliteStorage> {
        self.sks.as_mut().unwrap()
    }

    fn counters(&mut self) -> Counters {
        counters(self.sks().core().state())
    }

    /// (records on disk without the device record, the engine's memory encoded).
    fn states(&mut self) -> (Digests, Digests) {
        let sks = self.sks();
        let mut disk = sks.storage_mut().load().unwrap();
        disk.remove(&(sks_core::model::kind::DEVICE, 0));
        let mut memory = sks.core().state().to_records().unwrap();
        if sks.core().state().next_handle == 0 {
            memory.remove(&(sks_core::model::kind::META, 0));
        }
        // Digests, so a failing comparison prints no key material.
        let flat = |m: BTreeMap<RecordId, sks_core::secret::Secret>| {
            m.iter().map(|(k, v)| (*k, digest(v.expose()))).collect()
        };
        (flat(disk), flat(memory))
    }
}

impl SksApi for FaultSweep {
    fn call(
        &mut self,
        request: sks_core::Request,
    ) -> Result<sks_core::Response, sks_core::SksError> {
        let method = request.method_id();
        let bytes = request.encode().unwrap();
        let (before, memory) = self.states();
        assert_eq!(
            before, memory,
            "memory and disk agree before method {method}"
        );
        let counters_before = self.counters();
        // A counter write must be durable, so these methods are checked through a new
        // connection after every attempt.
        let reopen = COUNTER_METHODS.contains(&method);
        let mut k = 0;
        loop {
            self.fail_at.store(k, std::sync::atomic::Ordering::SeqCst);
            let r = self.sks().call(sks_core::Request::decode(&bytes).unwrap());
            match r {
                Err(e) if e.code() == ErrorCode::Storage => {
                    let (disk, memory) = self.states();
                    let in_memory = self.counters();
                    if reopen {
                        self.reopen();
                    }
                    // A failed write changes no counter, neither in the memory the next call
                    // sees nor on disk.
                    assert_eq!(
                        in_memory, counters_before,
                        "method {method}, fault at statement {k}: counters in memory"
                    );
                    assert_eq!(
                        self.counters(),
                        counters_before,
                        "method {method}, fault at statement {k}: counters on disk"
                    );
                    assert_eq!(
                        disk, before,
                        "method {method}, fault at statement {k}: disk"
                    );
                    assert_eq!(
                        memory, before,
                        "method {method}, fault at statement {k}: memory"
                    );
                    self.attempts.entry(method).or_default().1 += 1;
                    k += 1;
                }
                other => {
                    // No statement left to fail: the call ran to completion.
                    self.fail_at
                        .store(NO_FAULT, std::sync::atomic::Ordering::SeqCst);
                    let (disk, memory) = self.states();
                    let in_memory = self.counters();
                    if reopen {
                        self.reopen();
                    }
                    let on_disk = self.counters();
                    assert_eq!(disk, memory, "method {method}: new state stored");
                    assert_eq!(in_memory, on_disk, "method {method}: counters stored");
                    if matches!(&other, Err(e) if e.code() == ErrorCode::Authorization) {
                        // Only an authorization that passes may lower a counter.
                        let lowered = lowered(&counters_before, &on_disk);
                        assert!(
                            lowered.is_empty(),
                            "method {method} refused, yet lowered (counter, before, after): \
                             {lowered:?}"
                        );
                        let r = self.refusals.entry(method).or_default();
                        r.0 += 1;
                        r.1 += k;
                    }
                    self.attempts.entry(method).or_default().0 += 1;
                    return other;
                }
            }
        }
    }
}

/// `call` presents a wrong PIN or PUK for key `kh` (every faulted attempt has left the
/// counters as they were, see [`FaultSweep`]); the answer is ERROR_AUTHORIZATION with the
/// key's `which` counter at `expected`, in memory and after reopening the database.
#[track_caller]
fn refused<T>(
    s: &mut FaultSweep,
    kh: u32,
    which: Counter,
    expected: u16,
    call: impl FnOnce(&mut FaultSweep) -> Result<T, sks_core::SksError>,
) {
    let before = counter_of(s.sks().core().state(), kh, which);
    assert!(expected >= before, "an error counter never goes back");
    let answer = call(s).map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        answer,
        Err(ErrorCode::Authorization),
        "key {kh} with {which:?} error counter {before}"
    );
    let in_memory = counter_of(s.sks().core().state(), kh, which);
    s.reopen();
    let on_disk = counter_of(s.sks().core().state(), kh, which);
    assert_eq!(
        (in_memory, on_disk),
        (expected, expected),
        "{which:?} error counter of key {kh} (was {before}): in memory, on disk"
    );
}

#[test]
fn a_failure_at_any_statement_of_any_write_leaves_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sks.db");
    let mut s = FaultSweep::new(&path);
    // Appendix B: every provisioning method, postUpdateKey and the user calls of the demo.
    sks_issuer::demo::run(&mut s).unwrap();
    let ident = identity();
    let k = pin_key_session(&mut s, &ident, PinPolicy::new("PIN.1"), "1234");
    // PIN and PUK errors, a PIN reset by a correct PIN, unlockKey, changePIN, deleteKey.
    use Counter::{Pin, Puk};
    let kh = k.handle;
    refused(&mut s, kh, Pin, 1, |s| sign(s, kh, "0000"));
    sign(&mut s, kh, "1234").unwrap();
    for n in 1..=3 {
        refused(&mut s, kh, Pin, n, |s| sign(s, kh, "0000"));
    }
    // However many counter writes failed on the way, the retry limit holds.
    refused(&mut s, kh, Pin, 3, |s| sign(s, kh, "1234"));
    refused(&mut s, kh, Puk, 1, |s| unlock_key(s, kh, "00000000"));
    unlock_key(&mut s, k.handle, "12345678").unwrap();
    s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: sks_core::secret::Secret::from("1234"),
        new_pin: sks_core::secret::Secret::from("2580"),
    })
    .unwrap();
    s.set_pin(req::SetPin {
        key_handle: k.handle,
        authorization: sks_core::secret::Secret::from("12345678"),
        new_pin: sks_core::secret::Secret::from("1470"),
    })
    .unwrap();
    export_key(&mut s, k.handle, "").unwrap();
    // Post-provisioning by the same issuer: postUnlockKey and postDeleteKey, with
    // signProvisioningSessionData on the way.
    for n in 1..=3 {
        refused(&mut s, kh, Pin, n, |s| sign(s, kh, "0000"));
    }
    let victim = pin_key_session(&mut s, &ident, PinPolicy::new("PIN.1"), "1234");
    let mut post = ident.session("https://issuer.example.com/x", "S.post");
    let post_ph = open(&mut s, &mut post);
    s.sign_provisioning_session_data(req::SignProvisioningSessionData {
        provisioning_handle: post_ph,
        data: vec![1; 32],
    })
    .unwrap();
    s.post_unlock_key(post.post_unlock_key(k.handle, &k.ee).unwrap())
        .unwrap();
    s.post_delete_key(post.post_delete_key(victim.handle, &victim.ee).unwrap())
        .unwrap();
    let clone = key(&mut s, &mut post, &KeyEntrySpec::new("Clone"));
    s.post_clone_key_protection(
        post.post_clone_key_protection(clone.handle, &clone.ee, k.handle, &k.ee)
            .unwrap(),
    )
    .unwrap();
    // importPrivateKey replaces a generated key with an issued one.
    let issued =
        sks_core::crypto::keys::PrivateKey::generate(sks_core::crypto::keys::KeySpec::P256)
            .unwrap();
    let spki = issued.public_key().to_spki().unwrap();
    let ee = post.certify("imported", &spki).unwrap();
    import_issued_key(
        &mut s,
        &mut post,
        &KeyEntrySpec::new("Imported"),
        &ee,
        &issued,
    );
    close(&mut s, &mut post).unwrap();
    sign(&mut s, k.handle, "1470").unwrap();
    sign(&mut s, clone.handle, "1470").unwrap();
    // Every other PIN- and PUK-checking method with a wrong PIN or PUK, on a key whose
    // export needs the PIN and whose deletion needs the PUK, and a symmetric key sharing its
    // PIN and counter.
    let (mut gs, _) = open_session(&mut s, &ident, "S.guarded");
    let policy = pin_and_puk(&mut s, &mut gs, PinPolicy::new("PIN.1"), 3);
    let mut spec = pin_spec("Guarded", policy, b"1234");
    spec.protection.export_protection = Protection::Pin;
    spec.protection.delete_protection = Protection::Puk;
    let g = key(&mut s, &mut gs, &spec).handle;
    let sym = key(&mut s, &mut gs, &pin_spec("Secret", policy, b"1234"));
    s.import_symmetric_key(gs.symmetric_key(sym.handle, &sym.ee, &[0x2b; 16]).unwrap())
        .unwrap();
    close(&mut s, &mut gs).unwrap();
    let wrong = || sks_core::secret::Secret::from("0000");
    let key_use = |key_handle, algorithm: &str| KeyUse {
        key_handle,
        algorithm: algorithm.into(),
        parameters: vec![],
        authorization: wrong(),
    };
    refused(&mut s, g, Pin, 1, |s| export_key(s, g, "0000"));
    refused(&mut s, g, Pin, 2, |s| {
        s.change_pin(req::ChangePin {
            key_handle: g,
            authorization: wrong(),
            new_pin: sks_core::secret::Secret::from("2580"),
        })
    });
    // The PIN is checked before the key type, so the P-256 key serves.
    refused(&mut s, g, Pin, 3, |s| {
        s.asymmetric_key_decrypt(req::AsymmetricKeyDecrypt {
            key: key_use(g, ALG_RSA_1_5),
            data: vec![0; 128],
        })
    });
    refused(&mut s, g, Pin, 3, |s| sign(s, g, "1234"));
    unlock_key(&mut s, g, "12345678").unwrap();
    let peer = sks_core::crypto::keys::PrivateKey::generate(sks_core::crypto::keys::KeySpec::P256)
        .unwrap()
        .public_key()
        .to_spki()
        .unwrap();
    refused(&mut s, g, Pin, 1, |s| {
        s.key_agreement(req::KeyAgreement {
            key: key_use(g, ALG_ECDH_RAW),
            public_key: peer,
        })
    });
    refused(&mut s, sym.handle, Pin, 2, |s| {
        s.perform_hmac(req::PerformHmac {
            key: key_use(sym.handle, ALG_HMAC_SHA256),
            data: sks_core::codec::Blob(vec![1; 16]),
        })
    });
    refused(&mut s, sym.handle, Pin, 3, |s| {
        s.symmetric_key_encrypt(req::SymmetricKeyEncrypt {
            key_handle: sym.handle,
            algorithm: ALG_AES128_CBC.into(),
            mode: true,
            authorization: wrong(),
            data: sks_core::codec::Blob(vec![1; 16]),
            ..Default::default()
        })
    });
    assert_eq!(
        protection(&mut s, g).pin_error_count,
        3,
        "one shared counter"
    );
    refused(&mut s, g, Puk, 1, |s| {
        s.set_pin(req::SetPin {
            key_handle: g,
            authorization: sks_core::secret::Secret::from("00000000"),
            new_pin: sks_core::secret::Secret::from("2580"),
        })
    });
    refused(&mut s, g, Puk, 2, |s| delete_key(s, g, "00000000"));
    refused(&mut s, g, Puk, 3, |s| unlock_key(s, g, "00000000"));
    refused(&mut s, g, Puk, 3, |s| unlock_key(s, g, "12345678"));
    refused(&mut s, g, Pin, 3, |s| sign(s, g, "1234"));
    // An aborted session and a deleted key.
    let mut iss = ident.session("https://issuer.example.com/x", "S.abort");
    let ph = open(&mut s, &mut iss);
    key(&mut s, &mut iss, &KeyEntrySpec::new("Gone"));
    s.abort_provisioning_session(req::AbortProvisioningSession {
        provisioning_handle: ph,
    })
    .unwrap();
    delete_key(&mut s, k.handle, "").unwrap();
    // Every write method was swept at every statement; a restart reads the last state.
    let failed: usize = s.attempts.values().map(|(_, f)| f).sum();
    eprintln!(
        "fault sweep: {:?} (method: calls, failed attempts)",
        s.attempts
    );
    for method in [
        2u8, 3, 5, 6, 7, 8, 9, 11, 12, 13, 14, 50, 51, 52, 53, 74, 80, 81, 82, 83, 84, 100, 101,
        102, 103, 104,
    ] {
        assert!(
            s.attempts.get(&method).is_some_and(|(_, f)| *f > 0),
            "method {method} was not swept: {:?}",
            s.attempts
        );
    }
    // Every counter write of a refused PIN or PUK was failed at each of its statements.
    for method in COUNTER_METHODS {
        assert!(
            s.refusals.get(&method).is_some_and(|(_, f)| *f > 0),
            "no refused method {method} was swept: {:?}",
            s.refusals
        );
    }
    assert!(failed > 50, "{failed}");
    let (disk, _) = s.states();
    drop(s.sks.take());
    let reopened = Sks::open(SqliteStorage::open(&path).unwrap(), config(clock())).unwrap();
    let memory: Vec<_> = reopened
        .core()
        .state()
        .to_records()
        .unwrap()
        .iter()
        .map(|(k, v)| (*k, digest(v.expose())))
        .collect();
    assert_eq!(memory, disk);
}
