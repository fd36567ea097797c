//! Session security mechanisms of §6 (byte layouts §2–§5, §7): the `sks.s1` KDF, MAC keys
//! with MACSequenceCounter, attestations, the EncryptionKey with AES-256-CBC (IV prepended),
//! signProvisioningSessionData and the Target Key Reference hash. Shared by the SKS and
//! the issuer emulation (`sks-issuer`), so both sides compute the same bytes.

pub mod keys;
pub mod ops;

use crate::codec::Writer;
use crate::consts::{DEVICE_ATTESTATION, ENCRYPTION_KEY, EXTERNAL_SIGNATURE};
use crate::error::{ErrorCode, SksError};
use crate::secret::Secret;
use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A cryptographic primitive refused to work. Carries no key or data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The HMAC implementation rejected the key (it accepts every length, RFC 2104).
    #[error("HMAC key rejected")]
    HmacKey,
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// §6.1 encrypted data with a bad length or padding.
    #[error("decryption of encrypted data failed")]
    Decrypt,
    /// An input did not fit its length prefix in the KDF's encoding.
    #[error("key derivation input too long")]
    InputTooLong,
}

/// A failed primitive is an internal error (the message names the primitive, never data).
impl From<CryptoError> for SksError {
    fn from(e: CryptoError) -> Self {
        SksError::new(ErrorCode::Internal, e.to_string())
    }
}

/// HMAC-SHA256 (RFC 2104; long keys are hashed first by the `hmac` crate).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], CryptoError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| CryptoError::HmacKey)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// Random bytes from the operating system; a failed draw is an error, never a weak value.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut v = vec![0u8; n];
    OsRng
        .try_fill_bytes(&mut v)
        .map_err(|_| CryptoError::Random)?;
    Ok(v)
}

/// A fresh secret of `n` random bytes as the text of a key or token file: lowercase hex and a
/// newline. The text is built in a buffer of its final size, so no copy of it is left behind
/// unzeroized.
pub fn random_hex_line(n: usize) -> Result<Secret, CryptoError> {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = Secret::new(random_bytes(n)?);
    let mut text = Vec::with_capacity(2 * n + 1);
    for b in bytes.expose() {
        text.push(HEX_DIGITS[usize::from(b >> 4)]);
        text.push(HEX_DIGITS[usize::from(b & 0x0F)]);
    }
    text.push(b'\n');
    Ok(Secret::new(text))
}

/// `N` random bytes from the operating system.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut v = [0u8; N];
    OsRng
        .try_fill_bytes(&mut v)
        .map_err(|_| CryptoError::Random)?;
    Ok(v)
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
    ) -> Result<Self, CryptoError> {
        let mut w = Writer::new();
        w.string(client_session_id)
            .string(server_session_id)
            .string(issuer_uri)
            .array(device_id);
        let data = w.into_bytes().map_err(|_| CryptoError::InputTooLong)?;
        hmac_sha256(z, &data).map(Self)
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
    pub fn plain_hmac(&self, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        hmac_sha256(&self.0, data)
    }

    /// §6.2: `HMAC(SessionKey || MethodName || counter:short, data)`.
    pub fn mac(&self, method: &str, counter: u16, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        self.suffixed(method.as_bytes(), counter, data)
    }

    /// §6.3: `HMAC(SessionKey || "Device Attestation" || counter:short, data)`.
    pub fn attest(&self, counter: u16, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        self.suffixed(DEVICE_ATTESTATION, counter, data)
    }

    fn suffixed(&self, suffix: &[u8], counter: u16, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        let mut key = Vec::with_capacity(32 + suffix.len() + 2);
        key.extend_from_slice(&self.0);
        key.extend_from_slice(suffix);
        key.extend_from_slice(&counter.to_be_bytes());
        let out = hmac_sha256(&key, data);
        key.zeroize();
        out
    }

    /// signProvisioningSessionData: `HMAC(SessionKey || "External Signature", Data)`.
    pub fn external_signature(&self, data: &[u8]) -> Result<[u8; 32], CryptoError> {
        let mut key = self.0.to_vec();
        key.extend_from_slice(EXTERNAL_SIGNATURE);
        let out = hmac_sha256(&key, data);
        key.zeroize();
        out
    }

    /// §6.4: `HMAC(SessionKey || DeviceID, EECertificate)`, all verbatim.
    pub fn target_key_reference(
        &self,
        device_id: &[u8],
        target_certificate: &[u8],
    ) -> Result<[u8; 32], CryptoError> {
        let mut key = self.0.to_vec();
        key.extend_from_slice(device_id);
        let out = hmac_sha256(&key, target_certificate);
        key.zeroize();
        out
    }

    fn encryption_key(&self) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        hmac_sha256(&self.0, ENCRYPTION_KEY).map(Zeroizing::new)
    }

    /// §6.1: `IV || AES-256-CBC(EncryptionKey, IV, PKCS#7(plaintext))` with a random IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.encryption_key()?;
        let iv: [u8; 16] = random_array()?;
        let enc = cbc::Encryptor::<Aes256>::new(&(*key).into(), &iv.into());
        let mut out = iv.to_vec();
        out.extend_from_slice(&enc.encrypt_padded_vec_mut::<Pkcs7>(plaintext));
        Ok(out)
    }

    /// Inverse of [`SessionKey::encrypt`]; [`CryptoError::Decrypt`] on bad length or padding.
    pub fn decrypt(&self, data: &[u8]) -> Result<Secret, CryptoError> {
        if data.len() < 32 || data.len() % 16 != 0 {
            return Err(CryptoError::Decrypt);
        }
        let key = self.encryption_key()?;
        let (iv, ct) = data.split_at(16);
        let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError::Decrypt)?;
        let dec = cbc::Decryptor::<Aes256>::new(&(*key).into(), &iv.into());
        dec.decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map(Secret::new)
            .map_err(|_| CryptoError::Decrypt)
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
        assert_eq!(hex::encode(*sk().encryption_key().unwrap()), v["A.2"]);
        assert_eq!(
            hex::encode(sk().external_signature(b"abc").unwrap()),
            v["A.3"]
        );
    }

    #[test]
    fn encryption_round_trips_and_rejects_garbage() {
        let k = sk();
        let ct = k.encrypt(b"secret value").unwrap();
        assert_eq!(ct.len(), 32);
        assert_eq!(k.decrypt(&ct).unwrap().expose(), b"secret value");
        assert_eq!(k.decrypt(&ct[..31]).err(), Some(CryptoError::Decrypt));
        let mut bad = ct.clone();
        bad[31] ^= 1;
        assert!(k
            .decrypt(&bad)
            .map(|s| s.expose() != b"secret value")
            .unwrap_or(true));
    }
}
