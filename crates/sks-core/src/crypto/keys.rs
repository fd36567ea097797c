//! Asymmetric key handling: SPKI parsing restricted to canonical encodings (byte layouts §1.4,
//! §10 item 26), PKCS#8 private keys, key generation (§4.1/§4.3) and the SHA-256 signature
//! scheme used by attestations and Target Key References (§6.4, byte layouts §3, §7).

use crate::secret::Secret;
use ecdsa::elliptic_curve::generic_array::ArrayLength;
use ecdsa::elliptic_curve::ops::Invert;
use ecdsa::elliptic_curve::subtle::CtOption;
use ecdsa::elliptic_curve::{
    self as elliptic_curve, CurveArithmetic, FieldBytesSize, PrimeCurve, Scalar,
};
use ecdsa::hazmat::{bits2field, DigestPrimitive, SignPrimitive};
use ecdsa::SignatureSize;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::ops::Add;
use zeroize::Zeroizing;

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The encoding is not a supported, canonical key.
    #[error("unsupported or malformed key encoding")]
    Encoding,
    /// Key generation failed.
    #[error("key generation failed")]
    Generation,
    /// A signature could not be produced or parsed.
    #[error("signature error")]
    Signature,
}

/// A public key this SKS supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// NIST P-256.
    P256(p256::PublicKey),
    /// NIST P-384.
    P384(p384::PublicKey),
    /// RSA.
    Rsa(RsaPublicKey),
}

impl PublicKey {
    /// Parses SPKI DER; only canonical encodings (re-encoding gives the same bytes) pass.
    pub fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        let key = if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            Self::P256(k)
        } else if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            Self::P384(k)
        } else if let Ok(k) = RsaPublicKey::from_public_key_der(der) {
            Self::Rsa(k)
        } else {
            return Err(KeyError::Encoding);
        };
        if key.to_spki()? != der {
            return Err(KeyError::Encoding);
        }
        Ok(key)
    }

    /// SPKI DER.
    pub fn to_spki(&self) -> Result<Vec<u8>, KeyError> {
        let doc = match self {
            Self::P256(k) => k.to_public_key_der(),
            Self::P384(k) => k.to_public_key_der(),
            Self::Rsa(k) => k.to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|_| KeyError::Encoding)
    }

    /// True for RSA keys.
    pub fn is_rsa(&self) -> bool {
        matches!(self, Self::Rsa(_))
    }

    /// RSA modulus bits, if RSA.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            Self::Rsa(k) => Some(k.size() * 8),
            _ => None,
        }
    }

    /// Verifies a SHA256withRSA / SHA256withECDSA (DER) signature over `message`.
    pub fn verify_sha256(&self, message: &[u8], signature: &[u8]) -> Result<bool, KeyError> {
        use p256::ecdsa::signature::Verifier;
        match self {
            Self::P256(k) => {
                let sig = p256::ecdsa::DerSignature::from_bytes(signature)
                    .map_err(|_| KeyError::Signature)?;
                Ok(p256::ecdsa::VerifyingKey::from(k)
                    .verify(message, &sig)
                    .is_ok())
            }
            Self::P384(k) => {
                // SHA256withECDSA on P-384: verify the SHA-256 prehash.
                use p384::ecdsa::signature::hazmat::PrehashVerifier;
                let sig =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| KeyError::Signature)?;
                let h = Sha256::digest(message);
                Ok(p384::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(&h, &sig)
                    .is_ok())
            }
            Self::Rsa(k) => {
                let h = Sha256::digest(message);
                Ok(k.verify(Pkcs1v15Sign::new::<Sha256>(), &h, signature)
                    .is_ok())
            }
        }
    }
}

/// A private key held by the SKS. Inner types zeroize on drop; `Debug` is redacted.
pub enum PrivateKey {
    /// NIST P-256.
    P256(p256::SecretKey),
    /// NIST P-384.
    P384(p384::SecretKey),
    /// RSA.
    Rsa(Box<RsaPrivateKey>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::P256(_) => "PrivateKey::P256(<redacted>)",
            Self::P384(_) => "PrivateKey::P384(<redacted>)",
            Self::Rsa(_) => "PrivateKey::Rsa(<redacted>)",
        })
    }
}

/// Largest RSA public exponent this SKS generates and uses: 2^33 - 1, the bound the RSA
/// implementation accepts for every public-key operation. createKeyEntry rejects a larger
/// `.exp` KeyParameters value at parameter validation (ERROR_OPTION, byte layouts §10 item 15)
/// instead of failing during key generation.
pub const MAX_RSA_EXPONENT: u64 = RsaPublicKey::MAX_PUB_EXPONENT;

