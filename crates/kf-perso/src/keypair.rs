//! The key-pair check before anything is written to a fob: the private key
//! that goes into DGI A003 must belong to the device certificate in DGI A002.
//!
//! ```text
//! A002 (DER X.509) ──SubjectPublicKeyInfo──▶ P-256 point ─┬─ == scalar·G (A003, when held in clear)
//!                                                         └─ == device_public_key (what Verify uses)
//! ```
//!
//! Without this check a mismatched package is written in full, the fob is
//! PERSONALIZED and only the Verify stage notices: the fob is lost to rework.
//! A003 delivered DEK-encrypted by the KLMS is not decrypted here: the station
//! is not meant to see that scalar in clear (README, KLMS contract), so the
//! issuer of such packages is the layer that checks them.

use kf_source::{PrivateKeyMaterial, ProvisioningInput};
use thiserror::Error;

/// Why a provisioning input's key pair is refused. No variant carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyPairError {
    /// DGI A002 is not a DER X.509 certificate with an EC P-256 public key.
    #[error("device certificate (A002) has no usable P-256 public key: {reason}")]
    Certificate {
        /// The parser's complaint (no key bytes).
        reason: String,
    },
    /// The private scalar (A003) is not the one of the certificate's public key.
    #[error(
        "the private key (A003) does not match the public key of the device certificate (A002)"
    )]
    PrivateKeyMismatch,
    /// The key the Verify stage would check against is not the certificate's.
    #[error("the verification public key does not match the device certificate (A002)")]
    VerificationKeyMismatch,
    /// The private scalar could not be turned into a public key.
    #[error("the private key (A003) is not a valid P-256 scalar")]
    InvalidScalar,
}

/// `scalar·G == public`, on `ring`'s key-pair consistency check (its
/// precomputed base-point table makes this a small part of a fob's CPU; the
/// pure-Rust multiplication was several times the rest of the host work).
fn scalar_matches(scalar: &[u8], public: &p256::PublicKey) -> Result<(), KeyPairError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let point = public.to_encoded_point(false);
    let rng = ring::rand::SystemRandom::new();
    // ring accepts the pair only when the scalar is valid and its point is the
    // given one; it does not say which failed, so tell them apart first.
    if p256::SecretKey::from_slice(scalar).is_err() {
        return Err(KeyPairError::InvalidScalar);
    }
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        scalar,
        point.as_bytes(),
        &rng,
    )
    .map(drop)
    .map_err(|_| KeyPairError::PrivateKeyMismatch)
}

/// Checks that the device certificate's public key is the one the Verify
/// stage uses and, when the scalar is held in clear, that it is the scalar's
/// public key. Runs before any command reaches the card.
pub fn check_key_pair(input: &ProvisioningInput) -> Result<(), KeyPairError> {
    let certified = kf_source::container::certificate_public_key(&input.items.device_certificate)
        .map_err(|e| KeyPairError::Certificate {
        reason: e.to_string(),
    })?;
    if certified != input.device_public_key {
        return Err(KeyPairError::VerificationKeyMismatch);
    }
    match &input.items.private_key {
        PrivateKeyMaterial::Scalar(scalar) => scalar_matches(scalar.expose_secret(), &certified),
        // Already DEK-encrypted (see the module documentation), or a material
        // kind this crate does not know: nothing to compare in clear here.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_check_accepts_the_pair_and_refuses_others() {
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let other = p256::SecretKey::random(&mut rand_core::OsRng);
        let public = key.public_key();
        assert_eq!(scalar_matches(&key.to_bytes(), &public), Ok(()));
        assert_eq!(
            scalar_matches(&other.to_bytes(), &public),
            Err(KeyPairError::PrivateKeyMismatch)
        );
        assert_eq!(
            scalar_matches(&[0u8; 32], &public),
            Err(KeyPairError::InvalidScalar)
        );
        assert_eq!(
            scalar_matches(&[0xFFu8; 32], &public),
            Err(KeyPairError::InvalidScalar)
        );
    }
}
