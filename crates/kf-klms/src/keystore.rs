//! Where the KDF3 master key lives: a key backend derives each fob's static
//! keys (and the journal receipt key) without the server holding the master
//! key itself.
//!
//! * [`FileKey`]: the master key in process memory, read from a hex file or
//!   the environment (the default, for `demo` and development).
//! * [`Pkcs11Key`] (module [`pkcs11`]): the master key is an AES object in a
//!   PKCS#11 token (`CKA_SENSITIVE`, not extractable); every AES-CMAC PRF block
//!   of KDF3 is computed by the token with `CKM_AES_CMAC`, so only the derived
//!   per-fob static keys leave it.
//!
//! Both compute exactly [`kf_crypto::kdf::nxp_kdf3`]: the PRF input of block
//! `i` is `i ‖ label(4) ‖ '00' ‖ UID ‖ L(2)` (SP 800-108 counter mode, counter
//! before the fixed data); the token is given [`kf_crypto::kdf::kdf3_prf_input`], the layout
//! `nxp_kdf3` itself uses, and the result is checked against the published vectors.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use kf_crypto::{AesKey, StaticKeys};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

pub mod pkcs11;

pub use pkcs11::{Pkcs11Key, Pkcs11Settings, TokenSelector};

/// Label of the journal receipt key derivation (see [`crate::receipt::ReceiptSigner`]).
pub const RECEIPT_LABEL: &[u8] = b"kf-klms/receipt-key/v1\0";

/// Key backend errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The token is not usable right now (removed, logged out, PIN locked,
    /// all sessions busy); requests get 503 and the backend reconnects on a
    /// later request.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// The backend is misconfigured (module, token, key label, PIN).
    #[error("key store configuration: {0}")]
    Config(String),
    /// A derivation failed for another reason.
    #[error("key derivation failed: {0}")]
    Failed(String),
}

/// A source of KDF3 derivations under one master key.
pub trait KeyBackend: Send + Sync {
    /// One line for the start-up log: backend kind, token and key label (no
    /// secrets).
    fn describe(&self) -> String;

    /// The three KDF3-diversified static keys of `uid` (labels
    /// [`kf_crypto::kdf::STATIC_KEY_LABELS`]).
    fn diversify(&self, uid: &[u8]) -> Result<StaticKeys, KeyError>;

    /// 32 bytes of receipt-key candidate number `counter`, a PRF of the master
    /// key over [`RECEIPT_LABEL`] and the counter.
    fn receipt_seed(&self, counter: u32) -> Result<Zeroizing<[u8; 32]>, KeyError>;
}

/// Largest PIN file.
pub const PIN_FILE_MAX_BYTES: u64 = 1024;

/// `[hsm]` section of the configuration file: the master key in a PKCS#11
/// token instead of `master_key_file`. The PIN comes from the environment
/// variable `pin_env` or the file `pin_file` (which must not be readable by
/// group or others), never from the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// The vendor's PKCS#11 module (shared library).
    pub module: PathBuf,
    /// Label of the token holding the key (or give `slot`).
    pub token_label: Option<String>,
    /// Slot id of the token (or give `token_label`).
    pub slot: Option<u64>,
    /// `CKA_LABEL` of the master key.
    pub key_label: String,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// File holding the user PIN (mode 0600 or stricter).
    pub pin_file: Option<PathBuf>,
    /// Most PKCS#11 sessions open at once (default: the number of CPUs,
    /// the server's worker count).
    pub sessions: Option<usize>,
}

impl HsmConfig {
    /// The token selector (`token_label` or `slot`, exactly one).
    pub fn token(&self) -> Result<TokenSelector, KeyError> {
        match (&self.token_label, self.slot) {
            (Some(label), None) => Ok(TokenSelector::Label(label.clone())),
            (None, Some(slot)) => Ok(TokenSelector::Slot(slot)),
            _ => Err(KeyError::Config(
                "[hsm]: give exactly one of token_label and slot".into(),
            )),
        }
    }

    /// The user PIN from `pin_env` or `pin_file` (exactly one), relative
    /// paths against `base`.
    pub fn pin(&self, base: &Path) -> Result<cryptoki::types::AuthPin, KeyError> {
        let pin = match (&self.pin_env, &self.pin_file) {
            (Some(var), None) => Zeroizing::new(std::env::var(var).map_err(|_| {
                KeyError::Config(format!("[hsm]: the PIN variable {var} is not set"))
            })?),
            (None, Some(file)) => {
                let path = base.join(file);
                check_private(&path)?;
                Zeroizing::new(
                    kf_files::read_regular_text(&path, PIN_FILE_MAX_BYTES, kf_files::Links::Follow)
                        .map_err(|e| KeyError::Config(format!("[hsm] pin_file: {e}")))?,
                )
            }
            _ => {
                return Err(KeyError::Config(
                    "[hsm]: give exactly one of pin_env and pin_file".into(),
                ))
            }
        };
        let trimmed = pin.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Err(KeyError::Config("[hsm]: the PIN is empty".into()));
        }
        Ok(cryptoki::types::AuthPin::from(trimmed.to_owned()))
    }

    /// Opens the token backend (module, login, key lookup).
    pub fn open(&self, base: &Path) -> Result<Pkcs11Key, KeyError> {
        let sessions = self.sessions.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get)
        });
        Pkcs11Key::open(Pkcs11Settings {
            module: base.join(&self.module),
            token: self.token()?,
            key_label: self.key_label.clone(),
            pin: self.pin(base)?,
            sessions,
        })
    }
}

/// Refuses a secret file that group or others may read or write. (On
/// Windows the file's ACL is the administrator's to set: not checked here.)
#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Refuses a secret file that group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| KeyError::Config(format!("{}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Config(format!(
            "{}: mode {mode:o} lets group or others read it; chmod 600",
            path.display()
        )));
    }
    Ok(())
}

/// The master key in memory.
pub struct FileKey {
    master: AesKey,
}

impl FileKey {
    /// Wraps a master key.
    pub fn new(master: AesKey) -> FileKey {
        FileKey { master }
    }
}

impl KeyBackend for FileKey {
    fn describe(&self) -> String {
        format!("file key (AES-{}, in memory)", self.master.bits())
    }

    fn diversify(&self, uid: &[u8]) -> Result<StaticKeys, KeyError> {
        kf_crypto::kdf::diversify_static_keys(&self.master, uid)
            .map_err(|e| KeyError::Failed(e.to_string()))
    }

    /// HMAC-SHA-256 keyed with the master key over the label and counter.
    fn receipt_seed(&self, counter: u32) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.master.expose_secret())
            .map_err(|_| KeyError::Failed("receipt key derivation failed".into()))?;
        mac.update(RECEIPT_LABEL);
        mac.update(&counter.to_be_bytes());
        Ok(Zeroizing::new(<[u8; 32]>::from(
            mac.finalize().into_bytes(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_crypto::kdf::{kdf3_prf_input, STATIC_KEY_LABELS};

    #[test]
    fn prf_input_layout_matches_kf_crypto() {
        let master = AesKey::from_slice(&[0x5Au8; 16]).unwrap();
        let uid = [0x04u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        for label in STATIC_KEY_LABELS {
            let block = kf_crypto::aes_cmac(&master, &kdf3_prf_input(1, label, &uid, 128));
            let reference = kf_crypto::kdf::nxp_kdf3(&master, label, &uid).unwrap();
            assert_eq!(&block[..], reference.expose_secret());
        }
    }
}
