//! Session security mechanisms of §6 (byte layouts §2–§5, §7): the `sks.s1` KDF, MAC keys
//! with MACSequenceCounter, attestations, the EncryptionKey with AES-256-CBC (IV prepended),
//! signProvisioningSessionData and the Target Key Reference hash. Shared by the SKS and
//! the issuer emulation (`sks-issuer`), so both sides compute the same bytes.

pub mod keys;
pub mod ops;

use crate::codec::Writer;
use crate::consts::{DEVICE_ATTESTATION, ENCRYPTION_KEY, EXTERNAL_SIGNATURE};
use crate::secret::Secret;
use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// HMAC-SHA256 (RFC 2104; long keys are hashed first by the `hmac` crate).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // `new_from_slice` accepts every key length for HMAC.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

/// The 32-byte SessionKey of a provisioning session. Zeroized on drop, redacted `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// The `sks.s1` KDF: `HMAC(Z, ClientSessionID:string || ServerSessionID:string ||
    /// IssuerURI:string || DeviceID:byte[])` (createProvisioningSession, byte layouts §2.1).
    pub fn derive(
        z: &[u8],
        client_session_id: &str,
        server_session_id: &str,
        issuer_uri: &str,
        device_id: &[u8],
    ) -> Self {
        let mut w = Writer::new();
        w.string(client_session_id)
            .string(server_session_id)
            .string(issuer_uri)
            .array(device_id);
        Self(hmac_sha256(z, w.as_bytes()))
    }

    /// Rebuilds a stored key.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw key, for persistence only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// `HMAC(SessionKey, data)` with no suffix: the session attestation (byte layouts §3).
    pub fn plain_hmac(&self, data: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, data)
    }

    /// §6.2: `HMAC(SessionKey || MethodName || counter:short, data)`.
    pub fn mac(&self, method: &str, counter: u16, data: &[u8]) -> [u8; 32] {
        self.suffixed(method.as_bytes(), counter, data)
    }

    /// §6.3: `HMAC(SessionKey || "Device Attestation" || counter:short, data)`.
    pub fn attest(&self, counter: u16, data: &[u8]) -> [u8; 32] {
        self.suffixed(DEVICE_ATTESTATION, counter, data)
    }

    fn suffixed(&self, suffix: &[u8], counter: u16, data: &[u8]) -> [u8; 32] {
        let mut key = Vec::with_capacity(32 + suffix.len() + 2);
        key.extend_from_slice(&self.0);
        key.extend_from_slice(suffix);
        key.extend_from_slice(&counter.to_be_bytes());
        let out = hmac_sha256(&key, data);
        key.zeroize();
        out
    }

    /// signProvisioningSessionData: `HMAC(SessionKey || "External Signature", Data)`.
    pub fn external_signature(&self, data: &[u8]) -> [u8; 32] {
        let mut key = self.0.to_vec();
        key.extend_from_slice(EXTERNAL_SIGNATURE);
        let out = hmac_sha256(&key, data);
        key.zeroize();
        out
    }

    /// §6.4: `HMAC(SessionKey || DeviceID, EECertificate)`, all verbatim.
    pub fn target_key_reference(&self, device_id: &[u8], target_certificate: &[u8]) -> [u8; 32] {
        let mut key = self.0.to_vec();
        key.extend_from_slice(device_id);
        let out = hmac_sha256(&key, target_certificate);
        key.zeroize();
        out
    }

    fn encryption_key(&self) -> Secret {
        Secret::new(hmac_sha256(&self.0, ENCRYPTION_KEY).to_vec())
    }

    /// §6.1: `IV || AES-256-CBC(EncryptionKey, IV, PKCS#7(plaintext))` with a random IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let key = self.encryption_key();
        let iv = random_bytes(16);
        let mut out = iv.clone();
        match cbc::Encryptor::<Aes256>::new_from_slices(key.expose(), &iv) {
            Ok(enc) => out.extend_from_slice(&enc.encrypt_padded_vec_mut::<Pkcs7>(plaintext)),
            Err(_) => out.clear(),
        }
        out
    }

    /// Inverse of [`SessionKey::encrypt`]; `None` on bad length or padding.
    pub fn decrypt(&self, data: &[u8]) -> Option<Secret> {
        if data.len() < 32 || data.len() % 16 != 0 {
            return None;
        }
        let key = self.encryption_key();
        let (iv, ct) = data.split_at(16);
        let dec = cbc::Decryptor::<Aes256>::new_from_slices(key.expose(), iv).ok()?;
        dec.decrypt_padded_vec_mut::<Pkcs7>(ct)
            .ok()
            .map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sk() -> SessionKey {
        crate::test_vectors::session_key()
    }

    /// Byte layouts Appendix A.2-A.3 (author-computed illustrative values); A.1 and A.4 are
    /// checked with the shared MAC layouts in [`crate::layout`].
    #[test]
    fn appendix_a_worked_encodings() {
        let v = crate::test_vectors::appendix_a();
        assert_eq!(hex::encode(sk().encryption_key().expose()), v["A.2"]);
        assert_eq!(hex::encode(sk().external_signature(b"abc")), v["A.3"]);
    }

    #[test]
    fn encryption_round_trips_and_rejects_garbage() {
        let k = sk();
        let ct = k.encrypt(b"secret value");
        assert_eq!(ct.len(), 32);
        assert_eq!(k.decrypt(&ct).unwrap().expose(), b"secret value");
        assert!(k.decrypt(&ct[..31]).is_none());
        let mut bad = ct.clone();
        bad[31] ^= 1;
        assert!(k
            .decrypt(&bad)
            .map(|s| s.expose() != b"secret value")
            .unwrap_or(true));
    }
}
