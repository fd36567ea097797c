//! Asymmetric key handling: SPKI parsing restricted to canonical encodings (byte layouts §1.4,
//! §10 item 26), PKCS#8 private keys, key generation (§4.1/§4.3) and the SHA-256 signature
//! scheme used by attestations and Target Key References (§6.4, byte layouts §3, §7).

use crate::secret::Secret;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

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
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        match self {
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k)
                    .sign_prehash(&field_prehash(data, 32))
                    .map_err(|_| KeyError::Signature)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::P384(k) => {
                let sig: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k)
                    .sign_prehash(&field_prehash(data, 48))
                    .map_err(|_| KeyError::Signature)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
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
