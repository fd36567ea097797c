//! The device identity (§2.1): the Attestation Private Key (P-256) and the Device Certificate
//! path reported by getDeviceInfo. Created once by `sks init` and stored as a record.

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::keys::{KeyError, PrivateKey, PublicKey};
use crate::crypto::{random_array, CryptoError};
use crate::secret::Secret;
use crate::x509::{issue_certificate, X509Error};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};

const RECORD_VERSION: u8 = 1;

/// Why a device identity could not be made, stored or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device certificate could not be issued.
    #[error(transparent)]
    Certificate(#[from] X509Error),
    /// The attestation key could not be encoded or used.
    #[error("attestation key: {0}")]
    Key(#[from] KeyError),
    /// No random serial number.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The stored record is malformed.
    #[error("device record: {0}")]
    Record(#[from] DecodeError),
}

/// Attestation key and device certificate path (device certificate first).
pub struct DeviceIdentity {
    key: p256::SecretKey,
    /// The device certificate (never absent: a path is at least this certificate).
    certificate: Vec<u8>,
    /// The rest of the path, issuer after issuer.
    issuers: Vec<Vec<u8>>,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("certificates", &(1 + self.issuers.len()))
            .finish()
    }
}

impl DeviceIdentity {
    /// Generates a P-256 attestation key and a self-signed device certificate.
    pub fn generate(common_name: &str) -> Result<Self, DeviceError> {
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let spki = PublicKey::P256(key.public_key()).to_spki()?;
        let subject = format!("CN={common_name},O=SKS software device");
        let serial = u64::from_be_bytes(random_array()?) >> 1;
        let certificate = issue_certificate(
            &key,
            None,
            &subject,
            &spki,
            serial.max(1),
            std::time::Duration::from_secs(20 * 365 * 86400),
        )?;
        Ok(Self {
            key,
            certificate,
            issuers: Vec::new(),
        })
    }

    /// The device certificate (Device ID in E2ES mode, §2.7).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The certificate path, device certificate first.
    pub fn certificate_path(&self) -> Vec<Vec<u8>> {
        std::iter::once(&self.certificate)
            .chain(&self.issuers)
            .cloned()
            .collect()
    }

    /// Signs with SHA256withECDSA (DER) — the E2ES attestation signature (byte layouts §3).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        PrivateKey::P256(self.key.clone()).sign_sha256(message)
    }

    /// Serializes for storage.
    pub fn to_record(&self) -> Result<Secret, DeviceError> {
        let pkcs8 = self.key.to_pkcs8_der().map_err(|_| KeyError::Encoding)?;
        let count = u32::try_from(1 + self.issuers.len()).map_err(|_| DecodeError::TooLong)?;
        let mut w = Writer::new();
        w.byte(RECORD_VERSION).blob(pkcs8.as_bytes()).int(count);
        w.blob(&self.certificate);
        for c in &self.issuers {
            w.blob(c);
        }
        Ok(Secret::new(w.into_bytes()?))
    }

    /// Parses a stored record.
    pub fn from_record(data: &[u8]) -> Result<Self, DeviceError> {
        let mut r = Reader::new(data);
        let version = r.byte()?;
        if version != RECORD_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let pkcs8 = Secret::new(r.blob()?);
        let key =
            p256::SecretKey::from_pkcs8_der(pkcs8.expose()).map_err(|_| KeyError::Encoding)?;
        let n = r.int()?;
        if n == 0 {
            return Err(DecodeError::Truncated("device certificate").into());
        }
        let certificate = r.blob()?;
        let mut issuers = Vec::new();
        for _ in 1..n {
            issuers.push(r.blob()?);
        }
        r.finish()?;
        Ok(Self {
            key,
            certificate,
            issuers,
        })
    }
}