/// Key generation parameters (createKeyEntry KeyAlgorithm, §4.1/§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// P-256.
    P256,
    /// P-384.
    P384,
    /// RSA with modulus bits and public exponent.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
        /// Public exponent.
        exponent: u64,
    },
}

impl PrivateKey {
    /// Generates a key.
    pub fn generate(spec: KeySpec) -> Result<Self, KeyError> {
        Ok(match spec {
            KeySpec::P256 => Self::P256(p256::SecretKey::random(&mut OsRng)),
            KeySpec::P384 => Self::P384(p384::SecretKey::random(&mut OsRng)),
            KeySpec::Rsa { bits, exponent } => Self::Rsa(Box::new(
                RsaPrivateKey::new_with_exp(&mut OsRng, bits, &BigUint::from(exponent))
                    .map_err(|_| KeyError::Generation)?,
            )),
        })
    }

    /// An explicit copy (private keys are not `Clone` to keep copies deliberate).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::P256(k) => Self::P256(k.clone()),
            Self::P384(k) => Self::P384(k.clone()),
            Self::Rsa(k) => Self::Rsa(k.clone()),
        }
    }

    /// Parses PKCS#8 DER (RSA, P-256 or P-384).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::P384(k));
        }
        RsaPrivateKey::from_pkcs8_der(der)
            .map(|k| Self::Rsa(Box::new(k)))
            .map_err(|_| KeyError::Encoding)
    }

    /// Parses a PKCS#8 key this SKS encoded itself ([`PrivateKey::to_pkcs8`], at createKeyEntry
    /// or importPrivateKey). An EC key's embedded public point was derived from its scalar
    /// when it was encoded, so it is not derived again to compare (a scalar multiplication,
    /// as long as the signature that follows); anything else is read by
    /// [`PrivateKey::from_pkcs8`].
    pub fn from_stored_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        use p256::pkcs8::{AssociatedOid, PrivateKeyInfo};
        let info = PrivateKeyInfo::try_from(der).map_err(|_| KeyError::Encoding)?;
        if info.algorithm.oid == elliptic_curve::ALGORITHM_OID {
            let curve = info.algorithm.parameters_oid().ok();
            let ec =
                sec1::EcPrivateKey::try_from(info.private_key).map_err(|_| KeyError::Encoding)?;
            if curve == Some(p256::NistP256::OID) {
                return p256::SecretKey::from_slice(ec.private_key)
                    .map(Self::P256)
                    .map_err(|_| KeyError::Encoding);
            }
            if curve == Some(p384::NistP384::OID) {
                return p384::SecretKey::from_slice(ec.private_key)
                    .map(Self::P384)
                    .map_err(|_| KeyError::Encoding);
            }
        }
        Self::from_pkcs8(der)
    }

    /// PKCS#8 DER (exportKey).
    pub fn to_pkcs8(&self) -> Result<Secret, KeyError> {
        let doc = match self {
            Self::P256(k) => k.to_pkcs8_der(),
            Self::P384(k) => k.to_pkcs8_der(),
            Self::Rsa(k) => k.to_pkcs8_der(),
        };
        doc.map(|d| Secret::from_slice(d.as_bytes()))
            .map_err(|_| KeyError::Encoding)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::P256(k) => PublicKey::P256(k.public_key()),
            Self::P384(k) => PublicKey::P384(k.public_key()),
            Self::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
        }
    }

    /// SHA256withRSA (PKCS#1 v1.5) or SHA256withECDSA (DER) over `message`.
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let h = Sha256::digest(message);
        self.sign_prehashed(&h, HashId::Sha256)
    }
}

/// The ECDSA message representative for hashed data of any length (§4.1 `ecdsa.none` imposes
/// no length): data shorter than the field is the integer it encodes (SEC 1 §4.1.3 step 5,
/// bits2int), which is the data left-padded with zeros; longer data is truncated by the signer.
fn field_prehash(data: &[u8], field_len: usize) -> std::borrow::Cow<'_, [u8]> {
    match field_len.checked_sub(data.len()) {
        Some(pad) if pad > 0 => {
            let mut e = vec![0u8; pad];
            e.extend_from_slice(data);
            std::borrow::Cow::Owned(e)
        }
        _ => std::borrow::Cow::Borrowed(data),
    }
}

