//! The SKS engine. [`Core`] is the sans-IO state machine executing §7.4 methods on the
//! in-memory Credential Database; [`Sks`] wraps it with a [`Storage`] and persists the
//! changes of every call as one atomic batch before the call returns (§2.5).

mod auth;
pub use auth::PukDelay;
mod close;
mod key_entry;
mod postops;
mod provision;
mod session;
mod user;
mod user_crypto;

use crate::api::{req, resp, Dispatch, Request, Response, SksApi};
use crate::consts::{ANONYMOUS, MAX_LENGTH_ID};
use crate::crypto::CryptoError;
use crate::device::DeviceIdentity;
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::layout::MacInput;
use crate::model::{kind, InState, KeyEntry, OpenState, Session, State};
use crate::secret::Secret;
use crate::storage::{Change, Durability, Storage};
use std::sync::Arc;
use std::time::Duration;

/// A clock returning UNIX seconds (injectable for session-expiry tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The biometric sensor input (§5.3: "there is no API support for biometric authentication,
/// such information is typically provided through GPIO"): called with the key handle of a
/// User API cryptographic call, it answers whether the sensor has verified the user for that
/// call. The embedder supplies it; without a sensor it always answers `false`.
pub type BiometricInput = Arc<dyn Fn(u32) -> bool + Send + Sync>;

/// Static device properties and policies.
#[derive(Clone)]
pub struct Config {
    /// getDeviceInfo VendorName.
    pub vendor_name: String,
    /// getDeviceInfo VendorDescription.
    pub vendor_description: String,
    /// getDeviceInfo BiometricSupport: whether createKeyEntry accepts a BiometricProtection
    /// other than `none` (§createKeyEntry remarks).
    pub biometric_support: bool,
    /// The biometric sensor consulted by the cryptographic User API methods for keys with
    /// BiometricProtection (§5.3). The default has no sensor and never verifies.
    pub biometric: BiometricInput,
    /// Delay before acting on a PUK of a policy with RetryLimit 0 (§createPUKPolicy: 1-10 s).
    pub puk_delay: Duration,
    /// Time source for SessionLifeTime enforcement.
    pub clock: Clock,
    /// Most provisioning sessions open at once; createProvisioningSession beyond it fails
    /// with ERROR_STORAGE, so replayed session creations cannot grow the database without bound.
    pub max_open_sessions: usize,
    /// An open session older than this (or than its SessionLifeTime, whichever is shorter) is
    /// abandoned and aborted at the start of the next call.
    pub session_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("vendor_name", &self.vendor_name)
            .field("biometric_support", &self.biometric_support)
            .field("puk_delay", &self.puk_delay)
            .field("max_open_sessions", &self.max_open_sessions)
            .field("session_timeout", &self.session_timeout)
            .finish()
    }
}

/// UNIX seconds from the system clock.
pub fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            vendor_name: "keyfob-station".to_owned(),
            vendor_description: "Software SKS (Secure Key Store API 1.00), TYPE_SOFTWARE"
                .to_owned(),
            biometric_support: false,
            biometric: Arc::new(|_| false),
            puk_delay: Duration::from_secs(1),
            clock: Arc::new(system_clock),
            max_open_sessions: 64,
            session_timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// The sans-IO engine: state, device identity and configuration.
pub struct Core {
    pub(crate) state: State,
    pub(crate) device: DeviceIdentity,
    pub(crate) config: Config,
    /// The PUK policy whose delay the caller has waited for the current call.
    pub(crate) puk_paced: Option<u32>,
    /// The clock reading of the last expiry sweep over the open sessions: within the same
    /// second no further session can have expired, so the sweep is skipped.
    swept_at: Option<u64>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sessions", &self.state.sessions.len())
            .field("keys", &self.state.keys.len())
            .finish()
    }
}

/// `next_handle` value meaning every handle has been handed out; it is never a handle itself
/// (0xFFFFFFFF ends the enumerations), so handles run from 1 to 0xFFFFFFFE.
const HANDLE_EXHAUSTED: u32 = u32::MAX;

impl Core {
    /// A core over a state.
    pub fn new(state: State, device: DeviceIdentity, config: Config) -> Self {
        Self {
            state,
            device,
            config,
            puk_paced: None,
            swept_at: None,
        }
    }

    /// Replaces the state (a reload from storage); the next call sweeps expired sessions again.
    pub(crate) fn replace_state(&mut self, state: State) {
        self.state = state;
        self.swept_at = None;
    }

