//! The device identity (§2.1): the Attestation Private Key (P-256) and the Device Certificate
//! path reported by getDeviceInfo. Created once by `sks init` and stored as a record.

use crate::codec::{Reader, Writer};
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::secret::Secret;
use crate::x509::{issue_certificate, X509Error};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};

/// Attestation key and device certificate path (device certificate first).
pub struct DeviceIdentity {
    key: p256::SecretKey,
    certificate_path: Vec<Vec<u8>>,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("certificates", &self.certificate_path.len())
            .finish()
    }
}

impl DeviceIdentity {
    /// Generates a P-256 attestation key and a self-signed device certificate.
    pub fn generate(common_name: &str) -> Result<Self, X509Error> {
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let spki = PublicKey::P256(key.public_key())
            .to_spki()
            .map_err(|e| X509Error(e.to_string()))?;
        let subject = format!("CN={common_name},O=SKS software device");
        let serial =
            u64::from_be_bytes(crate::crypto::random_bytes(8).try_into().unwrap_or([1; 8])) >> 1;
        let cert = issue_certificate(
            &key,
            None,
            &subject,
            &spki,
            serial.max(1),
            std::time::Duration::from_secs(20 * 365 * 86400),
        )?;
        Ok(Self {
            key,
            certificate_path: vec![cert],
        })
    }

    /// The device certificate (Device ID in E2ES mode, §2.7).
    pub fn certificate(&self) -> &[u8] {
        self.certificate_path
            .first()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The certificate path.
    pub fn certificate_path(&self) -> &[Vec<u8>] {
        &self.certificate_path
    }

    /// Signs with SHA256withECDSA (DER) — the E2ES attestation signature (byte layouts §3).
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        PrivateKey::P256(self.key.clone()).sign_sha256(message).ok()
    }

    /// Serializes for storage.
    pub fn to_record(&self) -> Option<Secret> {
        let pkcs8 = self.key.to_pkcs8_der().ok()?;
        let mut w = Writer::new();
        w.byte(1).blob(pkcs8.as_bytes());
        w.int(u32::try_from(self.certificate_path.len()).ok()?);
        for c in &self.certificate_path {
            w.blob(c);
        }
        Some(Secret::new(w.into_bytes()))
    }

    /// Parses a stored record.
    pub fn from_record(data: &[u8]) -> Option<Self> {
        let mut r = Reader::new(data);
        if r.byte().ok()? != 1 {
            return None;
        }
        let pkcs8 = Secret::new(r.blob().ok()?);
        let key = p256::SecretKey::from_pkcs8_der(pkcs8.expose()).ok()?;
        let n = r.int().ok()?;
        let mut certificate_path = Vec::new();
        for _ in 0..n {
            certificate_path.push(r.blob().ok()?);
        }
        r.finish().ok()?;
        Some(Self {
            key,
            certificate_path,
        })
    }
}
