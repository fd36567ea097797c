//! The Credential Database objects (§3): provisioning sessions, PUK and PIN policies and key
//! entries, plus their record encoding for [`crate::storage`]. Records use the §7.1 codec
//! with a leading format version byte.

use crate::codec::{DecodeError, Reader, WireType, Writer};
use crate::consts::{AppUsage, BiometricProtection, PinFormat, PostOperation, Protection, SubType};
use crate::crypto::SessionKey;
use crate::pin::PinPolicy;
use crate::secret::Secret;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const RECORD_VERSION: u8 = 1;

/// Record kinds in storage.
pub mod kind {
    /// Handle counter.
    pub const META: u8 = 0;
    /// Device key and certificate path.
    pub const DEVICE: u8 = 1;
    /// Provisioning session.
    pub const SESSION: u8 = 2;
    /// PUK policy.
    pub const PUK: u8 = 3;
    /// PIN policy.
    pub const PIN: u8 = 4;
    /// Key entry.
    pub const KEY: u8 = 5;
}

/// A deferred post-provisioning operation (§7.4 postDeleteKey..postCloneKeyProtection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostOp {
    /// Which operation.
    pub method: PostOperation,
    /// The target key (of a closed session).
    pub target: u32,
    /// The new key for update/clone, else 0.
    pub new_key: u32,
}

/// The secret, mutable part of a session that exists only while it is open. Closing a
/// session drops it, so the SessionKey is zeroized and never stored for closed sessions.
#[derive(Debug)]
pub struct OpenState {
    /// SessionKey.
    pub session_key: SessionKey,
    /// MACSequenceCounter.
    pub mac_counter: u16,
    /// Remaining SessionKey operations (SessionKeyLimit).
    pub key_ops_left: u16,
    /// SKS clock (UNIX seconds) at creation; used for the lifetime check.
    pub opened_at: u64,
    /// Queued post-provisioning operations.
    pub post_ops: Vec<PostOp>,
}

/// Session life cycle (§3.3): open (provisioning) or closed (owning provisioned keys).
#[derive(Debug)]
pub enum SessionState {
    /// Provisioning in progress.
    Open(OpenState),
    /// Successfully closed.
    Closed,
}

/// A provisioning object (§3.3, createProvisioningSession).
#[derive(Debug)]
pub struct Session {
    /// ProvisioningHandle.
    pub handle: u32,
    /// PEP mode.
    pub privacy_enabled: bool,
    /// ClientSessionID.
    pub client_session_id: String,
    /// ServerSessionID.
    pub server_session_id: String,
    /// IssuerURI.
    pub issuer_uri: String,
    /// KeyManagementKey (SPKI) or empty.
    pub key_management_key: Vec<u8>,
    /// ClientTime.
    pub client_time: u32,
    /// SessionLifeTime.
    pub session_life_time: u32,
    /// Open or closed.
    pub state: SessionState,
}

impl Session {
    /// True while provisioning is in progress.
    pub fn is_open(&self) -> bool {
        matches!(self.state, SessionState::Open(_))
    }

    /// The open state, if open.
    pub fn open_state(&self) -> Option<&OpenState> {
        match &self.state {
            SessionState::Open(o) => Some(o),
            SessionState::Closed => None,
        }
    }

    /// The open state, if open.
    pub fn open_state_mut(&mut self) -> Option<&mut OpenState> {
        match &mut self.state {
            SessionState::Open(o) => Some(o),
            SessionState::Closed => None,
        }
    }
}

/// A PUK policy object (createPUKPolicy).
#[derive(Debug)]
pub struct PukPolicy {
    /// Handle.
    pub handle: u32,
    /// Owning session.
    pub session: u32,
    /// ID.
    pub id: String,
    /// Decrypted PUK.
    pub value: Secret,
    /// Format.
    pub format: PinFormat,
    /// RetryLimit (0 = unlimited, delayed).
    pub retry_limit: u16,
    /// Error count.
    pub error_count: u16,
}

/// A stored PIN policy object (createPINPolicy): the policy plus where it lives.
#[derive(Debug, Clone)]
pub struct PinPolicyEntry {
    /// Handle.
    pub handle: u32,
    /// Owning session.
    pub session: u32,
    /// PUK policy handle or 0.
    pub puk: u32,
    /// The policy.
    pub policy: PinPolicy,
}

