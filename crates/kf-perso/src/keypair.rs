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
        PrivateKeyMaterial::Scalar(scalar) => {
            let public = scalar
                .public_key()
                .map_err(|_| KeyPairError::InvalidScalar)?;
            if public != certified {
                return Err(KeyPairError::PrivateKeyMismatch);
            }
            Ok(())
        }
        // Already DEK-encrypted (see the module documentation), or a material
        // kind this crate does not know: nothing to compare in clear here.
        _ => Ok(()),
    }
}
