//! Shared test helpers: SKS construction and a standard issuer-driven provisioning flow.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sks_core::api::{req, resp, KeyUse, SksApi};
use sks_core::consts::*;
use sks_core::crypto::keys::KeySpec;
use sks_core::secret::Secret;
use sks_core::storage::StorageError;
use sks_core::wire::WireLoopback;
use sks_core::{Config, MemoryStorage, Sks, Storage};
use sks_issuer::{Issuer, IssuerIdentity, KeyEntrySpec, PinPolicy};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Config with a tiny PUK delay and a controllable clock.
pub fn config(clock: Arc<AtomicU64>) -> Config {
    Config {
        puk_delay: Duration::from_millis(1),
        clock: Arc::new(move || clock.load(Ordering::SeqCst)),
        ..Config::default()
    }
}

pub fn clock() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(1_700_000_000))
}

pub fn memory_sks() -> Sks<MemoryStorage> {
    Sks::initialize(MemoryStorage::new(), config(clock())).unwrap()
}

/// The storage the behavioural tests run on: in memory, or with `SKS_TEST_STORAGE=sqlite` the
/// durable SQLite store in a fresh temporary directory (CI runs the suite both ways).
pub type TestStorage = Box<dyn Storage + Send>;

/// An SQLite store that removes its directory when dropped.
struct TempSqlite {
    storage: sks_sqlite::SqliteStorage,
    _dir: tempfile::TempDir,
}