    /// The Credential Database (read-only).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Executes one call. Expired open sessions are aborted first (SessionLifeTime).
    pub fn execute(&mut self, request: Request) -> Result<Response, SksError> {
        self.purge_expired();
        self.dispatch(request)
    }

    pub(crate) fn now(&self) -> u64 {
        (self.config.clock)()
    }

    /// Aborts every open session past its SessionLifeTime or [`Config::session_timeout`]. The
    /// aborts are part of the current call's changes, so they are stored in the same atomic batch.
    fn purge_expired(&mut self) {
        let now = self.now();
        if self.swept_at == Some(now) {
            return;
        }
        self.swept_at = Some(now);
        let timeout = self.config.session_timeout.as_secs();
        let sessions = &self.state.sessions;
        let expired: Vec<u32> = sessions
            .open_handles()
            .filter(|h| {
                sessions.get(h).is_some_and(|s| {
                    s.open_state().is_some_and(|o| {
                        let life = u64::from(s.session_life_time).min(timeout);
                        now > o.opened_at.saturating_add(life)
                    })
                })
            })
            .collect();
        for h in expired {
            self.abort_session(h);
        }
    }

    /// A fresh object handle. Handles are never reused: the counter only grows and, once the
    /// last handle (0xFFFFFFFE) has been handed out, every further creation fails with
    /// ERROR_STORAGE ("no persistent storage available for the operation", §7.3) instead of
    /// wrapping to a handle that may still name, or once named, another object. 0 is never a
    /// handle (it starts and ends the enumerations, byte layouts §8.8).
    pub(crate) fn alloc_handle(&mut self) -> SksResult<u32> {
        let h = self.state.next_handle.max(1);
        if h == HANDLE_EXHAUSTED {
            return Err(err(ErrorCode::Storage, "Object handles exhausted"));
        }
        self.state.next_handle = h.saturating_add(1);
        Ok(h)
    }

    /// Files a new object in its table under a fresh handle; `make` builds it from that handle.
    pub(crate) fn add_object<T: InState>(&mut self, make: impl FnOnce(u32) -> T) -> SksResult<u32> {
        let handle = self.alloc_handle()?;
        T::table(&mut self.state).insert(handle, make(handle));
        Ok(handle)
    }

    /// Device ID of §2.7 for the given mode.
    pub(crate) fn device_id(&self, privacy_enabled: bool) -> Vec<u8> {
        if privacy_enabled {
            ANONYMOUS.to_vec()
        } else {
            self.device.certificate().to_vec()
        }
    }

    /// The session must exist and be open (ERROR_NO_SESSION otherwise, no abort).
    pub(crate) fn open_session(&self, ph: u32) -> SksResult<&Session> {
        match self.state.sessions.get(&ph) {
            Some(s) if s.is_open() => Ok(s),
            _ => Err(err(
                ErrorCode::NoSession,
                format!("No open provisioning session {ph}"),
            )),
        }
    }

    pub(crate) fn session(&self, ph: u32) -> SksResult<&Session> {
        self.state.sessions.get(&ph).ok_or_else(|| {
            err(
                ErrorCode::NoSession,
                format!("No provisioning session {ph}"),
            )
        })
    }

    /// The open state of session `ph` (ERROR_NO_SESSION if it is not open).
    pub(crate) fn open_state_mut(&mut self, ph: u32) -> SksResult<&mut OpenState> {
        self.state.sessions.open_state_mut(&ph).ok_or_else(|| {
            err(
                ErrorCode::NoSession,
                format!("No open provisioning session {ph}"),
            )
        })
    }

    /// Key `kh` if its session is open (`open` true) or closed (`open` false); ERROR_NO_KEY
    /// otherwise, no abort.
    fn key_in(&self, kh: u32, open: bool) -> SksResult<&KeyEntry> {
        let k = self
            .state
            .keys
            .get(&kh)
            .ok_or_else(|| err(ErrorCode::NoKey, format!("Key {kh} not found")))?;
        match self.state.sessions.get(&k.session) {
            Some(s) if s.is_open() == open => Ok(k),
            _ if open => Err(err(
                ErrorCode::NoKey,
                format!("Key {kh} does not belong to an open session"),
            )),
            _ => Err(err(
                ErrorCode::NoKey,
                format!("Key {kh} is not provisioned yet"),
            )),
        }
    }

    /// The key must belong to an open session; returns that session (provisioning methods).
    pub(crate) fn open_key(&self, kh: u32) -> SksResult<u32> {
        self.key_in(kh, true).map(|k| k.session)
    }

