//! User API cryptography (§4.1, byte layouts Appendix C): RSA decryption, ECDH, HMAC and AES.
//! Signatures on hashed data are [`PrivateKey::sign_prehashed`]. Algorithm/key compatibility is
//! checked by the caller.

use super::keys::{PrivateKey, PublicKey};
use crate::secret::Secret;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt};

/// RSA PKCS#1 v1.5 decryption.
pub fn rsa_decrypt_pkcs1(key: &PrivateKey, data: &[u8]) -> Option<Secret> {
    match key {
        PrivateKey::Rsa(k) => k.decrypt(Pkcs1v15Encrypt, data).ok().map(Secret::new),
        _ => None,
    }
}

/// Raw RSA decryption; output left-padded to the modulus length.
pub fn rsa_decrypt_raw(key: &PrivateKey, data: &[u8]) -> Option<Secret> {
    let PrivateKey::Rsa(k) = key else { return None };
    let size = k.size();
    if data.len() != size {
        return None;
    }
    let c = BigUint::from_bytes_be(data);
    if &c >= k.n() {
        return None;
    }
    let m = rsa::hazmat::rsa_decrypt_and_check(k.as_ref(), Some(&mut OsRng), &c).ok()?;
    let bytes = m.to_bytes_be();
    let mut out = vec![0u8; size.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    Some(Secret::new(out))
}

/// ECDH (SP800-56A CDH): the X coordinate of the shared point, fixed field length.
pub fn ecdh(key: &PrivateKey, peer: &PublicKey) -> Option<Secret> {
    match (key, peer) {
        (PrivateKey::P256(k), PublicKey::P256(p)) => {
            let s = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
            Some(Secret::from_slice(s.raw_secret_bytes()))
        }
        (PrivateKey::P384(k), PublicKey::P384(p)) => {
            let s = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine());
            Some(Secret::from_slice(s.raw_secret_bytes()))
        }
        _ => None,
    }
}

/// HMAC with the named hash (sha1, sha256, sha384, sha512).
pub fn hmac(hash: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as Mac>::new_from_slice(key).ok()?;
        m.update(data);
        Some(m.finalize().into_bytes().to_vec())
    }
    match hash {
        "sha1" => run::<Hmac<sha1::Sha1>>(key, data),
        "sha256" => run::<Hmac<sha2::Sha256>>(key, data),
        "sha384" => run::<Hmac<sha2::Sha384>>(key, data),
        "sha512" => run::<Hmac<sha2::Sha512>>(key, data),
        _ => None,
    }
}

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
            _ => None,
        }
    };
}

/// AES-CBC with PKCS#7 padding and an explicit IV.
pub fn aes_cbc(key: &[u8], iv: &[u8], encrypt: bool, data: &[u8]) -> Option<Vec<u8>> {
    with_aes!(key, C => {
        if encrypt {
            cbc::Encryptor::<C>::new_from_slices(key, iv)
                .ok()
                .map(|e| e.encrypt_padded_vec_mut::<Pkcs7>(data))
        } else {
            cbc::Decryptor::<C>::new_from_slices(key, iv)
                .ok()
                .and_then(|d| d.decrypt_padded_vec_mut::<Pkcs7>(data).ok())
        }
    })
}

/// AES-ECB without padding; `data` must be a multiple of 16 bytes.
pub fn aes_ecb(key: &[u8], encrypt: bool, data: &[u8]) -> Option<Vec<u8>> {
    if data.len() % 16 != 0 {
        return None;
    }
    with_aes!(key, C => {
        let cipher = C::new_from_slice(key).ok()?;
        let mut out = data.to_vec();
        for block in out.chunks_exact_mut(16) {
            let b = aes::Block::from_mut_slice(block);
            if encrypt { cipher.encrypt_block(b) } else { cipher.decrypt_block(b) }
        }
        Some(out)
    })
}
