//! Signed receipts for anchored journal records: ECDSA P-256 over
//! `kf_audit::receipt::receipt_message(station, seq, link)` under a key
//! derived from the KLMS master key.
//!
//! ```text
//! master key backend ──receipt_seed(0, 1, ..)──▶ signing key ──sign(station, seq, link)──▶ Receipt
//! ```
//!
//! Depends on the key backend only, never on a ledger.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

/// The receipt key could not be derived or exported.
#[derive(Debug, thiserror::Error)]
#[error("receipt key: {0}")]
pub struct ReceiptError(String);

/// Signs receipts with the KLMS receipt key.
///
/// The key is derived from the KLMS master key through its key backend (a
/// PRF over the label `kf-klms/receipt-key/v1` and a counter, the first
/// output below the curve order, see [`crate::keystore::KeyBackend::receipt_seed`]), so it needs no extra secret file and is stable across restarts;
/// the public key is published with `kf-klms receipt-key`.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptSigner(..)")
    }
}

impl ReceiptSigner {
    /// Derives the receipt key from a master key held in memory.
    pub fn derive(master: &kf_crypto::AesKey) -> Result<ReceiptSigner, ReceiptError> {
        Self::from_backend(&crate::keystore::FileKey::new(master.duplicate()))
    }

    /// Derives the receipt key through the master key's backend: the first
    /// of the backend's receipt seeds (counter 0, 1, ..) below the curve order.
    pub fn from_backend(
        backend: &dyn crate::keystore::KeyBackend,
    ) -> Result<ReceiptSigner, ReceiptError> {
        for counter in 0u32..16 {
            let bytes = backend
                .receipt_seed(counter)
                .map_err(|e| ReceiptError(format!("receipt key derivation: {e}")))?;
            if let Ok(key) = SigningKey::from_slice(&bytes[..]) {
                return Ok(ReceiptSigner { key });
            }
        }
        Err(ReceiptError("receipt key derivation failed".into()))
    }

    /// The receipt for `(station, seq, link)`.
    pub fn sign(&self, station: &str, seq: u64, link: &[u8; 32]) -> kf_audit::receipt::Receipt {
        let message = kf_audit::receipt::receipt_message(station, seq, link);
        let signature: Signature = self.key.sign(&message);
        kf_audit::receipt::Receipt {
            station_id: station.to_owned(),
            seq,
            link: hex::encode_upper(link),
            signature: hex::encode_upper(signature.to_bytes()),
        }
    }

    /// The public key, SubjectPublicKeyInfo PEM.
    pub fn public_key_pem(&self) -> Result<String, ReceiptError> {
        use p256::pkcs8::EncodePublicKey;
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| ReceiptError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_under_the_published_key_only() {
        let master = kf_crypto::AesKey::from_slice(&[7; 16]).unwrap();
        let signer = ReceiptSigner::derive(&master).unwrap();
        let again = ReceiptSigner::derive(&master).unwrap();
        let key = kf_audit::receipt::klms_key_from_pem(&again.public_key_pem().unwrap()).unwrap();
        let receipt = signer.sign("S1", 5, &[9; 32]);
        assert!(receipt.verify(&key));
        assert!(receipt.covers(5, &[9; 32]));
        let mut forged = receipt.clone();
        forged.seq = 6;
        assert!(!forged.verify(&key));
        let other =
            ReceiptSigner::derive(&kf_crypto::AesKey::from_slice(&[8; 16]).unwrap()).unwrap();
        let other_key =
            kf_audit::receipt::klms_key_from_pem(&other.public_key_pem().unwrap()).unwrap();
        assert!(!receipt.verify(&other_key));
    }
}