/// An extension object (addExtension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Type URI.
    pub type_uri: String,
    /// SubType.
    pub sub_type: SubType,
    /// Qualifier.
    pub qualifier: String,
    /// Data (decrypted for EncryptedExtension).
    pub data: Vec<u8>,
}

/// The protection attributes of a key entry (createKeyEntry, §5.1–§5.4, §5.8): one type for
/// the issuer that requests them, the SKS that stores and enforces them, and
/// getKeyProtectionInfo that reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProtection {
    /// EnablePINCaching.
    pub enable_pin_caching: bool,
    /// BiometricProtection.
    pub biometric: BiometricProtection,
    /// ExportProtection.
    pub export_protection: Protection,
    /// DeleteProtection.
    pub delete_protection: Protection,
    /// AppUsage.
    pub app_usage: AppUsage,
}

impl Default for KeyProtection {
    /// No caching, no biometrics, export and delete unprotected, universal usage.
    fn default() -> Self {
        Self {
            enable_pin_caching: false,
            biometric: BiometricProtection::None,
            export_protection: Protection::None,
            delete_protection: Protection::None,
            app_usage: AppUsage::Universal,
        }
    }
}

/// A key entry (§3.1).
#[derive(Debug)]
pub struct KeyEntry {
    /// KeyHandle.
    pub handle: u32,
    /// Owning session.
    pub session: u32,
    /// ID.
    pub id: String,
    /// KeyAlgorithm URI used at generation.
    pub key_algorithm: String,
    /// PIN policy handle or 0.
    pub pin_policy: u32,
    /// Device PIN protection.
    pub device_pin: bool,
    /// PIN value (local PIN policy only).
    pub pin_value: Secret,
    /// PIN error count.
    pub pin_error_count: u16,
    /// Caching, biometric, export and delete protection, AppUsage.
    pub protection: KeyProtection,
    /// FriendlyName.
    pub friendly_name: String,
    /// Generated public key (SPKI).
    pub public_key: Vec<u8>,
    /// PKCS#8 private key.
    pub private_key: Secret,
    /// Imported symmetric key.
    pub symmetric_key: Option<Secret>,
    /// Certificate path, EE first.
    pub certificate_path: Vec<Vec<u8>>,
    /// Endorsed algorithms.
    pub endorsed: Vec<String>,
    /// Extensions.
    pub extensions: Vec<Extension>,
    /// KeyBackup bits.
    pub key_backup: u8,
}

impl KeyEntry {
    /// certificate\[0\], if set.
    pub fn ee_certificate(&self) -> Option<&[u8]> {
        self.certificate_path.first().map(Vec::as_slice)
    }
}

/// What a [`Table`] files its objects under besides their handle: the provisioning session
/// that owns them, so the objects of one session are found without a walk over the table.
pub trait Owned {
    /// The owning session's handle (a session is filed under its own handle).
    fn owner(&self) -> u32;
}

/// An object whose ownership closeProvisioningSession can hand to another session (byte
/// layouts §8.7).
pub trait Transferable: Owned {
    /// Sets the owning session.
    fn set_owner(&mut self, owner: u32);
}

macro_rules! owned_by_session_field {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            fn owner(&self) -> u32 {
                self.session
            }
        }
        impl Transferable for $t {
            fn set_owner(&mut self, owner: u32) {
                self.session = owner;
            }
        }
    )*};
}
owned_by_session_field!(KeyEntry, PinPolicyEntry, PukPolicy);

/// An object kept in one of the [`State`]'s tables.
pub(crate) trait InState: Owned + Sized {
    /// Its table.
    fn table(state: &mut State) -> &mut Table<Self>;
}

macro_rules! in_state {
    ($($t:ty => $table:ident),*) => {$(
        impl InState for $t {
            fn table(state: &mut State) -> &mut Table<Self> {
                &mut state.$table
            }
        }
    )*};
}

in_state!(PukPolicy => puks, PinPolicyEntry => pins, KeyEntry => keys);

impl Owned for Session {
    fn owner(&self) -> u32 {
        self.handle
    }
}

