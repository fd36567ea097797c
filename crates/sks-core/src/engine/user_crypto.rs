//! User API cryptographic methods \[100\]–\[104\] with endorsed-algorithm enforcement
//! (byte layouts Appendix C). Check order: PIN, data size, algorithm, key type, endorsement.

use super::Core;
use crate::api::{req, resp};
use crate::codec::Blob;
use crate::consts::*;
use crate::crypto::keys::HashId;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::ops;
use crate::crypto::random_bytes;
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::secret::Secret;

fn alg_err(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Algorithm, msg)
}

/// The key material a User API operation needs.
enum Material {
    Private(PrivateKey),
    Symmetric(Secret),
}

impl Core {
    /// Common prologue: closed key, PIN, data size, algorithm class, endorsement.
    fn prepare(
        &mut self,
        kh: u32,
        algorithm: &str,
        auth: &Secret,
        data_len: usize,
        wanted: fn(&AlgClass) -> bool,
    ) -> SksResult<(AlgClass, Material)> {
        self.closed_key(kh)?;
        self.verify_user(kh, auth)?;
        if data_len > MAX_LENGTH_CRYPTO_DATA {
            return Err(err(ErrorCode::Option, "Data exceeds CryptoDataSize"));
        }
        let class = algorithm_class(algorithm)
            .ok_or_else(|| alg_err(format!("Unsupported algorithm: {algorithm}")))?;
        if !wanted(&class) {
            return Err(alg_err(format!(
                "Algorithm does not match operation: {algorithm}"
            )));
        }
        let k = self.closed_key(kh)?;
        if !k.endorsed.is_empty() && !k.endorsed.iter().any(|e| e == algorithm) {
            return Err(alg_err(format!(
                "Algorithm not endorsed for key {kh}: {algorithm}"
            )));
        }
        let material = match &k.symmetric_key {
            Some(s) => Material::Symmetric(s.duplicate()),
            None => Material::Private(
                PrivateKey::from_stored_pkcs8(k.private_key.expose())
                    .map_err(|_| err(ErrorCode::Internal, "Stored private key unreadable"))?,
            ),
        };
        Ok((class, material))
    }

    fn asymmetric(m: Material, kh: u32, algorithm: &str) -> SksResult<PrivateKey> {
        match m {
            Material::Private(p) => Ok(p),
            Material::Symmetric(_) => Err(alg_err(format!(
                "Symmetric key {kh} is incompatible with: {algorithm}"
            ))),
        }
    }

    fn symmetric(m: Material, kh: u32, algorithm: &str) -> SksResult<Secret> {
        match m {
            Material::Symmetric(s) => Ok(s),
            Material::Private(_) => Err(alg_err(format!(
                "Asymmetric key {kh} is incompatible with: {algorithm}"
            ))),
        }
    }

    /// signHashedData \[100\].
    pub(crate) fn sign_hashed_data(
        &mut self,
        a: req::SignHashedData,
    ) -> SksResult<resp::SignHashedData> {
        let (class, m) = self.prepare(
            a.key_handle,
            &a.algorithm,
            &a.authorization,
            a.data.len(),
            |c| matches!(c, AlgClass::Signature { .. }),
        )?;
        let key = Self::asymmetric(m, a.key_handle, &a.algorithm)?;
        let AlgClass::Signature { rsa, hash_len } = class else {
            return Err(alg_err("Algorithm does not match operation"));
        };
        if rsa != matches!(key, PrivateKey::Rsa(_)) {
            return Err(alg_err(format!(
                "Key {} is incompatible with: {}",
                a.key_handle, a.algorithm
            )));
        }
        if !a.parameters.is_empty() {
            return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
        }
        if let Some(n) = hash_len {
            if a.data.len() != n {
                return Err(err(ErrorCode::Option, "Incorrect length of \"Data\""));
            }
        }
        let hash = match a.algorithm.as_str() {
            ALG_RSA_SHA1 => HashId::Sha1,
            ALG_RSA_SHA256 => HashId::Sha256,
            _ => HashId::None,
        };
        let result = key
            .sign_prehashed(&a.data, hash)
            .map_err(|_| err(ErrorCode::Crypto, "Signature operation failed"))?;
        Ok(resp::SignHashedData { result })
    }

    /// asymmetricKeyDecrypt \[101\].
    pub(crate) fn asymmetric_key_decrypt(
        &mut self,
        a: req::AsymmetricKeyDecrypt,
    ) -> SksResult<resp::AsymmetricKeyDecrypt> {
        let (_, m) = self.prepare(
            a.key_handle,
            &a.algorithm,
            &a.authorization,
            a.data.len(),
            |c| matches!(c, AlgClass::AsymmetricDecryption),
        )?;
        let key = Self::asymmetric(m, a.key_handle, &a.algorithm)?;
        if !matches!(key, PrivateKey::Rsa(_)) {
            return Err(alg_err(format!(
                "EC key {} is incompatible with: {}",
                a.key_handle, a.algorithm
            )));
        }
        if !a.parameters.is_empty() {
            return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
        }
        let result = if a.algorithm == ALG_RSA_RAW {
            ops::rsa_decrypt_raw(&key, &a.data)
        } else {
            ops::rsa_decrypt_pkcs1(&key, &a.data)
        };
        Ok(resp::AsymmetricKeyDecrypt {
            result: result.ok_or_else(|| err(ErrorCode::Crypto, "Decryption failed"))?,
        })
    }

