//! The master key in a PKCS#11 token (PKCS#11 v2.40 base specification).
//!
//! KDF3 runs inside the token: each AES-CMAC PRF block is one `C_Sign` with
//! `CKM_AES_CMAC` (§2.10 of the PKCS#11 current mechanisms specification)
//! under the master key object, so an issuance costs one `C_SignInit` +
//! `C_Sign` pair per 128-bit block: 6 calls for an AES-128 master key
//! (ENC, MAC, DEK), 12 for AES-256. Only the derived static keys leave the
//! token.
//!
//! Sessions: at most `sessions` read-only sessions are open at once (the
//! worker count by default); a request takes an idle one or waits for one.
//! The user login is per application (§5.6), done once on the first session.
//!
//! Token errors (removed, not logged in, session or key handle gone, device
//! error, PIN locked) drop every session and answer [`KeyError::Unavailable`];
//! the next request reconnects (finds the slot by token label, logs in, finds
//! the key by label), so the server recovers without a restart once the token
//! is back. A rejected PIN is not retried (each retry would count towards
//! locking the PIN): a restart with the right PIN is needed.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use kf_crypto::{AesKey, StaticKeys};
use zeroize::{Zeroize, Zeroizing};

use super::{KeyBackend, KeyError, RECEIPT_LABEL};
use kf_crypto::kdf::{kdf3_prf_input, STATIC_KEY_LABELS};

/// How long a request waits for a free session before it gets 503.
const SESSION_WAIT: Duration = Duration::from_secs(5);

/// Which token holds the key.
#[derive(Clone, Debug)]
pub enum TokenSelector {
    /// The token with this label (`CK_TOKEN_INFO.label`, trailing blanks ignored).
    Label(String),
    /// A fixed slot id.
    Slot(u64),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "token {l:?}"),
            TokenSelector::Slot(s) => write!(f, "slot {s}"),
        }
    }
}

/// Everything needed to reach the key.
pub struct Pkcs11Settings {
    /// The vendor's PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token.
    pub token: TokenSelector,
    /// `CKA_LABEL` of the master key object.
    pub key_label: String,
    /// User PIN.
    pub pin: AuthPin,
    /// Most sessions open at once (at least 1).
    pub sessions: usize,
}

struct Connection {
    slot: Slot,
    key: ObjectHandle,
    key_bits: u16,
}

struct Pool {
    conn: Option<Connection>,
    idle: Vec<Session>,
    /// Sessions open (idle or lent out) of the current connection.
    open: usize,
    /// Bumped on every reset; a session of an older generation is closed on return.
    generation: u64,
    /// Bumped on every module re-initialization; a session of an older epoch
    /// is forgotten, not closed (its handle may belong to a new session).
    epoch: u64,
    /// A login failed with a wrong PIN: no further attempts.
    pin_rejected: bool,
}

/// Master key in a PKCS#11 token.
pub struct Pkcs11Key {
    ctx: Pkcs11,
    module: PathBuf,
    token: TokenSelector,
    key_label: String,
    pin: AuthPin,
    sessions: usize,
    pool: Mutex<Pool>,
    freed: Condvar,
}

struct Lease {
    session: Session,
    key: ObjectHandle,
    key_bits: u16,
    generation: u64,
    epoch: u64,
}

/// Short name of a PKCS#11 return value (`CKR_…` in the spec); the crate's
/// long descriptions are not useful in a log line.
fn rv_name(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Token-level failures after which every session is dropped and the next
/// request reconnects.
fn is_token_error(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::CryptokiNotInitialized
                | RvError::GeneralError,
            _
        )
    )
}

fn unavailable(e: &CkError) -> KeyError {
    let hint = match e {
        CkError::Pkcs11(RvError::PinLocked, _) => "the user PIN is locked",
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            "the token is not present"
        }
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) => "the session is not logged in",
        _ => "token error",
    };
    KeyError::Unavailable(format!("{hint} ({})", rv_name(e)))
}