/// One table of the Credential Database: objects by handle, plus the handles changed since
/// the last [`State::take_changes`] and an index of the objects by owning session. Reads go
/// through `Deref` to the map; every way to change an object is a method here that records
/// its handle, so a call writes only the records it changed (there is no `DerefMut`: a
/// mutation that bypasses the tracking does not compile). The owner changes only through
/// [`Table::transfer`].
#[derive(Debug)]
pub struct Table<T> {
    map: BTreeMap<u32, T>,
    dirty: BTreeSet<u32>,
    /// (owner, handle) of every object.
    by_owner: BTreeSet<(u32, u32)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            dirty: BTreeSet::new(),
            by_owner: BTreeSet::new(),
        }
    }
}

impl<T> std::ops::Deref for Table<T> {
    type Target = BTreeMap<u32, T>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<T: Owned> Table<T> {
    /// Mutable access to one object; marks it changed.
    pub fn get_mut(&mut self, handle: &u32) -> Option<&mut T> {
        let v = self.map.get_mut(handle)?;
        self.dirty.insert(*handle);
        Some(v)
    }

    /// Inserts or replaces an object; marks it changed.
    pub fn insert(&mut self, handle: u32, value: T) -> Option<T> {
        self.dirty.insert(handle);
        let owner = value.owner();
        let old = self.map.insert(handle, value);
        if let Some(o) = &old {
            self.by_owner.remove(&(o.owner(), handle));
        }
        self.by_owner.insert((owner, handle));
        old
    }

    /// Removes an object; marks it changed (its record is deleted).
    pub fn remove(&mut self, handle: &u32) -> Option<T> {
        let v = self.map.remove(handle)?;
        self.dirty.insert(*handle);
        self.by_owner.remove(&(v.owner(), *handle));
        Some(v)
    }

    /// The objects of session `owner`, in handle order.
    pub fn owned_by(&self, owner: u32) -> impl Iterator<Item = &T> {
        self.handles_owned_by(owner)
            .filter_map(|h| self.map.get(&h))
    }

    fn handles_owned_by(&self, owner: u32) -> impl Iterator<Item = u32> + '_ {
        self.by_owner
            .range((owner, 0)..=(owner, u32::MAX))
            .map(|(_, h)| *h)
    }

    /// The objects with a handle above `handle`. Handles are handed out in increasing order and
    /// never reused, so an object created after another has a larger handle: the objects of an
    /// open session, and the objects referring to a given PIN or PUK policy (a reference can
    /// only name an object that already exists), are all found here.
    pub fn after(&self, handle: u32) -> impl Iterator<Item = &T> {
        self.map
            .range((
                std::ops::Bound::Excluded(handle),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, v)| v)
    }

    /// Removes every object of session `owner`; marks those.
    pub fn remove_owned_by(&mut self, owner: u32) {
        let gone: Vec<u32> = self.handles_owned_by(owner).collect();
        for h in gone {
            self.remove(&h);
        }
    }

    /// The changed handles since the last call, clearing the set.
    fn take_dirty(&mut self) -> BTreeSet<u32> {
        // Every changed object is still filed under its owner (no owner changed behind
        // `transfer`'s back through `get_mut`).
        debug_assert!(self.dirty.iter().all(|h| self
            .map
            .get(h)
            .is_none_or(|v| self.by_owner.contains(&(v.owner(), *h)))));
        std::mem::take(&mut self.dirty)
    }
}

impl<T: Transferable> Table<T> {
    /// Hands every object of session `from` to session `to`; marks those.
    pub fn transfer(&mut self, from: u32, to: u32) {
        let moved: Vec<u32> = self.handles_owned_by(from).collect();
        for h in moved {
            if let Some(v) = self.map.get_mut(&h) {
                v.set_owner(to);
                self.dirty.insert(h);
                self.by_owner.remove(&(from, h));
                self.by_owner.insert((to, h));
            }
        }
    }
}

/// The sessions [`Table`] with the two facts createProvisioningSession needs on every call
/// kept alongside it: which sessions are open (the open-session limit, the expiry sweep) and
/// which ClientSessionIDs are taken, so neither visits every session of a large store. Every
/// change goes through a method here that keeps them right; a session's open state is only
/// reachable through [`Sessions::open_state_mut`], which cannot close it.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Table<Session>,
    open: BTreeSet<u32>,
    client_ids: HashMap<String, u32>,
}