    /// A key of a closed session (User API).
    pub(crate) fn closed_key(&self, kh: u32) -> SksResult<&KeyEntry> {
        self.key_in(kh, false)
    }

    pub(crate) fn key_mut(&mut self, kh: u32) -> SksResult<&mut KeyEntry> {
        self.state
            .keys
            .get_mut(&kh)
            .ok_or_else(|| err(ErrorCode::NoKey, format!("Key {kh} not found")))
    }

    /// Removes an open session and everything it created (§createProvisioningSession remarks).
    pub(crate) fn abort_session(&mut self, ph: u32) {
        self.state.keys.remove_owned_by(ph);
        self.state.pins.remove_owned_by(ph);
        self.state.puks.remove_owned_by(ph);
        self.state.sessions.remove(&ph);
    }

    /// Session `ph` must be open (ERROR_NO_SESSION otherwise, no abort); then runs `f` on it,
    /// and any error of `f` aborts the session (byte layouts §8.9).
    pub(crate) fn in_open_session<T>(
        &mut self,
        ph: u32,
        f: impl FnOnce(&mut Self, u32) -> SksResult<T>,
    ) -> SksResult<T> {
        self.open_session(ph)?;
        self.guarded(ph, |c| f(c, ph))
    }

    /// Runs `f`; any error aborts the session `ph` (byte layouts §8.9).
    pub(crate) fn guarded<T>(
        &mut self,
        ph: u32,
        f: impl FnOnce(&mut Self) -> SksResult<T>,
    ) -> SksResult<T> {
        let r = f(self);
        if r.is_err() {
            self.abort_session(ph);
        }
        r
    }

    /// One SessionKey operation against SessionKeyLimit (byte layouts §4.4).
    pub(crate) fn key_op(&mut self, ph: u32) -> SksResult<()> {
        let s = self.open_state_mut(ph)?;
        if s.key_ops_left == 0 {
            return Err(err(ErrorCode::Option, "SessionKeyLimit exceeded"));
        }
        s.key_ops_left -= 1;
        Ok(())
    }

    /// Verifies a method MAC with the next MACSequenceCounter value (§6.2).
    pub(crate) fn verify_mac(&mut self, ph: u32, input: &MacInput, mac: &[u8]) -> SksResult<()> {
        self.key_op(ph)?;
        let s = self.open_state_mut(ph)?;
        let n = s.mac_counter;
        s.mac_counter = n.wrapping_add(1);
        let expected = s.session_key.mac(input.method, n, &input.data)?;
        if crate::secret::ct_eq(&expected, mac) {
            Ok(())
        } else {
            let method = input.method;
            Err(err(ErrorCode::Mac, format!("MAC error in \"{method}\"")))
        }
    }

    /// An attestation with the next counter value (§6.3).
    pub(crate) fn attest(&mut self, ph: u32, data: &[u8]) -> SksResult<[u8; 32]> {
        self.key_op(ph)?;
        let s = self.open_state_mut(ph)?;
        let n = s.mac_counter;
        s.mac_counter = n.wrapping_add(1);
        Ok(s.session_key.attest(n, data)?)
    }

    /// Decrypts §6.1 encrypted data (one SessionKey operation).
    pub(crate) fn decrypt(&mut self, ph: u32, data: &[u8]) -> SksResult<Secret> {
        self.key_op(ph)?;
        let s = self.open_state_mut(ph)?;
        s.session_key.decrypt(data).map_err(|e| match e {
            CryptoError::Decrypt => err(ErrorCode::Crypto, "Decryption of encrypted data failed"),
            other => other.into(),
        })
    }

    /// Checks an ID (byte layouts §8.1) and its uniqueness in the session's namespace.
    pub(crate) fn check_new_id(&self, ph: u32, id: &str) -> SksResult<()> {
        check_id_syntax(id)?;
        // Every object of an open session was created in it, after the session's handle.
        let st = &self.state;
        let dup = st.keys.after(ph).any(|k| k.session == ph && k.id == id)
            || st
                .pins
                .after(ph)
                .any(|p| p.session == ph && p.policy.id == id)
            || st.puks.after(ph).any(|p| p.session == ph && p.id == id);
        if dup {
            return Err(err(ErrorCode::Option, format!("Duplicate \"ID\": {id}")));
        }
        Ok(())
    }
}

/// ID syntax (§7.1 `id`, byte layouts §8.1): 1-32 chars, first `A-Z a-z _`, then `A-Z a-z 0-9 _ . -`.
pub fn check_id_syntax(id: &str) -> SksResult<()> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_LENGTH_ID
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(err(ErrorCode::Option, "Malformed \"ID\""))
    }
}

