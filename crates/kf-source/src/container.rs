//! Container package pools (provisioning specification, "Container Directory Format").
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
//!   done/                   packages of fobs that passed (see below; configurable)
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
//! **Settling a package** ([`ProvisioningSource::settle`], called by the
//! station once the fob's outcome is durable in its journal):
//! - [`Settlement::Done`] (the fob passed): the package directory is renamed
//!   into the done directory ([`PoolOptions::done_dir`], default `POOL/done/`,
//!   which is then not a package), both directories are synced, and the
//!   package's `keyfob_private.der` is overwritten with zeros (same length),
//!   synced and removed, unless [`PoolOptions::keep_packages`] is set (for
//!   debugging). The claim marker stays in `.used/`. A name already present
//!   in the done directory is never replaced ([`SourceError::AlreadyDone`]).
//! - [`Settlement::Release`] (failed before any STORE DATA): the claim marker
//!   is removed, so the next fob (any UID) can take the package.
//! - [`Settlement::Keep`] (failed after a STORE DATA may have reached the
//!   fob): the claim stays bound to that fob's UID; only it gets the package
//!   back, so one key never reaches two fobs.
//! - [`Settlement::Reject`] (content refused, e.g. IRK already personalized):
//!   the marker is marked `status=rejected`.
//!
//! **Signed manifests** (optional, [`manifest`]): a package may carry
//! `manifest.json` with the SHA-256 of its four files, signed with ECDSA
//! P-256 by the package producer. When present it is verified with the
//! configured producer key ([`PoolOptions::manifest`]) before the package is
//! used; with `required` a package without one is refused.
//!
//! **Crash safety.** The journal's SUCCESS record is written (and synced)
//! before the package is moved. If the station dies between the two, the
//! package is still in the pool at the next start, but it is not reused:
//! its `.used/` marker keeps it from every other fob; the same fob presented
//! again gets it back, and then its IRK fingerprint matches the SUCCESS
//! record in the journal, so the content is refused at FetchKeys (before any
//! SCP03 command) and the package is marked rejected. Even with the marker
//! deleted by hand, the IRK fingerprint refuses it. If the station dies
//! after the move but before the key file is wiped, the next
//! [`ContainerSource::open_with`] wipes every `keyfob_private.der` left in
//! the done directory (unless packages are kept).
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
pub mod manifest;
mod package;
mod pki;

use std::path::{Path, PathBuf};

pub use package::{
    parse_directory_name, validate_package, Package, PackageFiles, SharedCertificates,
    CERT_MAX_BYTES, DEVICE_CERT_FILE, FESN_FILE, FESN_MAX_BYTES, ICA_CERT_FILE, IRK_FILE,
    IRK_MAX_BYTES, PRIVATE_KEY_FILE, PRIVATE_KEY_MAX_BYTES, ROOT_CERT_FILE,
};

use crate::input::{CardKeys, PersonalizationItems, PrivateKeyMaterial, ProvisioningInput};
use crate::{ProvisioningSource, Settlement, SourceError};

/// Default name of the done directory, inside the pool.
pub const DONE_DIR: &str = "done";

/// What a pool does with packages of fobs that passed.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// Where finished packages go; `None` is `POOL/done/`. A directory
    /// inside the pool must be given as `POOL/NAME` (it is then not a package).
    pub done_dir: Option<PathBuf>,
    /// Keep each finished package's private-key file (debugging only).
    pub keep_packages: bool,
    /// Signed package manifests ([`manifest`]): the producer key and
    /// whether a manifest is required.
    pub manifest: manifest::ManifestPolicy,
}

/// A malformed or inconsistent container file, with the file (or package
/// directory) it concerns.
pub type ContainerError = kf_files::PathError<ContainerErrorKind>;

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
    /// `irk_keyfob.key` is not strict standard Base64 (provisioning specification, "Container Directory Format").
    #[error(
        "BLE IRK is not strict Base64 (rule: 24 characters of the standard alphabet with \
         canonical '=' padding and zero trailing bits, at most one final line end, \
         no other whitespace)"
    )]
    BadIrkBase64,
    /// `irk_keyfob.key` decodes to the wrong length.
    #[error("BLE IRK decodes to {len} bytes (rule: exactly 16 bytes)")]
    BadIrkLength {
        /// Decoded length.
        len: usize,
    },
    /// `irk_keyfob.key` decodes to 16 zero bytes.
    #[error("BLE IRK is all zero (rule: an all-zero IRK is refused)")]
    ZeroIrk,
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
    /// The pool requires a signed manifest and the package has none.
    #[error("manifest.json is missing (rule: this pool requires a signed manifest)")]
    ManifestMissing,
    /// The package has a manifest but no producer key is configured to verify it.
    #[error("manifest.json is present but no producer key is configured to verify it")]
    ManifestKeyMissing,
    /// `manifest.json` is malformed or names another package.
    #[error("manifest is invalid: {reason}")]
    BadManifest {
        /// What is wrong (no file content).
        reason: String,
    },
    /// A file's SHA-256 differs from the one in the manifest.
    #[error(
        "SHA-256 differs from the package manifest (rule: every file must match its signed hash)"
    )]
    ManifestHashMismatch,
    /// The manifest signature does not verify with the producer key.
    #[error("manifest signature does not verify with the producer public key")]
    BadManifestSignature,
    /// The configured producer key is not an EC P-256 public key in PEM.
    #[error("producer key is not an EC P-256 PUBLIC KEY in PEM: {reason}")]
    BadProducerKey {
        /// The parser's complaint.
        reason: String,
    },
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
    done_dir: PathBuf,
    keep_packages: bool,
    manifest: manifest::ManifestPolicy,
}