impl std::ops::Deref for Sessions {
    type Target = BTreeMap<u32, Session>;
    fn deref(&self) -> &Self::Target {
        &self.table.map
    }
}

impl Sessions {
    /// Inserts or replaces a session under its handle; marks it changed.
    pub fn insert(&mut self, session: Session) {
        let handle = session.handle;
        self.forget(handle);
        if session.is_open() {
            self.open.insert(handle);
        }
        self.client_ids
            .insert(session.client_session_id.clone(), handle);
        self.table.insert(handle, session);
    }

    /// Removes a session; marks it changed (its record is deleted).
    pub fn remove(&mut self, handle: &u32) -> Option<Session> {
        self.forget(*handle);
        self.table.remove(handle)
    }

    fn forget(&mut self, handle: u32) {
        self.open.remove(&handle);
        if let Some(s) = self.table.get(&handle) {
            if self.client_ids.get(&s.client_session_id) == Some(&handle) {
                self.client_ids.remove(&s.client_session_id);
            }
        }
    }

    /// The open state of session `handle`, if it is open; marks it changed.
    pub fn open_state_mut(&mut self, handle: &u32) -> Option<&mut OpenState> {
        if !self.open.contains(handle) {
            return None;
        }
        self.table.get_mut(handle)?.open_state_mut()
    }

    /// Closes session `handle` (dropping its open state, which zeroizes the SessionKey).
    pub fn close(&mut self, handle: &u32) {
        if self.open.remove(handle) {
            if let Some(s) = self.table.get_mut(handle) {
                s.state = SessionState::Closed;
            }
        }
    }

    /// How many sessions are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The handles of the open sessions, in order.
    pub fn open_handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.open.iter().copied()
    }

    /// True if a session with this ClientSessionID exists.
    pub fn has_client_session_id(&self, id: &str) -> bool {
        self.client_ids.contains_key(id)
    }
}

/// The whole Credential Database in memory.
#[derive(Debug, Default)]
pub struct State {
    /// Next object handle (handles are never reused).
    pub next_handle: u32,
    /// The `next_handle` value last written to storage.
    stored_next_handle: u32,
    /// Sessions.
    pub sessions: Sessions,
    /// PUK policies.
    pub puks: Table<PukPolicy>,
    /// PIN policies.
    pub pins: Table<PinPolicyEntry>,
    /// Keys.
    pub keys: Table<KeyEntry>,
    /// Keys by end-entity certificate.
    pub(crate) certificates: CertificateIndex,
}

/// Keys by the SHA-256 digest of their end-entity certificate, so closeProvisioningSession's
/// duplicate-certificate check looks at the keys holding that certificate, not at every key.
/// A key's certificate path is set once (setCertificatePath) and never changed. Entries of
/// removed keys are dropped when the removal is stored ([`State::take_changes`]); until then
/// [`CertificateIndex::holders`] may still name them, so callers look each holder up.
#[derive(Debug, Default)]
pub(crate) struct CertificateIndex {
    by_digest: BTreeMap<[u8; 32], BTreeSet<u32>>,
    digest_of: BTreeMap<u32, [u8; 32]>,
}

impl CertificateIndex {
    fn digest(certificate: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(certificate).into()
    }

    /// Records that key `handle` holds end-entity certificate `ee`.
    pub(crate) fn add(&mut self, handle: u32, ee: &[u8]) {
        let d = Self::digest(ee);
        self.by_digest.entry(d).or_default().insert(handle);
        self.digest_of.insert(handle, d);
    }

    fn forget(&mut self, handle: u32) {
        let Some(d) = self.digest_of.remove(&handle) else {
            return;
        };
        if let Some(set) = self.by_digest.get_mut(&d) {
            set.remove(&handle);
            if set.is_empty() {
                self.by_digest.remove(&d);
            }
        }
    }

    /// Handles of the keys given certificate `ee` (possibly removed since).
    pub(crate) fn holders(&self, ee: &[u8]) -> impl Iterator<Item = u32> + '_ {
        self.by_digest
            .get(&Self::digest(ee))
            .into_iter()
            .flatten()
            .copied()
    }
}