macro_rules! delegate {
    ($($f:ident $name:ident;)*) => {
        impl Dispatch for Core {
            $( fn $f(&mut self, a: req::$name) -> SksResult<resp::$name> { Core::$f(self, a) } )*
        }
    };
}

delegate! {
    get_device_info GetDeviceInfo;
    create_provisioning_session CreateProvisioningSession;
    close_provisioning_session CloseProvisioningSession;
    enumerate_provisioning_sessions EnumerateProvisioningSessions;
    abort_provisioning_session AbortProvisioningSession;
    sign_provisioning_session_data SignProvisioningSessionData;
    create_puk_policy CreatePukPolicy;
    create_pin_policy CreatePinPolicy;
    create_key_entry CreateKeyEntry;
    get_key_handle GetKeyHandle;
    set_certificate_path SetCertificatePath;
    import_symmetric_key ImportSymmetricKey;
    import_private_key ImportPrivateKey;
    add_extension AddExtension;
    post_delete_key PostDeleteKey;
    post_unlock_key PostUnlockKey;
    post_update_key PostUpdateKey;
    post_clone_key_protection PostCloneKeyProtection;
    enumerate_keys EnumerateKeys;
    get_key_attributes GetKeyAttributes;
    get_key_protection_info GetKeyProtectionInfo;
    get_extension GetExtension;
    set_property SetProperty;
    delete_key DeleteKey;
    export_key ExportKey;
    unlock_key UnlockKey;
    change_pin ChangePin;
    set_pin SetPin;
    update_firmware UpdateFirmware;
    sign_hashed_data SignHashedData;
    asymmetric_key_decrypt AsymmetricKeyDecrypt;
    key_agreement KeyAgreement;
    perform_hmac PerformHmac;
    symmetric_key_encrypt SymmetricKeyEncrypt;
}

/// A persistent SKS: [`Core`] plus a [`Storage`]. Every call's changes are written as one
/// atomic batch before it returns; if that write fails the in-memory state is reloaded from
/// storage and the call fails with ERROR_STORAGE.
pub struct Sks<S: Storage> {
    core: Core,
    storage: S,
    /// Set when a failed write could not be rolled back by reloading storage.
    poisoned: bool,
}

impl<S: Storage> std::fmt::Debug for Sks<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sks").field("core", &self.core).finish()
    }
}

fn storage_error(e: impl std::fmt::Display) -> SksError {
    err(ErrorCode::Storage, format!("Storage failure: {e}"))
}

impl<S: Storage> Sks<S> {
    /// Creates the device identity in an empty store (`sks init`); an existing one is kept.
    pub fn initialize(mut storage: S, config: Config) -> SksResult<Self> {
        let records = storage.load().map_err(storage_error)?;
        if !records.contains_key(&(kind::DEVICE, 0)) {
            let device = DeviceIdentity::generate(&config.vendor_name)
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            let rec = device
                .to_record()
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            storage
                .apply(&[((kind::DEVICE, 0), Some(rec.expose()))])
                .map_err(storage_error)?;
        }
        Self::open(storage, config)
    }

    /// Opens an initialized store.
    pub fn open(mut storage: S, config: Config) -> SksResult<Self> {
        let image = storage.load().map_err(storage_error)?;
        let record = image.get(&(kind::DEVICE, 0)).ok_or_else(|| {
            err(
                ErrorCode::Storage,
                "Device not initialized (run `sks init`)",
            )
        })?;
        let device = DeviceIdentity::from_record(record.expose()).map_err(storage_error)?;
        let state = State::from_records(image.iter()).map_err(storage_error)?;
        Ok(Self {
            core: Core::new(state, device, config),
            storage,
            poisoned: false,
        })
    }

    /// The engine (read-only).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The storage backend.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Consumes the SKS, returning its storage (simulates a restart in tests).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Writes the records the last call changed, as one atomic batch (byte layouts §8.9;
    /// storage module docs). Only changed objects are encoded and written, so the cost follows
    /// the call, not the database size. If the write fails, the in-memory state is reloaded
    /// from storage, so memory never runs ahead of what is durable.
    fn flush(&mut self, durability: Durability) -> SksResult<()> {
        let changes = match self.core.state.take_changes() {
            Ok(c) => c,
            Err(e) => return Err(self.reload_after(storage_error(e))),
        };
        if changes.is_empty() {
            return Ok(());
        }
        let batch: Vec<Change<'_>> = changes
            .iter()
            .map(|(id, data)| (*id, data.as_ref().map(Secret::expose)))
            .collect();
        match self.storage.apply_with(&batch, durability) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.reload_after(storage_error(e))),
        }
    }

    /// Returns to the durable state after a failed write; `e` is the error to report.
    fn reload_after(&mut self, e: SksError) -> SksError {
        match self
            .storage
            .load()
            .map_err(storage_error)
            .and_then(|image| State::from_records(image.iter()).map_err(storage_error))
        {
            Ok(state) => {
                self.core.replace_state(state);
                e
            }
            // Storage cannot even be read back: refuse to go on with a state that may be
            // ahead of it. Every later call fails until the process is restarted.
            Err(reload) => {
                self.poisoned = true;
                err(
                    ErrorCode::Storage,
                    format!("{}; reload failed: {}", e.message(), reload.message()),
                )
            }
        }
    }
}