/// ECDSA (DER) of a prehash with the secret scalar itself: the RFC 6979 nonce and the
/// unnormalized S of `ecdsa::SigningKey::sign_prehash`, so the same bytes, without the public
/// key a `SigningKey` computes first (a scalar multiplication the signature does not use).
fn ecdsa_sign_prehash<C>(
    key: &elliptic_curve::SecretKey<C>,
    prehash: &[u8],
) -> Result<Vec<u8>, KeyError>
where
    C: PrimeCurve + CurveArithmetic + DigestPrimitive,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>> + SignPrimitive<C>,
    SignatureSize<C>: ArrayLength<u8>,
    ecdsa::der::MaxSize<C>: ArrayLength<u8>,
    <FieldBytesSize<C> as Add>::Output: Add<ecdsa::der::MaxOverhead> + ArrayLength<u8>,
{
    let d = Zeroizing::new(key.to_nonzero_scalar());
    let z = bits2field::<C>(prehash).map_err(|_| KeyError::Signature)?;
    let (sig, _) = d
        .try_sign_prehashed_rfc6979::<C::Digest>(&z, &[])
        .map_err(|_| KeyError::Signature)?;
    Ok(sig.to_der().as_bytes().to_vec())
}

/// Which DigestInfo an RSA signature carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashId {
    /// SHA-1 DigestInfo.
    Sha1,
    /// SHA-256 DigestInfo.
    Sha256,
    /// No DigestInfo (rsa.none / ecdsa.none / ECDSA-with-hash).
    None,
}

impl PrivateKey {
    /// Signs already-hashed data: RSA PKCS#1 v1.5 (with the DigestInfo of `hash`) or ECDSA (DER).
    pub fn sign_prehashed(&self, data: &[u8], hash: HashId) -> Result<Vec<u8>, KeyError> {
        match self {
            PrivateKey::P256(k) => ecdsa_sign_prehash(k, &field_prehash(data, 32)),
            PrivateKey::P384(k) => ecdsa_sign_prehash(k, &field_prehash(data, 48)),
            PrivateKey::Rsa(k) => {
                let scheme = match hash {
                    HashId::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
                    HashId::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashId::None => Pkcs1v15Sign::new_unprefixed(),
                };
                k.sign_with_rng(&mut OsRng, scheme, data)
                    .map_err(|_| KeyError::Signature)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    /// What `SigningKey::sign_prehash` gives for `key` (DER).
    fn signing_key_signature(key: &PrivateKey, data: &[u8]) -> Vec<u8> {
        let der = match key {
            PrivateKey::P256(k) => p256::ecdsa::SigningKey::from(k)
                .sign_prehash(&field_prehash(data, 32))
                .map(|s: p256::ecdsa::Signature| s.to_der().as_bytes().to_vec()),
            PrivateKey::P384(k) => p384::ecdsa::SigningKey::from(k)
                .sign_prehash(&field_prehash(data, 48))
                .map(|s: p384::ecdsa::Signature| s.to_der().as_bytes().to_vec()),
            PrivateKey::Rsa(_) => unreachable!("an EC key"),
        };
        der.unwrap()
    }

    /// The scalar signer gives the bytes of `SigningKey::sign_prehash`, at every data length.
    #[test]
    fn ecdsa_signatures_match_signing_key() {
        for _ in 0..3 {
            for key in [KeySpec::P256, KeySpec::P384].map(|s| PrivateKey::generate(s).unwrap()) {
                for len in [1, 20, 32, 48, 64, 100] {
                    let data: Vec<u8> = (0..len).map(|i| (i as u8) ^ 0x5a).collect();
                    let ours = key.sign_prehashed(&data, HashId::None).unwrap();
                    assert_eq!(ours, signing_key_signature(&key, &data));
                }
            }
        }
    }

    /// A stored key reads back as the key that was stored.
    #[test]
    fn stored_pkcs8_reads_back() {
        for spec in [
            KeySpec::P256,
            KeySpec::P384,
            KeySpec::Rsa {
                bits: 1024,
                exponent: 65537,
            },
        ] {
            let key = PrivateKey::generate(spec).unwrap();
            let der = key.to_pkcs8().unwrap();
            let back = PrivateKey::from_stored_pkcs8(der.expose()).unwrap();
            assert_eq!(back.to_pkcs8().unwrap().expose(), der.expose());
            assert_eq!(back.public_key(), key.public_key());
        }
        assert!(matches!(
            PrivateKey::from_stored_pkcs8(b"junk"),
            Err(KeyError::Encoding)
        ));
    }

    /// RFC 6979 A.2.5: P-256, SHA-256, messages "sample" and "test".
    #[test]
    fn ecdsa_p256_rfc6979_vectors() {
        let x = hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
            .unwrap();
        let key = PrivateKey::P256(p256::SecretKey::from_slice(&x).unwrap());
        for (msg, rs) in [
            (&b"sample"[..], "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
            (&b"test"[..], "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083"),
        ] {
            let der = key.sign_sha256(msg).unwrap();
            let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
            assert_eq!(hex::encode(sig.to_bytes()), rs);
        }
    }
}
