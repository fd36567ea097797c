//! Provisioning inputs for the key-fob station: where each fob's static keys
//! and personalization content come from.
//!
//! ```text
//! fob UID ──▶ ProvisioningSource::fetch ──▶ ProvisioningInput ──▶ kf-perso (DGI plan, pipeline)
//!              ├─ DevSampleSource: the specified dev keys (KVN 255) + packages (pool dir or in memory)
//!              ├─ ContainerSource: `<FESN>-<SPID>/` package directories (provisioning specification), verified
//!              └─ klms::KlmsClient (REST, mutual TLS, pinned CA) ──▶ validated KeyPackage
//!                 (static keys as AesKey, DGIs A001–A006, expires_at)
//! audit journal ──klms::KlmsAuditSink──▶ KLMS /v1/audit
//! fixtures::generate ──▶ synthetic package pools in the container format
//! ```
//!
//! Container packages are parsed with real DER libraries (`pkcs8`/`sec1` for the
//! key, `x509-cert` for certificates) and checked: the private key matches the
//! device certificate, the device certificate is signed by the ICA, the ICA by
//! the root, the FESN agrees across directory name, `FESN.txt` and the
//! certificate CN. Every malformed file gives a [`ContainerError`] naming it.
//!
//! Depends on the primitives (`kf-apdu`, `kf-crypto`, `kf-profile`, `kf-audit`, `kf-files`);
//! never on a transport, the pipeline or the KLMS server.

pub mod container;
pub mod dev;
pub mod fixtures;
pub mod input;
pub mod klms;
mod shared;

use thiserror::Error;

pub use container::PoolOptions;
pub use container::{ContainerError, ContainerErrorKind, ContainerSource};
pub use dev::DevSampleSource;
pub use input::{
    BleIrk, CardKeys, EncryptedScalar, PersonalizationItems, PrivateKeyMaterial, PrivateScalar,
    ProvisioningInput, Spid,
};
pub use shared::SharedSource;

/// A source of per-fob provisioning inputs.
///
/// `fetch` is called once per fob after its UID is read; a source hands out
/// each package at most once (a re-presented fob with the same UID may get
/// the package it was already given back, see [`ContainerSource`]).
pub trait ProvisioningSource {
    /// Short name for logs and audit records (`dev`, `container`, `klms`).
    fn name(&self) -> &str;

    /// Fetches the keys and personalization content for the fob with this UID.
    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, SourceError>;

    /// Checks, right before the input is used, that it may still be used
    /// (a KLMS key package has a TTL). Offline sources never expire.
    fn ensure_fresh(&self, _input: &ProvisioningInput) -> Result<(), SourceError> {
        Ok(())
    }

    /// Called once the outcome of the fob that received the content named
    /// `origin` ([`ProvisioningInput::origin`]) is durable in the journal,
    /// with what becomes of that content. Sources without packages ignore it.
    fn settle(&mut self, _origin: &str, _settlement: Settlement) -> Result<(), SourceError> {
        Ok(())
    }
}

/// What becomes of a fetched package once its fob's outcome is durable
/// (see [`ContainerSource`] for what a pool does with each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The fob passed: the package is used up.
    Done,
    /// The fob failed before any STORE DATA: nothing of the package reached
    /// a fob, so it may go to any fob.
    Release,
    /// The fob failed after a STORE DATA may have reached it: the package
    /// stays bound to that fob (only it gets the package back).
    Keep,
    /// The content was refused (e.g. an IRK already personalized, a key pair
    /// that does not match): the package is not handed out again.
    Reject,
}

/// Errors of the provisioning sources. No variant carries secret bytes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A container package or a shared certificate is malformed or inconsistent.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Every package of the pool has been used.
    #[error("no unused package left in {pool}")]
    PoolExhausted {
        /// The pool directory (or `memory` for in-memory pools).
        pool: String,
    },
    /// Another reader's worker failed while it held the shared source.
    #[error("the shared provisioning source is unusable: a reader worker failed while using it")]
    Poisoned,
    /// The UID is empty or longer than 10 bytes.
    #[error("invalid fob UID length {len} (expected 1..=10 bytes)")]
    InvalidUid {
        /// Length received.
        len: usize,
    },
    /// A private scalar is 0, ≥ n, or not 32 bytes.
    #[error("invalid P-256 private scalar")]
    InvalidScalar,
    /// A pre-encrypted A003 blob has the wrong length.
    #[error("invalid DEK-encrypted private key length {len} (expected 48)")]
    InvalidEncryptedScalar {
        /// Length received.
        len: usize,
    },
    /// A BLE IRK is not 16 bytes.
    #[error("invalid BLE IRK length {len} (expected 16)")]
    InvalidIrk {
        /// Length received.
        len: usize,
    },
    /// A SPID is not 40 ASCII hex characters.
    #[error("invalid SPID: {len} characters, expected 40 ASCII hex digits")]
    InvalidSpid {
        /// Length received.
        len: usize,
    },
    /// A key could not be built (wrong length, mismatched set).
    #[error("invalid static key: {0}")]
    Key(#[from] kf_crypto::CryptoError),
    /// Generating fixtures failed.
    #[error("fixture generation failed: {0}")]
    Fixture(String),
    /// The KLMS refused, was unreachable, or sent an invalid or expired package.
    #[error(transparent)]
    Klms(#[from] klms::KlmsError),
    /// A file that is not a regular file, too large, or unreadable.
    #[error(transparent)]
    File(#[from] kf_files::FileError),
    /// A finished package cannot be moved out of the pool because its
    /// name is already taken in the done directory (nothing is replaced).
    #[error(
        "package {package} cannot be moved to {done_dir}: a package of that name is already there"
    )]
    AlreadyDone {
        /// The package directory name.
        package: String,
        /// The done directory.
        done_dir: String,
    },
    /// The fob in the reader already passed with a package of this pool (a
    /// personalized fob presented again); no new package is claimed for it.
    #[error("this fob already passed with package {package} (now in {done_dir}); no package is claimed for it again")]
    FobAlreadyDone {
        /// The package the fob received.
        package: String,
        /// The done directory.
        done_dir: String,
    },
    /// Signed manifests are required but no producer key is configured.
    #[error("signed package manifests are required but no producer public key is configured")]
    ManifestKeyRequired,
    /// I/O outside a package (pool directory, ledger).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Checks a fob UID length (ISO 14443-3: 4, 7 or 10 bytes; other lengths up to
/// 10 are accepted for readers that report shortened UIDs).
pub(crate) fn check_uid(uid: &[u8]) -> Result<(), SourceError> {
    if uid.is_empty() || uid.len() > 10 {
        return Err(SourceError::InvalidUid { len: uid.len() });
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, for transaction identifiers.
pub(crate) fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