impl<S: Storage> Sks<S> {
    /// See [`Core::puk_delay_for`].
    pub fn puk_delay_for(&self, request: &Request) -> Option<PukDelay> {
        self.core.puk_delay_for(request)
    }

    /// Executes and stores a call whose PUK delay the caller has already waited for (a server
    /// waits without holding the SKS, so one client's penalty does not stall the others).
    pub fn call_after_delay(
        &mut self,
        request: Request,
        waited: PukDelay,
    ) -> Result<Response, SksError> {
        self.usable()?;
        let durability = durability_of(&request);
        let result = self.core.execute_after_delay(request, waited);
        self.flush(durability)?;
        result
    }

    fn usable(&self) -> SksResult<()> {
        if self.poisoned {
            return Err(err(
                ErrorCode::Storage,
                "Storage failed and could not be read back; restart the SKS",
            ));
        }
        Ok(())
    }
}

/// How durable a call's writes must be before it returns (storage module docs). The steps
/// inside an open provisioning session need only survive a crash of the process: after a power
/// loss the issuer's next call fails and it starts again, and replaying its messages can only
/// redo what it asked for. Everything the user or the issuer is told is final —
/// closeProvisioningSession, abort, PIN/PUK error counters, every User API write — and
/// signProvisioningSessionData, whose key uses the SessionKeyLimit counts, is synced.
pub fn durability_of(request: &Request) -> Durability {
    match request {
        Request::CreateProvisioningSession(_)
        | Request::CreatePukPolicy(_)
        | Request::CreatePinPolicy(_)
        | Request::CreateKeyEntry(_)
        | Request::GetKeyHandle(_)
        | Request::SetCertificatePath(_)
        | Request::ImportSymmetricKey(_)
        | Request::ImportPrivateKey(_)
        | Request::AddExtension(_)
        | Request::PostDeleteKey(_)
        | Request::PostUnlockKey(_)
        | Request::PostUpdateKey(_)
        | Request::PostCloneKeyProtection(_) => Durability::Ordered,
        _ => Durability::Synced,
    }
}

impl<S: Storage> SksApi for Sks<S> {
    /// Executes and stores one call; a PUK check of a "no limit" policy first waits
    /// [`Config::puk_delay`] in the calling thread.
    fn call(&mut self, request: Request) -> Result<Response, SksError> {
        if let Some(d) = self.core.puk_delay_for(&request) {
            std::thread::sleep(d.delay());
            return self.call_after_delay(request, d);
        }
        self.usable()?;
        let durability = durability_of(&request);
        let result = self.core.execute(request);
        self.flush(durability)?;
        result
    }
}

impl SksApi for Core {
    fn call(&mut self, request: Request) -> Result<Response, SksError> {
        if let Some(d) = self.puk_delay_for(&request) {
            std::thread::sleep(d.delay());
            return self.execute_after_delay(request, d);
        }
        self.execute(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn handles_never_wrap_or_repeat() {
        let mut state = State::default();
        state.next_handle = u32::MAX - 2;
        let device = DeviceIdentity::generate("handles").unwrap();
        let mut core = Core::new(state, device, Config::default());
        assert_eq!(core.alloc_handle().unwrap(), u32::MAX - 2);
        assert_eq!(core.alloc_handle().unwrap(), u32::MAX - 1);
        for _ in 0..3 {
            let e = core.alloc_handle().unwrap_err();
            assert_eq!(e.code(), ErrorCode::Storage);
        }
        // A fresh database starts at 1; 0 is never a handle.
        let device = DeviceIdentity::generate("fresh").unwrap();
        let mut core = Core::new(State::default(), device, Config::default());
        assert_eq!(core.alloc_handle().unwrap(), 1);
        assert_eq!(core.alloc_handle().unwrap(), 2);
    }
}