impl Storage for TempSqlite {
    fn load(
        &mut self,
    ) -> Result<std::collections::BTreeMap<sks_core::model::RecordId, Secret>, StorageError> {
        self.storage.load()
    }
    fn apply_with(
        &mut self,
        batch: &[sks_core::storage::Change<'_>],
        durability: sks_core::storage::Durability,
    ) -> Result<(), StorageError> {
        self.storage.apply_with(batch, durability)
    }
}

/// A fresh, empty [`TestStorage`].
pub fn test_storage() -> TestStorage {
    match std::env::var("SKS_TEST_STORAGE").as_deref() {
        Ok("sqlite") => {
            let dir = tempfile::tempdir().unwrap();
            let storage = sks_sqlite::SqliteStorage::open(&dir.path().join("sks.db")).unwrap();
            Box::new(TempSqlite { storage, _dir: dir })
        }
        Ok("memory") | Err(_) => Box::new(MemoryStorage::new()),
        Ok(other) => panic!("SKS_TEST_STORAGE must be memory or sqlite, not {other}"),
    }
}

/// The SKS of the behavioural tests, on [`TestStorage`].
pub type TestSks = WireLoopback<Sks<TestStorage>>;

/// The SKS every behavioural test uses: each call is encoded to bytes, decoded, executed,
/// and the response encoded and decoded again (the §7.4 wire format).
pub fn sks() -> TestSks {
    sks_with_config(config(clock()))
}

/// Like [`sks`] with a caller-held clock.
pub fn sks_with_clock(clock: Arc<AtomicU64>) -> TestSks {
    sks_with_config(config(clock))
}

/// Like [`sks`] with a caller-made configuration.
pub fn sks_with_config(config: Config) -> TestSks {
    WireLoopback {
        inner: Sks::initialize(test_storage(), config).unwrap(),
    }
}

pub fn device_cert(sks: &mut impl SksApi) -> Vec<u8> {
    sks.get_device_info(req::GetDeviceInfo {})
        .unwrap()
        .certificate_path
        .0[0]
        .clone()
}

pub fn identity() -> IssuerIdentity {
    IssuerIdentity::generate("CN=Test CA", Some(KeySpec::P256)).unwrap()
}

/// Opens a session for `iss` and returns its handle.
pub fn open(sks: &mut impl SksApi, iss: &mut Issuer) -> u32 {
    let dc = device_cert(sks);
    let out = sks
        .create_provisioning_session(iss.create_session_request().unwrap())
        .unwrap();
    iss.accept_session(&out, &dc).unwrap();
    out.provisioning_handle
}

/// The issuer URI of the tests' provisioning sessions.
pub const ISSUER_URI: &str = "https://issuer.example.com/x";

/// Opens session `server_session_id` of `ident` at [`ISSUER_URI`]; returns it and its handle.
pub fn open_session(
    sks: &mut impl SksApi,
    ident: &IssuerIdentity,
    server_session_id: &str,
) -> (Issuer, u32) {
    let mut iss = ident.session(ISSUER_URI, server_session_id);
    let handle = open(sks, &mut iss);
    (iss, handle)
}

/// Opens session "S1" of a new issuer identity.
pub fn open_s1(sks: &mut impl SksApi) -> Issuer {
    open_session(sks, &identity(), "S1").0
}

/// A provisioned key: handle, EE certificate, public key.
pub struct Provisioned {
    pub handle: u32,
    pub ee: Vec<u8>,
    pub public_key: Vec<u8>,
}

/// createKeyEntry + certify + setCertificatePath.
pub fn key(sks: &mut impl SksApi, iss: &mut Issuer, spec: &KeyEntrySpec) -> Provisioned {
    let out = sks.create_key_entry(iss.key_entry(spec).unwrap()).unwrap();
    iss.verify_key_attestation(&spec.id, &out).unwrap();
    let ee = iss.certify(&spec.id, &out.public_key).unwrap();
    sks.set_certificate_path(
        iss.certificate_path(out.key_handle, &spec.id, &out.public_key, vec![ee.clone()])
            .unwrap(),
    )
    .unwrap();
    Provisioned {
        handle: out.key_handle,
        ee,
        public_key: out.public_key,
    }
}

pub fn close(sks: &mut impl SksApi, iss: &mut Issuer) -> Result<(), sks_core::SksError> {
    let nonce = b"nonce".to_vec();
    let out = sks.close_provisioning_session(iss.close(&nonce).unwrap())?;
    iss.verify_close(&nonce, &out).unwrap();
    Ok(())
}

/// A PIN policy from `pin` without a PUK; returns its handle.
pub fn pin_policy(sks: &mut impl SksApi, iss: &mut Issuer, pin: &PinPolicy) -> u32 {
    sks.create_pin_policy(iss.pin_policy(pin, None).unwrap())
        .unwrap()
        .pin_policy_handle
}

/// PUK "PUK.1" (retry `puk_retry`) + PIN policy "PIN.1" from `pin` (puk filled in).
pub fn pin_and_puk(sks: &mut impl SksApi, iss: &mut Issuer, pin: PinPolicy, puk_retry: u16) -> u32 {
    let puk = sks
        .create_puk_policy(
            iss.puk_policy("PUK.1", b"12345678", PinFormat::Numeric, puk_retry)
                .unwrap(),
        )
        .unwrap();
    let puk = Some((puk.puk_policy_handle, "PUK.1"));
    sks.create_pin_policy(iss.pin_policy(&pin, puk).unwrap())
        .unwrap()
        .pin_policy_handle
}

/// Key `id` under PIN policy "PIN.1" (handle `ph`, user-defined PIN) with `pin_value`.
pub fn pin_spec(id: &str, ph: u32, pin_value: &[u8]) -> KeyEntrySpec {
    let mut spec = KeyEntrySpec::new(id);
    spec.pin_policy = Some((ph, "PIN.1".into(), true));
    spec.pin_value = pin_value.to_vec();
    spec
}

/// One closed session with one PIN+PUK protected P-256 key (PIN "1234", PUK "12345678").
pub fn pin_key_session(
    sks: &mut impl SksApi,
    ident: &IssuerIdentity,
    pin: PinPolicy,
    pin_value: &str,
) -> Provisioned {
    let (mut iss, _) = open_session(sks, ident, "S.pinkey");
    let id = pin.id.clone();
    let user_defined = pin.attributes.user_defined;
    let ph = pin_and_puk(sks, &mut iss, pin, 3);
    let mut spec = KeyEntrySpec::new("Key.1");
    spec.pin_policy = Some((ph, id, user_defined));
    spec.pin_value = pin_value.as_bytes().to_vec();
    let k = key(sks, &mut iss, &spec);
    close(sks, &mut iss).unwrap();
    k
}

pub fn sign(
    sks: &mut impl SksApi,
    kh: u32,
    pin: &str,
) -> Result<resp::SignHashedData, sks_core::SksError> {
    sks.sign_hashed_data(req::SignHashedData {
        key: KeyUse {
            key_handle: kh,
            algorithm: ALG_ECDSA_SHA256.into(),
            parameters: vec![],
            authorization: Secret::from(pin),
        },
        data: vec![7u8; 32],
    })
}

/// User-API calls that take a key handle and its authorization (empty, PIN
/// or PUK), one function each: `name(sks, kh, authorization)`.
macro_rules! keyed_calls {
    ($($(#[$doc:meta])* $name:ident $req:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(
            sks: &mut impl SksApi,
            kh: u32,
            authorization: &str,
        ) -> Result<resp::$req, sks_core::SksError> {
            sks.$name(req::$req {
                key_handle: kh,
                authorization: Secret::from(authorization),
            })
        }
    )*};
}

keyed_calls! {
    /// deleteKey \[80\].
    delete_key DeleteKey;
    /// exportKey \[81\].
    export_key ExportKey;
    /// unlockKey \[82\].
    unlock_key UnlockKey;
}

/// symmetricKeyEncrypt with `key_handle` and no authorization; `encrypt` is its mode.
pub fn symmetric_encrypt(
    s: &mut impl SksApi,
    key_handle: u32,
    algorithm: &str,
    encrypt: bool,
    parameters: Vec<u8>,
    data: sks_core::codec::Blob,
) -> Result<resp::SymmetricKeyEncrypt, sks_core::SksError> {
    s.symmetric_key_encrypt(req::SymmetricKeyEncrypt {
        key_handle,
        algorithm: algorithm.into(),
        mode: encrypt,
        parameters,
        data,
        ..Default::default()
    })
}

/// performHMAC with `key_handle` and no authorization.
pub fn perform_hmac(
    s: &mut impl SksApi,
    key_handle: u32,
    algorithm: &str,
    data: &[u8],
) -> Result<resp::PerformHmac, sks_core::SksError> {
    s.perform_hmac(req::PerformHmac {
        key: KeyUse {
            key_handle,
            algorithm: algorithm.into(),
            ..Default::default()
        },
        data: sks_core::codec::Blob(data.to_vec()),
    })
}

/// A key entry of `spec` in the open session of `iss` whose generated key is replaced by
/// `issued`: certificate path `[ee]`, then importPrivateKey.
pub fn import_issued_key(
    sks: &mut impl SksApi,
    iss: &mut Issuer,
    spec: &KeyEntrySpec,
    ee: &[u8],
    issued: &sks_core::crypto::keys::PrivateKey,
) -> resp::CreateKeyEntry {
    let out = sks.create_key_entry(iss.key_entry(spec).unwrap()).unwrap();
    let path = vec![ee.to_vec()];
    let path = iss.certificate_path(out.key_handle, &spec.id, &out.public_key, path);
    sks.set_certificate_path(path.unwrap()).unwrap();
    let pkcs8 = issued.to_pkcs8().unwrap();
    let import = iss.private_key(out.key_handle, ee, pkcs8.expose()).unwrap();
    sks.import_private_key(import).unwrap();
    out
}

pub fn protection(sks: &mut impl SksApi, kh: u32) -> resp::GetKeyProtectionInfo {
    sks.get_key_protection_info(req::GetKeyProtectionInfo { key_handle: kh })
        .unwrap()
}

pub fn code<T: std::fmt::Debug>(r: Result<T, sks_core::SksError>) -> ErrorCodeOf {
    ErrorCodeOf(r.unwrap_err().code())
}

#[derive(Debug, PartialEq, Eq)]
pub struct ErrorCodeOf(pub sks_core::ErrorCode);

/// `r` failed with `expected`, and the failure aborted the open session.
pub fn assert_aborts<T: std::fmt::Debug>(
    r: Result<T, sks_core::SksError>,
    expected: sks_core::ErrorCode,
    sks: &mut impl SksApi,
) {
    assert_eq!(code(r), ErrorCodeOf(expected));
    assert_eq!(session_count(sks, true), 0, "the session is aborted");
}

/// enumerateProvisioningSessions: the session after handle `after` (0: the
/// first) among the open (`open_state`) or closed ones.
pub fn next_session(
    sks: &mut impl SksApi,
    after: u32,
    open_state: bool,
) -> resp::EnumerateProvisioningSessions {
    sks.enumerate_provisioning_sessions(req::EnumerateProvisioningSessions {
        provisioning_handle: after,
        provisioning_state: open_state,
    })
    .unwrap()
}

pub fn session_count(sks: &mut impl SksApi, open_state: bool) -> usize {
    let mut n = 0;
    let mut h = 0;
    loop {
        let out = next_session(sks, h, open_state);
        if out.provisioning_handle == 0 {
            return n;
        }
        n += 1;
        h = out.provisioning_handle;
    }
}

pub fn keys(sks: &mut impl SksApi) -> Vec<u32> {
    let mut v = Vec::new();
    let mut h = 0;
    loop {
        let out = sks
            .enumerate_keys(req::EnumerateKeys { key_handle: h })
            .unwrap();
        if out.key_handle == 0 {
            return v;
        }
        v.push(out.key_handle);
        h = out.key_handle;
    }
}

/// Starts `sks serve --db DB --listen 127.0.0.1:0 --token-file DB.token` (the database must
/// exist) and returns the process, the address from its first output line (`sks serving on
/// ADDR`) and the token file the server created.
pub fn start_serve(db: &std::path::Path) -> (std::process::Child, String, std::path::PathBuf) {
    let token = db.with_extension("token");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sks"))
        .args(["serve", "--db"])
        .arg(db)
        .args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line_within(&mut child, std::time::Duration::from_secs(120));
    let addr = line
        .trim()
        .strip_prefix("sks serving on ")
        .unwrap_or_else(|| panic!("unexpected first line of sks serve: {line:?}"))
        .to_owned();
    (child, addr, token)
}

/// The first line `child` writes to its piped standard output; a child that
/// writes none within `limit` (a hang at start-up) is killed and fails the test.
pub fn first_line_within(child: &mut std::process::Child, limit: std::time::Duration) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    match rx.recv_timeout(limit) {
        Ok(read) => read.expect("reading the first line"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no first line within {limit:?}");
        }
    }
}