impl ContainerSource {
    /// Opens a pool with the default [`PoolOptions`]: loads and checks the
    /// shared certificates.
    pub fn open(pool: impl Into<PathBuf>, keys: CardKeys) -> Result<ContainerSource, SourceError> {
        ContainerSource::open_with(pool, keys, &PoolOptions::default())
    }

    /// Opens a pool: loads and checks the shared certificates, and (unless
    /// packages are kept) wipes any private-key file left in the done
    /// directory by a station stopped between moving a package and wiping it.
    pub fn open_with(
        pool: impl Into<PathBuf>,
        keys: CardKeys,
        options: &PoolOptions,
    ) -> Result<ContainerSource, SourceError> {
        let pool = pool.into();
        if options.manifest.required && options.manifest.key.is_none() {
            return Err(SourceError::ManifestKeyRequired);
        }
        let shared = SharedCertificates::load(&pool)?;
        let done_dir = options
            .done_dir
            .clone()
            .unwrap_or_else(|| pool.join(DONE_DIR));
        let source = ContainerSource {
            pool,
            shared,
            keys,
            source_name: "container",
            done_dir,
            keep_packages: options.keep_packages,
            manifest: options.manifest.clone(),
        };
        if !source.keep_packages {
            source.wipe_done_keys()?;
        }
        Ok(source)
    }

    /// The done directory.
    pub fn done_dir(&self) -> &Path {
        &self.done_dir
    }

    /// The done directory's name when it is a directory of the pool itself.
    fn done_in_pool(&self) -> Option<&str> {
        if self.done_dir.parent() == Some(self.pool.as_path()) {
            self.done_dir.file_name().and_then(|n| n.to_str())
        } else {
            None
        }
    }

    fn ledger(&self) -> ledger::Ledger {
        ledger::Ledger::new(&self.pool, self.done_in_pool())
    }

    /// Wipes the private-key file of every package in the done directory.
    fn wipe_done_keys(&self) -> Result<(), SourceError> {
        let entries = match std::fs::read_dir(&self.done_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(io_error(&self.done_dir, source)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.done_dir, e))?;
            let key = entry.path().join(PRIVATE_KEY_FILE);
            if std::fs::symlink_metadata(&key).is_ok() {
                kf_files::wipe_and_remove(&key)?;
            }
        }
        Ok(())
    }

    /// Moves a finished package to the done directory and wipes its key file.
    fn finish_package(&self, name: &str) -> Result<(), SourceError> {
        let from = kf_files::confined_join(&self.pool, name)?;
        kf_files::check_plain_dir(&from)?;
        std::fs::create_dir_all(&self.done_dir).map_err(|e| io_error(&self.done_dir, e))?;
        let to = kf_files::confined_join(&self.done_dir, name)?;
        if std::fs::symlink_metadata(&to).is_ok() {
            return Err(SourceError::AlreadyDone {
                package: name.to_owned(),
                done_dir: self.done_dir.display().to_string(),
            });
        }
        std::fs::rename(&from, &to).map_err(|e| io_error(&from, e))?;
        sync_dir(&self.pool)?;
        sync_dir(&self.done_dir)?;
        if !self.keep_packages {
            kf_files::wipe_and_remove(&to.join(PRIVATE_KEY_FILE))?;
            sync_dir(&to)?;
        }
        Ok(())
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
        manifest::check(&dir, name, &files, &self.manifest)?;
        validate_package(&dir, name, &files, &self.shared)
    }

    /// Number of packages not yet claimed.
    pub fn remaining(&self) -> Result<usize, SourceError> {
        let ledger = self.ledger();
        let claimed = ledger.claims()?;
        Ok(ledger
            .package_names()?
            .iter()
            .filter(|n| !claimed.iter().any(|c| &c.package == *n))
            .count())
    }

    fn claim_and_load(&self, uid: &[u8]) -> Result<Package, SourceError> {
        let ledger = self.ledger();
        let name = match ledger.claim(uid, &self.done_dir)? {
            ledger::Claim::Existing(name) | ledger::Claim::New(name) => name,
            ledger::Claim::Done(package) => {
                return Err(SourceError::FobAlreadyDone {
                    package,
                    done_dir: self.done_dir.display().to_string(),
                })
            }
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

    fn settle(&mut self, origin: &str, settlement: Settlement) -> Result<(), SourceError> {
        match settlement {
            Settlement::Done => self.finish_package(origin),
            Settlement::Release => self.ledger().release(origin),
            Settlement::Reject => self.ledger().mark_rejected(origin),
            Settlement::Keep => Ok(()),
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Makes a rename or removal in `dir` durable (POSIX: fsync the directory;
/// Windows has no directory handle to sync and commits renames itself).
fn sync_dir(dir: &Path) -> Result<(), SourceError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
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