/// One record change: the new bytes, or `None` to delete the record.
pub type RecordChange = (RecordId, Option<Secret>);

/// Storage record id: (kind, handle).
pub type RecordId = (u8, u32);

fn start(w: &mut Writer) {
    w.byte(RECORD_VERSION);
}

/// The start of a provisioning object's record (PUK policy, PIN policy, key entry): its
/// handle, its session and its ID.
fn object_record(handle: u32, session: u32, id: &str) -> Writer {
    let mut w = Writer::new();
    start(&mut w);
    w.int(handle).int(session).blob(id.as_bytes());
    w
}

fn check_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.byte()? {
        RECORD_VERSION => Ok(()),
        other => Err(DecodeError::UnknownVersion(other)),
    }
}

/// An `int` element count.
fn put_count(w: &mut Writer, n: usize) -> Result<(), DecodeError> {
    w.int(u32::try_from(n).map_err(|_| DecodeError::TooLong)?);
    Ok(())
}

fn put_list(w: &mut Writer, items: &[Vec<u8>]) -> Result<(), DecodeError> {
    put_count(w, items.len())?;
    for i in items {
        w.blob(i);
    }
    Ok(())
}

fn get_list(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let n = r.int()?;
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(r.blob()?);
    }
    Ok(v)
}

fn get_string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    String::from_utf8(r.blob()?).map_err(|_| DecodeError::InvalidUtf8)
}

fn encode_meta(next_handle: u32) -> Result<Secret, DecodeError> {
    let mut w = Writer::new();
    start(&mut w);
    w.int(next_handle);
    Ok(Secret::new(w.into_bytes()?))
}

fn encode_session(s: &Session) -> Result<Secret, DecodeError> {
    let mut w = Writer::new();
    start(&mut w);
    w.int(s.handle).boolean(s.privacy_enabled);
    w.blob(s.client_session_id.as_bytes())
        .blob(s.server_session_id.as_bytes());
    w.blob(s.issuer_uri.as_bytes()).blob(&s.key_management_key);
    w.int(s.client_time).int(s.session_life_time);
    match &s.state {
        SessionState::Closed => {
            w.boolean(false);
        }
        SessionState::Open(o) => {
            w.boolean(true).short(o.key_ops_left).short(o.mac_counter);
            w.blob(o.session_key.expose())
                .verbatim(&o.opened_at.to_be_bytes());
            put_count(&mut w, o.post_ops.len())?;
            for op in &o.post_ops {
                w.byte(op.method.into()).int(op.target).int(op.new_key);
            }
        }
    }
    Ok(Secret::new(w.into_bytes()?))
}

fn encode_puk(p: &PukPolicy) -> Result<Secret, DecodeError> {
    let mut w = object_record(p.handle, p.session, &p.id);
    w.blob(p.value.expose());
    w.byte(p.format.into())
        .short(p.retry_limit)
        .short(p.error_count);
    Ok(Secret::new(w.into_bytes()?))
}

fn encode_pin(p: &PinPolicyEntry) -> Result<Secret, DecodeError> {
    let q = &p.policy;
    let mut w = object_record(p.handle, p.session, &q.id);
    w.int(p.puk);
    // The attributes in their wire order (§7.4 createPINPolicy), read back by the same type.
    q.attributes.put(&mut w);
    Ok(Secret::new(w.into_bytes()?))
}

/// The record changes of one table: the current encoding of each changed object that still
/// exists, a delete for each one that is gone.
fn table_changes<T: Owned>(
    table: &mut Table<T>,
    record_kind: u8,
    encode: impl Fn(&T) -> Result<Secret, DecodeError>,
    out: &mut Vec<RecordChange>,
) -> Result<(), DecodeError> {
    for h in table.take_dirty() {
        let data = match table.map.get(&h) {
            Some(v) => Some(encode(v)?),
            None => None,
        };
        out.push(((record_kind, h), data));
    }
    Ok(())
}