    /// keyAgreement \[102\].
    pub(crate) fn key_agreement(&mut self, a: req::KeyAgreement) -> SksResult<resp::KeyAgreement> {
        let (_, m) = self.prepare(a.key_handle, &a.algorithm, &a.authorization, 0, |c| {
            matches!(c, AlgClass::KeyAgreement)
        })?;
        let key = Self::asymmetric(m, a.key_handle, &a.algorithm)?;
        if matches!(key, PrivateKey::Rsa(_)) {
            return Err(alg_err(format!(
                "RSA key {} is incompatible with: {}",
                a.key_handle, a.algorithm
            )));
        }
        if !a.parameters.is_empty() {
            return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
        }
        let peer = PublicKey::from_spki(&a.public_key)
            .map_err(|_| err(ErrorCode::Crypto, "Malformed \"PublicKey\""))?;
        let result = ops::ecdh(&key, &peer).ok_or_else(|| {
            err(
                ErrorCode::Option,
                "\"PublicKey\" curve does not match the key",
            )
        })?;
        Ok(resp::KeyAgreement { result })
    }

    /// performHMAC \[103\].
    pub(crate) fn perform_hmac(&mut self, a: req::PerformHmac) -> SksResult<resp::PerformHmac> {
        let (_, m) = self.prepare(
            a.key_handle,
            &a.algorithm,
            &a.authorization,
            a.data.0.len(),
            |c| matches!(c, AlgClass::Hmac),
        )?;
        let key = Self::symmetric(m, a.key_handle, &a.algorithm)?;
        if !a.parameters.is_empty() {
            return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
        }
        let hash = match a.algorithm.as_str() {
            ALG_HMAC_SHA1 => "sha1",
            ALG_HMAC_SHA256 => "sha256",
            ALG_HMAC_SHA384 => "sha384",
            _ => "sha512",
        };
        let result = ops::hmac(hash, key.expose(), &a.data.0)
            .ok_or_else(|| err(ErrorCode::Crypto, "HMAC failed"))?;
        Ok(resp::PerformHmac { result })
    }

    /// symmetricKeyEncrypt \[104\].
    pub(crate) fn symmetric_key_encrypt(
        &mut self,
        a: req::SymmetricKeyEncrypt,
    ) -> SksResult<resp::SymmetricKeyEncrypt> {
        let (class, m) = self.prepare(
            a.key_handle,
            &a.algorithm,
            &a.authorization,
            a.data.0.len(),
            |c| matches!(c, AlgClass::SymmetricEncryption(_)),
        )?;
        let key = Self::symmetric(m, a.key_handle, &a.algorithm)?;
        if let AlgClass::SymmetricEncryption(lens) = class {
            if !lens.contains(&key.len()) {
                return Err(err(
                    ErrorCode::Option,
                    "Key length does not match the algorithm",
                ));
            }
        }
        let crypto = || err(ErrorCode::Crypto, "Encryption/decryption failed");
        let result = match a.algorithm.as_str() {
            ALG_AES_CBC_PKCS5 => {
                if a.parameters.len() != 16 {
                    return Err(err(
                        ErrorCode::Option,
                        "\"Parameters\" must hold a 16-byte IV",
                    ));
                }
                ops::aes_cbc(key.expose(), &a.parameters, a.mode, &a.data.0).ok_or_else(crypto)?
            }
            ALG_AES_ECB_NOPAD => {
                if !a.parameters.is_empty() {
                    return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
                }
                ops::aes_ecb(key.expose(), a.mode, &a.data.0).ok_or_else(crypto)?
            }
            _ => {
                if !a.parameters.is_empty() {
                    return Err(err(ErrorCode::Option, "\"Parameters\" must be empty"));
                }
                if a.mode {
                    let iv = random_bytes(16)?;
                    let mut out = iv.clone();
                    out.extend(
                        ops::aes_cbc(key.expose(), &iv, true, &a.data.0).ok_or_else(crypto)?,
                    );
                    out
                } else {
                    if a.data.0.len() < 32 || a.data.0.len() % 16 != 0 {
                        return Err(crypto());
                    }
                    let (iv, ct) = a.data.0.split_at(16);
                    ops::aes_cbc(key.expose(), iv, false, ct).ok_or_else(crypto)?
                }
            }
        };
        Ok(resp::SymmetricKeyEncrypt {
            result: Blob(result),
        })
    }
}
