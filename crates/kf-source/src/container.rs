//! Container package pools (seed 001 "Container Directory Format").
//!
//! ```text
//! POOL/
//!   ica_cert.der            shared ICA certificate      → DGI A004
//!   cms_root_cert.der       shared CMS/root certificate → DGI A005
//!   1KM0001E-59918C…4BD1/   one package per fob: <FESN>-<SPID_HEX> (SPID → DGI A001)
//!     FESN.txt              the FESN again (must equal the directory's)
//!     irk_keyfob.key        base64 of the 16-byte BLE IRK → DGI A006
//!     keyfob_private.der    EC P-256 key, PKCS#8 or SEC 1 → DGI A003 (DEK-encrypted later)
//!     keyfob_public.der     device certificate, CN = FESN → DGI A002
//!   .used/                  the claim ledger (see below)
//! ```
//!
//! **Claim ledger.** Packages are handed out in byte-wise sorted order of
//! their directory names. Claiming one creates `.used/<package name>` with
//! `create_new` (O_EXCL / CREATE_NEW, atomic on Linux and Windows, also
//! between several stations sharing the pool), holding the fob UID. A package
//! with a marker is never given to another fob. When a fob with the same UID is
//! presented again (e.g. after a tear), it gets its own package back. A package
//! that fails validation when claimed is marked `status=rejected`, its error is
//! returned, and the next fetch moves on. Deleting a marker by hand releases a
//! package (an operator decision, e.g. after a fob was scrapped before STORE DATA).
//!
//! **Certificate checks** (when the pool is opened and per package): the ICA's
//! issuer DN equals the root's subject DN and the ICA signature verifies with the
//! root key; the device certificate's issuer DN equals the ICA subject and its
//! signature verifies with the ICA key. ECDSA with SHA-256 or SHA-384 under P-256
//! or P-384 keys is supported; a root or ICA with another key type (e.g. RSA) is
//! refused with [`ContainerErrorKind::UnsupportedKeyAlgorithm`] rather than
//! accepted unchecked. Validity periods are not checked (the station clock is
//! not trusted, and factory packages may be written before their not-before).

mod ledger;
mod package;
mod pki;

use std::fmt;
use std::path::{Path, PathBuf};

pub use package::{
    parse_directory_name, validate_package, Package, PackageFiles, SharedCertificates,
    DEVICE_CERT_FILE, FESN_FILE, ICA_CERT_FILE, IRK_FILE, PRIVATE_KEY_FILE, ROOT_CERT_FILE,
};

use crate::input::{CardKeys, PersonalizationItems, PrivateKeyMaterial, ProvisioningInput};
use crate::{ProvisioningSource, SourceError};

/// A malformed or inconsistent container file, with the file it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerError {
    path: PathBuf,
    kind: ContainerErrorKind,
}

impl ContainerError {
    pub(crate) fn new(path: impl Into<PathBuf>, kind: ContainerErrorKind) -> ContainerError {
        ContainerError {
            path: path.into(),
            kind,
        }
    }

    /// The file or directory at fault.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &ContainerErrorKind {
        &self.kind
    }
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for ContainerError {}

/// What is wrong with a container file. Messages never contain key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerErrorKind {
    /// The file does not exist.
    #[error("file is missing")]
    MissingFile,
    /// The file exists but could not be read.
    #[error("cannot read: {reason}")]
    Io {
        /// The I/O error text.
        reason: String,
    },
    /// The package directory name is not `<FESN>-<SPID_HEX>`.
    #[error("package directory name is invalid: {reason}")]
    BadDirectoryName {
        /// Which part is wrong.
        reason: String,
    },
    /// The SPID in the directory name is not 40 hex characters.
    #[error("SPID in the directory name has {len} characters, expected 40 hex digits")]
    BadSpid {
        /// Its length in characters.
        len: usize,
    },
    /// `FESN.txt` is not 1–16 ASCII letters/digits.
    #[error("FESN is not 1-16 ASCII letters/digits")]
    BadFesn,
    /// `FESN.txt` disagrees with the directory name.
    #[error("FESN {file} differs from the directory's FESN {directory}")]
    FesnMismatch {
        /// FESN from the directory name.
        directory: String,
        /// FESN from the file.
        file: String,
    },
    /// `irk_keyfob.key` is not standard base64.
    #[error("BLE IRK is not valid base64")]
    BadIrkBase64,
    /// `irk_keyfob.key` decodes to the wrong length.
    #[error("BLE IRK decodes to {len} bytes, expected 16")]
    BadIrkLength {
        /// Decoded length.
        len: usize,
    },
    /// `keyfob_private.der` is not an EC P-256 key in PKCS#8 or SEC 1 DER.
    #[error("private key is invalid: {reason}")]
    BadPrivateKey {
        /// Why (never key bytes).
        reason: String,
    },
    /// A certificate is not valid DER X.509.
    #[error("certificate is invalid: {reason}")]
    BadCertificate {
        /// The parser's complaint.
        reason: String,
    },
    /// A key or signature algorithm this station cannot use or verify.
    #[error("unsupported key or signature algorithm: {algorithm}")]
    UnsupportedKeyAlgorithm {
        /// The algorithm (OIDs).
        algorithm: String,
    },
    /// The private key does not belong to the device certificate.
    #[error("private key does not match the public key of {DEVICE_CERT_FILE}")]
    KeyMismatch,
    /// The device certificate's CN is not the FESN.
    #[error("certificate CN {cn:?} differs from the FESN {fesn}")]
    CnMismatch {
        /// The CN found (empty when absent).
        cn: String,
        /// The package FESN.
        fesn: String,
    },
    /// The certificate's issuer DN is not the expected issuer's subject DN.
    #[error("issuer {issuer} is not the expected {expected}")]
    IssuerMismatch {
        /// Issuer DN of the certificate.
        issuer: String,
        /// Subject DN of the expected issuer.
        expected: String,
    },
    /// The certificate's signature does not verify with the issuer's key.
    #[error("signature does not verify with the issuer's public key")]
    BadSignature,
}

