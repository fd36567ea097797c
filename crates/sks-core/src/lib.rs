//! # sks-core — a software Secure Key Store (SKS API 1.00)
//!
//! Implements the SKS "API and Architecture" 1.00 as a software SKS
//! (DeviceType `LOCATION_EMBEDDED | TYPE_SOFTWARE`), using the byte layouts of
//! `SKS-1.00-byte-layouts.md` where the spec text lost them.
//!
//! ## Data flow
//!
//! ```text
//!  issuer (sks-issuer)                          SKS (this crate)
//!  ───────────────────                          ─────────────────────────────────────────
//!  ephemeral P-256 key ── createProvisioningSession ──▶ ECDH + HMAC KDF ─▶ SessionKey
//!  verify attestation  ◀── ClientEphemeralKey, Attestation (device key or PEP HMAC)
//!  MAC(counter n), Encrypt ── createPUKPolicy/PINPolicy/KeyEntry ... ──▶ verify MAC, decrypt
//!  CA: certify public key ── setCertificatePath/import/addExtension ──▶ key entry
//!  KMK signature (TKR)  ── post{Delete,Unlock,Update,Clone} ──▶ queued
//!  MAC                   ── closeProvisioningSession ──▶ checks ─▶ commit ─▶ attestation
//!
//!  bytes ─▶ api::Request::decode ─▶ engine::Core (sans-IO, in-memory State)
//!        ◀─ api::Response::encode ◀┘        │ diff of records after every call
//!                                           ▼
//!                       storage::Storage::apply(one atomic batch) (memory here | sks-sqlite)
//!  sks (CLI): 4-byte big-endian length-prefixed frames over a Unix socket (or loopback TCP with
//!  a token) carry the same bytes to the engine.
//! ```
//!
//! Both sides of every MAC and attestation input are built by [`layout`] from the typed
//! request, so the SKS and an issuer cannot disagree on a byte.
//!
//! ## Crate layering
//!
//! Each module uses only those to its left; no two modules import each other:
//!
//! `error`, `consts`, `secret`, `x509` ◀ `codec` ◀ `crypto`, `api` ◀ `layout`, `pin`, `device`,
//! `wire` ◀ `model` ◀ `storage` ◀ `engine`.
//!
//! This crate does no I/O of its own and must not depend on SQLite (`sks-sqlite`), sockets or
//! the command line (`sks`), or the issuer emulation (`sks-issuer`).
//!
//! ## Method IDs (§7.4)
//!
//! | ID | method | ID | method |
//! |---|---|---|---|
//! | 1 | getDeviceInfo | 53 | postCloneKeyProtection |
//! | 2 | createProvisioningSession | 70 | enumerateKeys |
//! | 3 | closeProvisioningSession | 71 | getKeyAttributes |
//! | 4 | enumerateProvisioningSessions | 72 | getKeyProtectionInfo |
//! | 5 | abortProvisioningSession | 73 | getExtension |
//! | 6 | signProvisioningSessionData | 74 | setProperty |
//! | 7 | createPUKPolicy | 80 | deleteKey |
//! | 8 | createPINPolicy | 81 | exportKey |
//! | 9 | createKeyEntry | 82 | unlockKey |
//! | 10 | getKeyHandle | 83 | changePIN |
//! | 11 | setCertificatePath | 84 | setPIN |
//! | 12 | importSymmetricKey | 90 | updateFirmware |
//! | 13 | importPrivateKey | 100 | signHashedData |
//! | 14 | addExtension | 101 | asymmetricKeyDecrypt |
//! | 50 | postDeleteKey | 102 | keyAgreement |
//! | 51 | postUnlockKey | 103 | performHMAC |
//! | 52 | postUpdateKey | 104 | symmetricKeyEncrypt |
//!
//! ## Spec gaps and the choices made
//!
//! Items marked UNDETERMINED in the byte-layout supplement take its PROPOSAL unless noted.
//!
//! - **createKeyEntry MAC** (§10 item 15): `KeyAlgorithm:uri || KeyParameters:byte[]` sit where
//!   the 2012 code had KeySpecifier. `.exp` URIs need 1-8 byte odd exponents ≥ 3 (else
//!   ERROR_OPTION); other URIs need empty KeyParameters; unknown KeyAlgorithm → ERROR_ALGORITHM.
//! - **Generic error code** (item 16): session-aborting checks use ERROR_OPTION; parameter
//!   errors of createProvisioningSession use ERROR_OPTION, an unknown Algorithm ERROR_ALGORITHM.
//! - **Decryption failures** (item 17) abort the session with ERROR_CRYPTO.
//! - **Zero-length = absent** on the wire (item 18) for ServerSeed, KeyManagementKey,
//!   KeyParameters, PINValue, Parameters, FriendlyName, Qualifier, Authorization. An empty
//!   Authorization for a PIN-protected key counts as a wrong PIN. A non-empty Authorization for
//!   a key without PIN is rejected with ERROR_AUTHORIZATION (not counted).
//! - **SessionKeyLimit / RetryLimit ≥ 0x8000** (item 19): unsigned.
//! - **SessionLifeTime** (item 20): *enforced* — deviation from the proposal, so that an abandoned
//!   session cannot be resumed forever. An open session whose SKS-clock age exceeds SessionLifeTime is
//!   aborted at the start of the next call (any method), in the same atomic write as that call's
//!   changes; later calls see ERROR_NO_SESSION.
//!   ClientTime is stored and attested only (the SKS clock is used, not the client's).
//! - **Device PIN / biometrics** (item 21): getDeviceInfo reports DevicePINSupport = false, so
//!   DevicePINProtection = true aborts createKeyEntry (ERROR_OPTION). BiometricSupport is false
//!   by default (same rule); [`Config::biometric_support`] enables it, and the sensor is the
//!   embedder-supplied input [`Config::biometric`] (the SKS API's GPIO, §5.3), consulted by the
//!   cryptographic User API calls only (see `Core::verify_user` for the alternative/combined/
//!   exclusive rules); deleteKey, exportKey, changePIN and the PUK methods check PINs only.
//! - **Empty user-defined PIN** (item 23): ERROR_OPTION ("PIN length error").
//! - **Sequence on 1-octet PINs** (item 24): not a sequence.
//! - **changePIN/setPIN without a local PIN policy** (item 25): ERROR_NOT_ALLOWED.
//! - **Public key canonicalisation** (item 26): only SPKI encodings that re-encode identically
//!   are accepted (P-256/P-384 uncompressed named curve, RSA with NULL parameters).
//! - **EndorsedAlgorithm URIs** (item 27): only operation algorithms and `…#algorithm.none`.
//! - **Length bounds** (item 28): FriendlyName ≤ 128 characters, Nonce 1-32, PathLength ≥ 1,
//!   decrypted symmetric key 1-128 octets; violations abort with ERROR_OPTION.
//! - **MAC before decryption** (item 30) in every method.
//! - **ServerSeed**: accepted (0-32 bytes) and MACed, but keys come from the OS RNG only; that
//!   cannot reduce entropy, which is the spec's only requirement.
//! - **ClientSessionID**: `C` + 31 random characters of `[A-Za-z0-9_-]`.
//! - **byte\[32\] values on the wire** (MAC, Attestation) carry the normal 2-byte length prefix;
//!   a MAC of any other length fails with ERROR_MAC.
//! - **`ecdsa.none`** signs data of any length, as the hash-less algorithms impose none: data
//!   shorter than the curve's field is taken as the integer it encodes (SEC 1 bits2int).
//! - **updateFirmware** returns ERROR_NOT_AVAILABLE (UpdateURL is empty).
//! - **Curves**: P-256 for sessions and KeyManagementKeys; key entries may also be P-384
//!   (`…#algorithm.ec.p384`, optional in §4.3); certificates may hold RSA-1024/2048, P-256, P-384.
//! - **Closed sessions keep no SessionKey**: a session is `SessionState::Open(OpenState)` or
//!   `Closed`; closing drops (and zeroizes) the SessionKey, MAC counter and SessionKeyLimit,
//!   which nothing after close needs (Target Key References use the *current* session's key).
//! - **Sealing**: there is no CPU-resident master key (§2.1 allows software containers). The
//!   SQLite store (`sks-sqlite`) seals every record with AES-256-GCM under a storage key kept
//!   outside the database (a 0600 key file), so a copied database alone reveals no key or PIN;
//!   whoever can read both the database and the key file holds the keys. One process owns a
//!   database at a time (exclusive SQLite lock); other processes use `sks --socket`.
//! - **Persistence cost**: after every call the engine encodes only the records the call
//!   changed and hands them to storage as one atomic batch, so the cost follows the call, not
//!   the database size. Steps inside an open provisioning session are written
//!   [`storage::Durability::Ordered`] (they survive a crash of the process, and a power loss
//!   once anything later is synced); everything final is [`storage::Durability::Synced`]
//!   ([`engine::durability_of`]).
//! - **PUK "no limit, delay"**: RetryLimit 0 never locks; every PUK check of such a policy runs
//!   only after [`Config::puk_delay`] (default 1 s). The engine never sleeps: it names the delay
//!   ([`Core::puk_delay_for`]) and refuses an unpaced check; the caller waits without holding
//!   what other callers need ([`Sks`]'s `call` waits in the calling thread; a server waits
//!   outside its lock, one waiter per PUK policy at a time) and then calls
//!   [`Core::execute_after_delay`].
//! - **Resource bounds**: at most [`Config::max_open_sessions`] open provisioning sessions
//!   (createProvisioningSession beyond it: ERROR_STORAGE); an open session older than
//!   [`Config::session_timeout`] is aborted like one past its SessionLifeTime.
//! - **InputMethod, AppUsage, EnablePINCaching** are stored and reported (getKeyProtectionInfo,
//!   getKeyAttributes); their enforcement belongs to cooperative middleware (§5.4, §5.8).
//! - **Getters on keys of open sessions** (getKeyAttributes, getKeyProtectionInfo,
//!   getExtension, setProperty) return ERROR_NO_KEY, like the rest of the User API.

pub mod api;
pub mod codec;
pub mod consts;
pub mod crypto;
pub mod device;
pub mod engine;
pub mod error;
pub mod layout;
pub mod model;
pub mod pin;
pub mod secret;
pub mod storage;
pub mod wire;
pub mod x509;

pub use api::{Request, Response, SksApi};
pub use engine::{Config, Core, Sks};
pub use error::{ErrorCode, SksError, SksResult};
pub use storage::{MemoryStorage, Storage};

#[cfg(test)]
pub(crate) mod test_vectors {
    use std::collections::HashMap;

    /// Appendix A values from `tests/data/appendix_a.txt`.
    pub fn appendix_a() -> HashMap<String, String> {
        include_str!("../tests/data/appendix_a.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.trim().to_owned()))
            })
            .collect()
    }

    /// The Appendix A SessionKey: 00 01 .. 1F.
    pub fn session_key() -> crate::crypto::SessionKey {
        let bytes: Vec<u8> = (0u8..32).collect();
        crate::crypto::SessionKey::from_bytes(&bytes).expect("32 bytes")
    }
}