impl State {
    /// Serializes every object to its record (fails only on a list longer than 2^32 - 1 or a
    /// value longer than its length prefix).
    pub fn to_records(&self) -> Result<BTreeMap<RecordId, Secret>, DecodeError> {
        let mut out = BTreeMap::new();
        out.insert((kind::META, 0), encode_meta(self.next_handle)?);
        for s in self.sessions.values() {
            out.insert((kind::SESSION, s.handle), encode_session(s)?);
        }
        for p in self.puks.values() {
            out.insert((kind::PUK, p.handle), encode_puk(p)?);
        }
        for p in self.pins.values() {
            out.insert((kind::PIN, p.handle), encode_pin(p)?);
        }
        for k in self.keys.values() {
            out.insert((kind::KEY, k.handle), Secret::new(encode_key(k)?));
        }
        Ok(out)
    }

    /// The records changed since the last call (objects written, created or removed, and the
    /// handle counter), clearing the change sets: a call costs storage work in proportion to
    /// what it changed, not to the size of the database.
    pub fn take_changes(&mut self) -> Result<Vec<RecordChange>, DecodeError> {
        let mut out = Vec::new();
        if self.next_handle != self.stored_next_handle {
            out.push(((kind::META, 0), Some(encode_meta(self.next_handle)?)));
            self.stored_next_handle = self.next_handle;
        }
        table_changes(
            &mut self.sessions.table,
            kind::SESSION,
            encode_session,
            &mut out,
        )?;
        table_changes(&mut self.puks, kind::PUK, encode_puk, &mut out)?;
        table_changes(&mut self.pins, kind::PIN, encode_pin, &mut out)?;
        for h in &self.keys.dirty {
            if !self.keys.map.contains_key(h) {
                self.certificates.forget(*h);
            }
        }
        table_changes(
            &mut self.keys,
            kind::KEY,
            |k| encode_key(k).map(Secret::new),
            &mut out,
        )?;
        Ok(out)
    }

    /// Rebuilds the state from records; unknown kinds are ignored (the device record is
    /// read by [`crate::device`]).
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (&'a RecordId, &'a Secret)>,
    ) -> Result<Self, DecodeError> {
        let mut st = State::default();
        for (&(k, _), data) in records {
            let mut r = Reader::new(data.expose());
            match k {
                kind::META => {
                    check_version(&mut r)?;
                    st.next_handle = r.int()?;
                }
                kind::SESSION => {
                    check_version(&mut r)?;
                    let s = decode_session(&mut r)?;
                    st.sessions.insert(s);
                }
                kind::PUK => {
                    check_version(&mut r)?;
                    let p = PukPolicy {
                        handle: r.int()?,
                        session: r.int()?,
                        id: get_string(&mut r)?,
                        value: Secret::new(r.blob()?),
                        format: WireType::get(&mut r)?,
                        retry_limit: r.short()?,
                        error_count: r.short()?,
                    };
                    st.puks.insert(p.handle, p);
                }
                kind::PIN => {
                    check_version(&mut r)?;
                    let handle = r.int()?;
                    let session = r.int()?;
                    let id = get_string(&mut r)?;
                    let p = PinPolicyEntry {
                        handle,
                        session,
                        puk: r.int()?,
                        policy: PinPolicy {
                            id,
                            attributes: WireType::get(&mut r)?,
                        },
                    };
                    st.pins.insert(p.handle, p);
                }
                kind::KEY => {
                    check_version(&mut r)?;
                    let k = decode_key(&mut r)?;
                    if let Some(ee) = k.ee_certificate() {
                        st.certificates.add(k.handle, ee);
                    }
                    st.keys.insert(k.handle, k);
                }
                _ => continue,
            }
            r.finish()?;
        }
        // What was just loaded is what storage holds.
        st.stored_next_handle = st.next_handle;
        st.sessions.table.take_dirty();
        st.puks.take_dirty();
        st.pins.take_dirty();
        st.keys.take_dirty();
        Ok(st)
    }
}

