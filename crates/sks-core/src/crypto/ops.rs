//! User API cryptography (§4.1, byte layouts Appendix C): RSA decryption, ECDH, HMAC and AES.
//! Signatures on hashed data are [`PrivateKey::sign_prehashed`]. Algorithm/key compatibility is
//! checked by the caller; each failure says what failed ([`OpError`]), never which data.

use super::keys::{PrivateKey, PublicKey};
use crate::secret::Secret;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt};

/// AES block (and CBC IV) length in bytes.
const AES_BLOCK: usize = 16;

/// Why a User API operation failed. Names the defect, never key or data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The key is not of the family the operation needs.
    #[error("the key is not {0}")]
    KeyFamily(&'static str),
    /// ECDH with a public key that is not an EC key on the private key's curve.
    #[error("the public key is not an EC key on the private key's curve")]
    CurveMismatch,
    /// A hash name that [`hmac`] does not know.
    #[error("unsupported hash \"{0}\"")]
    UnsupportedHash(&'static str),
    /// A key length the primitive does not take (AES: 16, 24 or 32 bytes).
    #[error("{primitive} does not take a key of {len} bytes")]
    KeyLength {
        /// The primitive, e.g. `AES`.
        primitive: &'static str,
        /// The key's length in bytes.
        len: usize,
    },
    /// A CBC IV that is not one block.
    #[error("IV of {0} bytes (16 needed)")]
    IvLength(usize),
    /// ECB data or CBC ciphertext that is not whole blocks.
    #[error("data of {0} bytes is not whole 16-byte blocks")]
    NotWholeBlocks(usize),
    /// CBC ciphertext whose last block does not end in valid padding.
    #[error("invalid padding")]
    Padding,
    /// Raw RSA input that is not as long as the modulus, or not below it.
    #[error("input must be as long as the modulus and below it")]
    RsaInput,
    /// The RSA private-key operation failed; for PKCS#1 v1.5 this includes a malformed block,
    /// which is not told apart (Bleichenbacher).
    #[error("the ciphertext does not decrypt under this key")]
    RsaDecryption,
}

/// RSA PKCS#1 v1.5 decryption.
pub fn rsa_decrypt_pkcs1(key: &PrivateKey, data: &[u8]) -> Result<Secret, OpError> {
    match key {
        PrivateKey::Rsa(k) => k
            .decrypt(Pkcs1v15Encrypt, data)
            .map(Secret::new)
            .map_err(|_| OpError::RsaDecryption),
        _ => Err(OpError::KeyFamily("an RSA key")),
    }
}

/// Raw RSA decryption; output left-padded to the modulus length.
pub fn rsa_decrypt_raw(key: &PrivateKey, data: &[u8]) -> Result<Secret, OpError> {
    let PrivateKey::Rsa(k) = key else {
        return Err(OpError::KeyFamily("an RSA key"));
    };
    let size = k.size();
    if data.len() != size {
        return Err(OpError::RsaInput);
    }
    let c = BigUint::from_bytes_be(data);
    if &c >= k.n() {
        return Err(OpError::RsaInput);
    }
    let m = rsa::hazmat::rsa_decrypt_and_check(k.as_ref(), Some(&mut OsRng), &c)
        .map_err(|_| OpError::RsaDecryption)?;
    let bytes = m.to_bytes_be();
    let mut out = vec![0u8; size.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    Ok(Secret::new(out))
}

/// ECDH (SP800-56A CDH): the X coordinate of the shared point, fixed field length.
pub fn ecdh(key: &PrivateKey, peer: &PublicKey) -> Result<Secret, OpError> {
    match (key, peer) {
        (PrivateKey::P256(k), PublicKey::P256(p)) => {
            let s = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
            Ok(Secret::from_slice(s.raw_secret_bytes()))
        }
        (PrivateKey::P384(k), PublicKey::P384(p)) => {
            let s = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
            Ok(Secret::from_slice(s.raw_secret_bytes()))
        }
        (PrivateKey::Rsa(_), _) => Err(OpError::KeyFamily("an EC key")),
        _ => Err(OpError::CurveMismatch),
    }
}

/// HMAC with the named hash (sha1, sha256, sha384, sha512).
pub fn hmac(hash: &'static str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, OpError> {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, OpError> {
        let mut m = <M as Mac>::new_from_slice(key).map_err(|_| OpError::KeyLength {
            primitive: "HMAC",
            len: key.len(),
        })?;
        m.update(data);
        Ok(m.finalize().into_bytes().to_vec())
    }
    match hash {
        "sha1" => run::<Hmac<sha1::Sha1>>(key, data),
        "sha256" => run::<Hmac<sha2::Sha256>>(key, data),
        "sha384" => run::<Hmac<sha2::Sha384>>(key, data),
        "sha512" => run::<Hmac<sha2::Sha512>>(key, data),
        other => Err(OpError::UnsupportedHash(other)),
    }
}

/// Runs `$body` with `$cipher` the AES variant of `$key`'s length, or fails with
/// [`OpError::KeyLength`].
macro_rules! with_aes {
    ($key:expr, $cipher:ident => $body:expr) => {
        match $key.len() {
            16 => {
                type $cipher = aes::Aes128;
                $body
            }
            24 => {
                type $cipher = aes::Aes192;
                $body
            }
            32 => {
                type $cipher = aes::Aes256;
                $body
            }
            len => Err(OpError::KeyLength {
                primitive: "AES",
                len,
            }),
        }
    };
}

/// AES-CBC with PKCS#7 padding and an explicit IV.
pub fn aes_cbc(key: &[u8], iv: &[u8], encrypt: bool, data: &[u8]) -> Result<Vec<u8>, OpError> {
    if iv.len() != AES_BLOCK {
        return Err(OpError::IvLength(iv.len()));
    }
    with_aes!(key, C => {
        let key_length = |_| OpError::KeyLength { primitive: "AES", len: key.len() };
        if encrypt {
            cbc::Encryptor::<C>::new_from_slices(key, iv)
                .map_err(key_length)
                .map(|e| e.encrypt_padded_vec_mut::<Pkcs7>(data))
        } else if data.len() % AES_BLOCK != 0 {
            Err(OpError::NotWholeBlocks(data.len()))
        } else {
            cbc::Decryptor::<C>::new_from_slices(key, iv)
                .map_err(key_length)?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .map_err(|_| OpError::Padding)
        }
    })
}

/// AES-ECB without padding; `data` must be a multiple of 16 bytes.
pub fn aes_ecb(key: &[u8], encrypt: bool, data: &[u8]) -> Result<Vec<u8>, OpError> {
    if data.len() % AES_BLOCK != 0 {
        return Err(OpError::NotWholeBlocks(data.len()));
    }
    with_aes!(key, C => {
        let cipher = C::new_from_slice(key).map_err(|_| OpError::KeyLength {
            primitive: "AES",
            len: key.len(),
        })?;
        let mut out = data.to_vec();
        for block in out.chunks_exact_mut(AES_BLOCK) {
            let b = aes::Block::from_mut_slice(block);
            if encrypt { cipher.encrypt_block(b) } else { cipher.decrypt_block(b) }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_failed() {
        assert_eq!(
            aes_cbc(&[0; 15], &[0; 16], true, b"x"),
            Err(OpError::KeyLength {
                primitive: "AES",
                len: 15
            })
        );
        assert_eq!(
            aes_cbc(&[0; 16], &[0; 8], true, b"x"),
            Err(OpError::IvLength(8))
        );
        assert_eq!(
            aes_cbc(&[0; 16], &[0; 16], false, &[0; 16]),
            Err(OpError::Padding)
        );
        assert_eq!(
            aes_ecb(&[0; 32], true, &[0; 17]),
            Err(OpError::NotWholeBlocks(17))
        );
        assert_eq!(
            hmac("md5", b"k", b"d"),
            Err(OpError::UnsupportedHash("md5"))
        );
        assert_eq!(hmac("sha256", b"", b"d").map(|m| m.len()), Ok(32));
    }
}