/// The EC P-256 public key of a DER device certificate (for sources that
/// receive DGI A002 ready-made, e.g. the KLMS, to fill
/// [`ProvisioningInput::device_public_key`]).
pub fn certificate_public_key(der: &[u8]) -> Result<p256::PublicKey, ContainerErrorKind> {
    pki::p256_public_key(&pki::parse_certificate(der)?)
}

/// Container packages from a pool directory, with the fob's static keys
/// supplied by the caller (containers carry no SCP03 keys).
pub struct ContainerSource {
    pool: PathBuf,
    shared: SharedCertificates,
    keys: CardKeys,
    source_name: &'static str,
}

impl ContainerSource {
    /// Opens a pool: loads and checks the shared certificates.
    pub fn open(pool: impl Into<PathBuf>, keys: CardKeys) -> Result<ContainerSource, SourceError> {
        let pool = pool.into();
        let shared = SharedCertificates::load(&pool)?;
        Ok(ContainerSource {
            pool,
            shared,
            keys,
            source_name: "container",
        })
    }

    /// Renames the source in reports (used by [`crate::DevSampleSource`]).
    pub(crate) fn with_name(mut self, name: &'static str) -> ContainerSource {
        self.source_name = name;
        self
    }

    /// The pool directory.
    pub fn pool(&self) -> &Path {
        &self.pool
    }

    /// Loads and validates one package directory of the pool, without claiming it.
    pub fn load_package(&self, name: &str) -> Result<Package, ContainerError> {
        let dir = self.pool.join(name);
        let files = PackageFiles::read(&dir)?;
        validate_package(&dir, name, &files, &self.shared)
    }

    /// Number of packages not yet claimed.
    pub fn remaining(&self) -> Result<usize, SourceError> {
        let ledger = ledger::Ledger::new(&self.pool);
        let claimed = ledger.claims()?;
        Ok(ledger::package_names(&self.pool)?
            .iter()
            .filter(|n| !claimed.iter().any(|c| &c.package == *n))
            .count())
    }

    fn claim_and_load(&self, uid: &[u8]) -> Result<Package, SourceError> {
        let ledger = ledger::Ledger::new(&self.pool);
        let name = match ledger.claim(uid)? {
            ledger::Claim::Existing(name) | ledger::Claim::New(name) => name,
            ledger::Claim::None => {
                return Err(SourceError::PoolExhausted {
                    pool: self.pool.display().to_string(),
                })
            }
        };
        self.load_package(&name).or_else(|e| {
            // A broken package must not block the pool: mark it and report.
            ledger.mark_rejected(&name)?;
            Err(e.into())
        })
    }
}

impl ProvisioningSource for ContainerSource {
    fn name(&self) -> &str {
        self.source_name
    }

    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, SourceError> {
        crate::check_uid(uid)?;
        let package = self.claim_and_load(uid)?;
        Ok(input_from_package(
            &package,
            &self.shared,
            self.keys.duplicate(),
            uid,
            self.source_name,
        ))
    }
}

/// Assembles a [`ProvisioningInput`] from a validated package.
pub(crate) fn input_from_package(
    package: &Package,
    shared: &SharedCertificates,
    card_keys: CardKeys,
    uid: &[u8],
    source_name: &str,
) -> ProvisioningInput {
    let transaction_id = format!("{source_name}-{}-{}", package.fesn, crate::unix_millis());
    ProvisioningInput {
        fob_uid: uid.to_vec(),
        transaction_id,
        card_keys,
        device_public_key: package.device_public_key,
        origin: package.name.clone(),
        items: PersonalizationItems {
            spid: package.spid.clone(),
            device_certificate: package.device_certificate.clone(),
            private_key: PrivateKeyMaterial::Scalar(package.scalar.duplicate()),
            ica_certificate: shared.ica_der().to_vec(),
            root_certificate: shared.root_der().to_vec(),
            ble_irk: package.irk.duplicate(),
        },
    }
}