fn decode_session(r: &mut Reader<'_>) -> Result<Session, DecodeError> {
    let handle = r.int()?;
    let privacy_enabled = r.boolean()?;
    let client_session_id = get_string(r)?;
    let server_session_id = get_string(r)?;
    let issuer_uri = get_string(r)?;
    let key_management_key = r.blob()?;
    let client_time = r.int()?;
    let session_life_time = r.int()?;
    let state = if r.boolean()? {
        let key_ops_left = r.short()?;
        let mac_counter = r.short()?;
        let sk = Secret::new(r.blob()?);
        let session_key =
            SessionKey::from_bytes(sk.expose()).ok_or(DecodeError::Truncated("session key"))?;
        let hi = u64::from(r.int()?);
        let lo = u64::from(r.int()?);
        let n = r.int()?;
        let mut post_ops = Vec::new();
        for _ in 0..n {
            post_ops.push(PostOp {
                method: WireType::get(r)?,
                target: r.int()?,
                new_key: r.int()?,
            });
        }
        SessionState::Open(OpenState {
            session_key,
            mac_counter,
            key_ops_left,
            opened_at: (hi << 32) | lo,
            post_ops,
        })
    } else {
        SessionState::Closed
    };
    Ok(Session {
        handle,
        privacy_enabled,
        client_session_id,
        server_session_id,
        issuer_uri,
        key_management_key,
        client_time,
        session_life_time,
        state,
    })
}

fn encode_key(k: &KeyEntry) -> Result<Vec<u8>, DecodeError> {
    let mut w = object_record(k.handle, k.session, &k.id);
    w.blob(k.key_algorithm.as_bytes());
    w.int(k.pin_policy)
        .boolean(k.device_pin)
        .blob(k.pin_value.expose());
    w.short(k.pin_error_count)
        .boolean(k.protection.enable_pin_caching)
        .byte(k.protection.biometric.into());
    w.byte(k.protection.export_protection.into())
        .byte(k.protection.delete_protection.into())
        .byte(k.protection.app_usage.into());
    w.blob(k.friendly_name.as_bytes())
        .blob(&k.public_key)
        .blob(k.private_key.expose());
    match &k.symmetric_key {
        Some(s) => w.boolean(true).blob(s.expose()),
        None => w.boolean(false),
    };
    put_list(&mut w, &k.certificate_path)?;
    let endorsed: Vec<Vec<u8>> = k.endorsed.iter().map(|s| s.as_bytes().to_vec()).collect();
    put_list(&mut w, &endorsed)?;
    put_count(&mut w, k.extensions.len())?;
    for e in &k.extensions {
        w.blob(e.type_uri.as_bytes())
            .byte(e.sub_type.into())
            .blob(e.qualifier.as_bytes());
        w.blob(&e.data);
    }
    w.byte(k.key_backup);
    w.into_bytes()
}

