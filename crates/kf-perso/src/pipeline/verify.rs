//! The Verify stage: the fob proves it holds the private key of the device
//! certificate just written, by signing a fresh random challenge
//! (`kf_profile::verify`: ISO 7816-4 INTERNAL AUTHENTICATE, ECDSA P-256/SHA-256, DER).

use kf_apdu::{CommandApdu, ResponseApdu};
use p256::ecdsa::Signature;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

use super::{PipelineError, VerifyError};

/// The verification command for `challenge`.
pub fn verify_command(challenge: &[u8]) -> CommandApdu {
    use kf_profile::verify::{CLA, INS};
    CommandApdu::new(CLA, INS, 0x00, 0x00)
        .with_data(challenge.to_vec())
        .with_le(256)
}

/// Checks the fob's answer: status 9000 and a DER ECDSA signature over
/// `challenge` that verifies with `public_key`.
///
/// The verification itself runs on `ring` (assembly P-256): it was 90 % of the
/// station's CPU per fob with the pure-Rust `p256` verifier (callgrind profile).
pub fn check_signature(
    public_key: &p256::PublicKey,
    challenge: &[u8],
    response: &ResponseApdu,
) -> Result<(), PipelineError> {
    if !response.sw().is_success() {
        return Err(PipelineError::Card {
            command: "INTERNAL AUTHENTICATE",
            sw: response.sw(),
        });
    }
    // Parsed first only to tell a malformed answer from a wrong signature.
    Signature::from_der(response.data()).map_err(|_| VerifyError::MalformedSignature)?;
    let point = public_key.to_encoded_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes())
        .verify(challenge, response.data())
        .map_err(|_| VerifyError::SignatureMismatch.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_apdu::StatusWord;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;

    fn signed(key: &SigningKey, msg: &[u8]) -> ResponseApdu {
        let sig: Signature = key.sign(msg);
        ResponseApdu::new(sig.to_der().as_bytes().to_vec(), StatusWord::SUCCESS)
    }

    #[test]
    fn a_signature_by_the_certified_key_verifies() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let public = p256::PublicKey::from(key.verifying_key());
        assert!(check_signature(
            &public,
            b"challenge-0123456789",
            &signed(&key, b"challenge-0123456789")
        )
        .is_ok());
    }

    #[test]
    fn another_key_another_challenge_or_garbage_is_refused() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let other = SigningKey::random(&mut rand_core::OsRng);
        let public = p256::PublicKey::from(key.verifying_key());
        let msg = b"challenge-0123456789";
        assert!(matches!(
            check_signature(&public, msg, &signed(&other, msg)),
            Err(PipelineError::Verify(VerifyError::SignatureMismatch))
        ));
        assert!(matches!(
            check_signature(&public, msg, &signed(&key, b"other")),
            Err(PipelineError::Verify(VerifyError::SignatureMismatch))
        ));
        let garbage = ResponseApdu::new(vec![0x30, 0x03, 0x02, 0x01], StatusWord::SUCCESS);
        assert!(matches!(
            check_signature(&public, msg, &garbage),
            Err(PipelineError::Verify(VerifyError::MalformedSignature))
        ));
        let refused = ResponseApdu::new(vec![], StatusWord::new(0x69, 0x85));
        assert!(matches!(
            check_signature(&public, msg, &refused),
            Err(PipelineError::Card { .. })
        ));
    }

    // ring and RustCrypto's verifier must agree on good and tampered signatures.
    #[test]
    fn ring_agrees_with_the_p256_verifier() {
        use p256::ecdsa::signature::Verifier;
        for i in 0u8..40 {
            let key = SigningKey::random(&mut rand_core::OsRng);
            let public = p256::PublicKey::from(key.verifying_key());
            let msg = [i; 32];
            let mut der = signed(&key, &msg).data().to_vec();
            if i % 2 == 1 {
                let last = der.len() - 1;
                der[last] ^= 1 << (i % 8);
            }
            let ours = check_signature(
                &public,
                &msg,
                &ResponseApdu::new(der.clone(), StatusWord::SUCCESS),
            )
            .is_ok();
            let theirs = Signature::from_der(&der).is_ok_and(|sig| {
                p256::ecdsa::VerifyingKey::from(&public)
                    .verify(&msg, &sig)
                    .is_ok()
            });
            assert_eq!(ours, theirs, "case {i}");
            assert_eq!(ours, i % 2 == 0, "case {i}");
        }
    }
}