/// Loads and initializes a PKCS#11 module.
pub fn load_module(module: &std::path::Path) -> Result<Pkcs11, KeyError> {
    if !module.is_file() {
        return Err(KeyError::Config(format!(
            "PKCS#11 module {} not found",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        KeyError::Config(format!(
            "PKCS#11 module {} could not be loaded: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(KeyError::Config(format!(
            "PKCS#11 module {}: C_Initialize failed ({})",
            module.display(),
            rv_name(&e)
        ))),
    }
}

/// The slot of the selected token.
pub fn find_slot(ctx: &Pkcs11, token: &TokenSelector) -> Result<Slot, CkError> {
    let slots = ctx.get_slots_with_token()?;
    for slot in slots {
        let wanted = match token {
            TokenSelector::Slot(id) => slot.id() == *id,
            TokenSelector::Label(label) => {
                ctx.get_token_info(slot)?.label().trim_end() == label.as_str()
            }
        };
        if wanted {
            return Ok(slot);
        }
    }
    Err(CkError::Pkcs11(
        RvError::TokenNotPresent,
        cryptoki::context::Function::GetSlotList,
    ))
}

/// Logs the application in (already logged in is fine).
pub fn login(session: &Session, pin: &AuthPin) -> Result<(), CkError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Template that finds the master key (an AES secret key with this label).
pub fn key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn lock(pool: &Mutex<Pool>) -> Result<MutexGuard<'_, Pool>, KeyError> {
    pool.lock()
        .map_err(|_| KeyError::Failed("session pool lock poisoned".into()))
}

impl Pkcs11Key {
    /// Loads the module, logs in and finds the key; configuration errors
    /// (module, token, PIN, key label) are reported here, before serving.
    pub fn open(settings: Pkcs11Settings) -> Result<Pkcs11Key, KeyError> {
        let ctx = load_module(&settings.module)?;
        let key = Pkcs11Key {
            ctx,
            module: settings.module,
            token: settings.token,
            key_label: settings.key_label,
            pin: settings.pin,
            sessions: settings.sessions.max(1),
            pool: Mutex::new(Pool {
                conn: None,
                idle: Vec::new(),
                open: 0,
                generation: 0,
                epoch: 0,
                pin_rejected: false,
            }),
            freed: Condvar::new(),
        };
        {
            let mut pool = lock(&key.pool)?;
            let session = key.connect(&mut pool)?;
            pool.open = 1;
            pool.idle.push(session);
        }
        Ok(key)
    }

    /// Size of the session pool.
    pub fn session_limit(&self) -> usize {
        self.sessions
    }

    /// Connects (slot, login, key) and returns the first session.
    fn connect(&self, pool: &mut Pool) -> Result<Session, KeyError> {
        if pool.pin_rejected {
            return Err(KeyError::Unavailable(
                "the token rejected the configured PIN; fix the PIN and restart".into(),
            ));
        }
        let slot = match find_slot(&self.ctx, &self.token) {
            Ok(slot) => slot,
            Err(first) => {
                // A module keeps a removed token's state until it is
                // initialized again (§5.4 C_Finalize / C_Initialize).
                tracing::warn!(error = %rv_name(&first), "token not found; re-initializing the PKCS#11 module");
                self.reinitialize(pool);
                find_slot(&self.ctx, &self.token).map_err(|e| match e {
                    CkError::Pkcs11(RvError::TokenNotPresent, _) => {
                        KeyError::Unavailable(format!("{} is not present", self.token))
                    }
                    other => unavailable(&other),
                })?
            }
        };
        let session = self
            .ctx
            .open_ro_session_no_drop(slot)
            .map_err(|e| unavailable(&e))?;
        login(&session, &self.pin).map_err(|e| match e {
            CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                _,
            ) => {
                pool.pin_rejected = true;
                KeyError::Config(format!(
                    "login to {} failed: the user PIN was rejected ({})",
                    self.token,
                    rv_name(&e)
                ))
            }
            other => unavailable(&other),
        })?;
        let found = session
            .find_objects(&key_template(&self.key_label))
            .map_err(|e| unavailable(&e))?;
        let key = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(KeyError::Config(format!(
                    "no AES key labelled {:?} on {} (create it with `kf-klms hsm init`)",
                    self.key_label, self.token
                )))
            }
            _ => {
                return Err(KeyError::Config(format!(
                    "{} AES keys labelled {:?} on {}; the label must be unique",
                    found.len(),
                    self.key_label,
                    self.token
                )))
            }
        };
        let attrs = session
            .get_attributes(key, &[AttributeType::ValueLen])
            .map_err(|e| unavailable(&e))?;
        let key_bits = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::ValueLen(len) => usize::from(*len)
                    .checked_mul(8)
                    .and_then(|b| u16::try_from(b).ok()),
                _ => None,
            })
            .filter(|bits| matches!(bits, 128 | 192 | 256))
            .ok_or_else(|| {
                KeyError::Config(format!(
                    "key {:?} has no AES key length (CKA_VALUE_LEN)",
                    self.key_label
                ))
            })?;
        pool.conn = Some(Connection {
            slot,
            key,
            key_bits,
        });
        Ok(session)
    }

    /// Closes every idle session and drops the connection; lent sessions of
    /// this generation are closed when they come back.
    fn reset(pool: &mut Pool) {
        pool.conn = None;
        for session in pool.idle.drain(..) {
            if let Err(e) = session.close() {
                tracing::debug!(error = %rv_name(&e), "closing a PKCS#11 session failed");
            }
        }
        pool.open = 0;
        pool.generation += 1;
    }

    /// `C_Finalize` + `C_Initialize`: every session handle of the old epoch
    /// becomes invalid and is forgotten without a `C_CloseSession`.
    fn reinitialize(&self, pool: &mut Pool) {
        pool.conn = None;
        pool.idle.clear();
        pool.open = 0;
        pool.generation += 1;
        pool.epoch += 1;
        if let Err(e) = self.ctx.clone().finalize() {
            tracing::debug!(error = %rv_name(&e), "C_Finalize failed");
        }
        if let Err(e) = self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            tracing::warn!(error = %rv_name(&e), "C_Initialize failed");
        }
    }

    fn checkout(&self) -> Result<Lease, KeyError> {
        let mut pool = lock(&self.pool)?;
        let deadline = std::time::Instant::now() + SESSION_WAIT;
        loop {
            if pool.conn.is_none() {
                let session = self.connect(&mut pool)?;
                pool.open = 1;
                pool.idle.push(session);
            }
            let (slot, key, key_bits) = match &pool.conn {
                Some(c) => (c.slot, c.key, c.key_bits),
                None => return Err(KeyError::Failed("no token connection".into())),
            };
            let (generation, epoch) = (pool.generation, pool.epoch);
            let lease = |session| Lease {
                session,
                key,
                key_bits,
                generation,
                epoch,
            };
            if let Some(session) = pool.idle.pop() {
                return Ok(lease(session));
            }
            if pool.open < self.sessions {
                let session = match self.ctx.open_ro_session_no_drop(slot) {
                    Ok(s) => s,
                    Err(e) => {
                        if is_token_error(&e) {
                            Self::reset(&mut pool);
                        }
                        return Err(unavailable(&e));
                    }
                };
                pool.open += 1;
                return Ok(lease(session));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(KeyError::Unavailable(format!(
                    "all {} token sessions are busy",
                    self.sessions
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .map_err(|_| KeyError::Failed("session pool lock poisoned".into()))?
                .0;
        }
    }

    fn give_back(&self, lease: Lease, failed: Option<&CkError>) {
        let Ok(mut pool) = self.pool.lock() else {
            return;
        };
        if pool.generation == lease.generation {
            match failed {
                Some(e) if is_token_error(e) => {
                    Self::reset(&mut pool);
                    if let Err(e) = lease.session.close() {
                        tracing::debug!(error = %rv_name(&e), "closing a PKCS#11 session failed");
                    }
                }
                _ => pool.idle.push(lease.session),
            }
        } else if pool.epoch == lease.epoch {
            if let Err(e) = lease.session.close() {
                tracing::debug!(error = %rv_name(&e), "closing a PKCS#11 session failed");
            }
        }
        drop(pool);
        self.freed.notify_one();
    }

    /// Runs `f` on a pooled session; after a token error the pool is reset
    /// and `f` is tried once more on a fresh connection (a logout or a
    /// re-inserted token recovers within the same request).
    fn with_session<T>(
        &self,
        f: impl Fn(&Session, ObjectHandle, u16) -> Result<T, CkError>,
    ) -> Result<T, KeyError> {
        let mut last = None;
        for _ in 0..2 {
            let lease = self.checkout()?;
            let result = f(&lease.session, lease.key, lease.key_bits);
            match result {
                Ok(v) => {
                    self.give_back(lease, None);
                    return Ok(v);
                }
                Err(e) => {
                    let token_error = is_token_error(&e);
                    self.give_back(lease, Some(&e));
                    if !token_error {
                        return Err(KeyError::Failed(rv_name(&e)));
                    }
                    tracing::warn!(error = %rv_name(&e), "PKCS#11 token error; reconnecting");
                    last = Some(e);
                }
            }
        }
        Err(match last {
            Some(e) => unavailable(&e),
            None => KeyError::Failed("no attempt made".into()),
        })
    }
}

/// SP 800-108 counter-mode output of `blocks` CMAC blocks computed in the
/// token; `input(i)` is the PRF input of block `i` (1-based).
fn cmac_blocks(
    session: &Session,
    key: ObjectHandle,
    blocks: u8,
    input: impl Fn(u8) -> Vec<u8>,
) -> Result<Zeroizing<Vec<u8>>, CkError> {
    let mut out = Zeroizing::new(Vec::with_capacity(usize::from(blocks) * 16));
    for i in 1..=blocks {
        let mut tag = session.sign(&Mechanism::AesCMac, key, &input(i))?;
        out.extend_from_slice(&tag);
        tag.zeroize();
    }
    Ok(out)
}

impl KeyBackend for Pkcs11Key {
    fn describe(&self) -> String {
        format!(
            "PKCS#11 module {}, {}, key {:?}, {} sessions",
            self.module.display(),
            self.token,
            self.key_label,
            self.sessions
        )
    }

    fn diversify(&self, uid: &[u8]) -> Result<StaticKeys, KeyError> {
        let keys = self.with_session(|session, key, bits| {
            // One CMAC block per 128 bits of the key (an AES key has 128, 192 or 256).
            let blocks = u8::try_from(bits.div_ceil(128)).unwrap_or(u8::MAX);
            let mut out = Vec::with_capacity(3);
            for label in STATIC_KEY_LABELS {
                let mut bytes = cmac_blocks(session, key, blocks, |i| {
                    kdf3_prf_input(i, label, uid, bits)
                })?;
                bytes.truncate(usize::from(bits / 8));
                out.push(bytes);
            }
            Ok(out)
        })?;
        let key = |bytes: &Zeroizing<Vec<u8>>| {
            AesKey::from_slice(bytes).map_err(|e| KeyError::Failed(e.to_string()))
        };
        match keys.as_slice() {
            [enc, mac, dek] => StaticKeys::new(key(enc)?, key(mac)?, key(dek)?)
                .map_err(|e| KeyError::Failed(e.to_string())),
            _ => Err(KeyError::Failed("derivation returned no keys".into())),
        }
    }

    /// Two CMAC blocks in the token: `CMAC(master, i ‖ RECEIPT_LABEL ‖
    /// counter(4) ‖ '0100')` for `i` = 1, 2.
    fn receipt_seed(&self, counter: u32) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let bytes = self.with_session(|session, key, _| {
            cmac_blocks(session, key, 2, |i| {
                let mut m = vec![i];
                m.extend_from_slice(RECEIPT_LABEL);
                m.extend_from_slice(&counter.to_be_bytes());
                m.extend_from_slice(&256u16.to_be_bytes());
                m
            })
        })?;
        let mut seed = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(KeyError::Failed("receipt key derivation failed".into()));
        }
        seed.copy_from_slice(&bytes);
        Ok(seed)
    }
}

/// What `kf-klms hsm init` created.
#[derive(Debug)]
pub struct InitReport {
    /// Slot the key was created in.
    pub slot: u64,
    /// Key check value: the first 3 bytes of AES(key, 16 × '01'), the
    /// convention of [`AesKey::kcv`].
    pub kcv: [u8; 3],
    /// Key length in bits.
    pub bits: u16,
}

/// Creates the master key in the token: generated inside it (`CKM_AES_KEY_GEN`)
/// or, with `import`, created from the given key (for fobs already
/// personalized under it). Refuses a label that already exists. The object
/// is a private token object, sensitive and not extractable, usable only
/// for `CKM_AES_CMAC` signing (and for the KCV, computed once with
/// `CKA_ENCRYPT` which is switched off right after).
pub fn init_key(
    module: &std::path::Path,
    token: &TokenSelector,
    key_label: &str,
    pin: &AuthPin,
    bits: u16,
    import: Option<&AesKey>,
) -> Result<InitReport, KeyError> {
    let ctx = load_module(module)?;
    let fail = |what: &str, e: CkError| KeyError::Config(format!("{what}: {}", rv_name(&e)));
    let slot = find_slot(&ctx, token).map_err(|e| match e {
        CkError::Pkcs11(RvError::TokenNotPresent, _) => {
            KeyError::Config(format!("{token} is not present"))
        }
        other => fail("token lookup", other),
    })?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| fail("open session", e))?;
    login(&session, pin).map_err(|e| fail("login", e))?;
    let existing = session
        .find_objects(&[Attribute::Label(key_label.as_bytes().to_vec())])
        .map_err(|e| fail("object search", e))?;
    if !existing.is_empty() {
        return Err(KeyError::Config(format!(
            "{token} already holds an object labelled {key_label:?}; refusing to overwrite it"
        )));
    }
    let bits = match import {
        Some(k) => k.bits(),
        None => bits,
    };
    if !matches!(bits, 128 | 192 | 256) {
        return Err(KeyError::Config(format!(
            "AES key length {bits} bits is not 128, 192 or 256"
        )));
    }
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(key_label.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ];
    let created = match import {
        None => {
            // CK_ULONG is 32 bits on Windows, 64 on Unix.
            let len = Ulong::try_from(usize::from(bits) / 8)
                .map_err(|e| KeyError::Config(format!("AES key length: {e}")))?;
            template.push(Attribute::ValueLen(len));
            session.generate_key(&Mechanism::AesKeyGen, &template)
        }
        Some(k) => {
            template.push(Attribute::Value(k.expose_secret().to_vec()));
            let created = session.create_object(&template);
            for attr in &mut template {
                if let Attribute::Value(v) = attr {
                    v.zeroize();
                }
            }
            created
        }
    };
    let key = created.map_err(|e| fail("key creation", e))?;
    let block = session
        .encrypt(&Mechanism::AesEcb, key, &[0x01; 16])
        .map_err(|e| fail("KCV", e))?;
    session
        .update_attributes(key, &[Attribute::Encrypt(false)])
        .map_err(|e| fail("switching off CKA_ENCRYPT", e))?;
    let kcv = match block.as_slice() {
        [a, b, c, ..] => [*a, *b, *c],
        _ => return Err(KeyError::Failed("KCV block too short".into())),
    };
    Ok(InitReport {
        slot: slot.id(),
        kcv,
        bits,
    })
}