fn decode_key(r: &mut Reader<'_>) -> Result<KeyEntry, DecodeError> {
    let handle = r.int()?;
    let session = r.int()?;
    let id = get_string(r)?;
    let key_algorithm = get_string(r)?;
    let pin_policy = r.int()?;
    let device_pin = r.boolean()?;
    let pin_value = Secret::new(r.blob()?);
    let pin_error_count = r.short()?;
    let protection = KeyProtection {
        enable_pin_caching: r.boolean()?,
        biometric: WireType::get(r)?,
        export_protection: WireType::get(r)?,
        delete_protection: WireType::get(r)?,
        app_usage: WireType::get(r)?,
    };
    let friendly_name = get_string(r)?;
    let public_key = r.blob()?;
    let private_key = Secret::new(r.blob()?);
    let symmetric_key = if r.boolean()? {
        Some(Secret::new(r.blob()?))
    } else {
        None
    };
    let certificate_path = get_list(r)?;
    let endorsed = get_list(r)?
        .into_iter()
        .map(|b| String::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8))
        .collect::<Result<Vec<_>, _>>()?;
    let n = r.int()?;
    let mut extensions = Vec::new();
    for _ in 0..n {
        extensions.push(Extension {
            type_uri: get_string(r)?,
            sub_type: WireType::get(r)?,
            qualifier: get_string(r)?,
            data: r.blob()?,
        });
    }
    let key_backup = r.byte()?;
    Ok(KeyEntry {
        handle,
        session,
        id,
        key_algorithm,
        pin_policy,
        device_pin,
        pin_value,
        pin_error_count,
        protection,
        friendly_name,
        public_key,
        private_key,
        symmetric_key,
        certificate_path,
        endorsed,
        extensions,
        key_backup,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn session(handle: u32, id: &str, open: bool) -> Session {
        Session {
            handle,
            privacy_enabled: false,
            client_session_id: id.to_owned(),
            server_session_id: "S".to_owned(),
            issuer_uri: "https://issuer.example.com".to_owned(),
            key_management_key: Vec::new(),
            client_time: 0,
            session_life_time: 3600,
            state: if open {
                SessionState::Open(OpenState {
                    session_key: SessionKey::from_bytes(&[7; 32]).unwrap(),
                    mac_counter: 0,
                    key_ops_left: 10,
                    opened_at: 0,
                    post_ops: Vec::new(),
                })
            } else {
                SessionState::Closed
            },
        }
    }

    /// The open set and the ClientSessionID index agree with a walk over the sessions.
    fn assert_indexed(s: &Sessions) {
        let open: Vec<u32> = s
            .values()
            .filter(|x| x.is_open())
            .map(|x| x.handle)
            .collect();
        assert_eq!(s.open_handles().collect::<Vec<_>>(), open);
        assert_eq!(s.open_count(), open.len());
        assert_eq!(s.client_ids.len(), s.len());
        for x in s.values() {
            assert!(s.has_client_session_id(&x.client_session_id));
        }
    }

    fn puk(handle: u32, session: u32) -> PukPolicy {
        PukPolicy {
            handle,
            session,
            id: format!("PUK.{handle}"),
            value: Secret::from_slice(b"1234"),
            format: PinFormat::try_from(0).unwrap(),
            retry_limit: 3,
            error_count: 0,
        }
    }

    fn owned(t: &Table<PukPolicy>, owner: u32) -> Vec<u32> {
        t.owned_by(owner).map(|p| p.handle).collect()
    }

    #[test]
    fn owner_index_follows_every_change_and_a_reload() {
        let mut st = State::default();
        for (h, s) in [(2, 1), (3, 1), (5, 4), (6, 4), (8, 7)] {
            st.puks.insert(h, puk(h, s));
        }
        st.puks.transfer(1, 7);
        assert_eq!(owned(&st.puks, 1), Vec::<u32>::new());
        assert_eq!(owned(&st.puks, 7), vec![2, 3, 8]);
        assert_eq!(st.puks.get(&2).unwrap().session, 7);
        st.puks.remove_owned_by(4);
        assert_eq!(st.puks.keys().copied().collect::<Vec<_>>(), vec![2, 3, 8]);
        // Replaced under the same handle with another owner.
        st.puks.insert(3, puk(3, 9));
        st.puks.remove(&8);
        assert_eq!(owned(&st.puks, 7), vec![2]);
        assert_eq!(owned(&st.puks, 9), vec![3]);
        st.take_changes().unwrap();
        let loaded = State::from_records(st.to_records().unwrap().iter()).unwrap();
        assert_eq!(owned(&loaded.puks, 7), vec![2]);
        assert_eq!(owned(&loaded.puks, 9), vec![3]);
    }

    #[test]
    fn session_index_follows_every_change_and_a_reload() {
        let mut st = State::default();
        st.sessions.insert(session(1, "C1", true));
        st.sessions.insert(session(2, "C2", false));
        st.sessions.insert(session(3, "C3", true));
        assert_indexed(&st.sessions);
        assert_eq!(st.sessions.open_count(), 2);

        st.sessions.close(&1);
        assert!(st.sessions.open_state_mut(&1).is_none());
        assert!(st.sessions.open_state_mut(&3).is_some());
        st.sessions.remove(&2);
        assert!(!st.sessions.has_client_session_id("C2"));
        // A replaced session takes its new state and ID.
        st.sessions.insert(session(3, "C3b", false));
        assert!(!st.sessions.has_client_session_id("C3"));
        assert_indexed(&st.sessions);
        assert_eq!(st.sessions.open_count(), 0);

        st.sessions.insert(session(4, "C4", true));
        let records = st.to_records().unwrap();
        let loaded = State::from_records(records.iter()).unwrap();
        assert_indexed(&loaded.sessions);
        assert_eq!(loaded.sessions.open_handles().collect::<Vec<_>>(), vec![4]);
        assert!(loaded.sessions.has_client_session_id("C1"));
    }
}
