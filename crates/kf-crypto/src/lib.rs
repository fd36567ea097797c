//! Cryptographic building blocks for GlobalPlatform SCP03 and NXP key diversification.
//!
//! Data flow:
//!
//! ```text
//! static keys (AesKey, StaticKeys) ──kdf::scp03_kdf (Amd D §4.1.5)──▶ session keys / cryptograms
//! master key ──kdf::nxp_kdf3 (01 ‖ label ‖ 00 ‖ UID ‖ L)──▶ per-fob static keys
//! session keys ──aes_cmac / cbc::encrypt_m2 (Amd D §4.1.2–§4.1.4)──▶ C-MAC, R-MAC, ciphertext
//! ```
//!
//! Secret material lives in [`AesKey`]: zeroized on drop, redacted `Debug`,
//! constant-time equality, no `Clone` (use [`AesKey::duplicate`] when a copy is
//! really needed). Nothing in this crate does I/O.
//!
//! Depends on no other crate of the workspace (RustCrypto only); it must not depend on
//! APDUs, channels or key stores.

mod cipher;
mod error;
mod key;
mod mac;

pub mod cbc;
pub mod kdf;
pub mod padding;

pub use cipher::AesCipher;
pub use error::CryptoError;
pub use key::{AesKey, StaticKeys};
pub use mac::{aes_cmac, CmacKey, CmacRun, CmacState};

/// AES block length in bytes.
pub const BLOCK_LEN: usize = 16;

/// Constant-time comparison of two byte strings (lengths are not secret).
///
/// Use it for MACs, cryptograms and anything an attacker could probe byte by byte.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes hex (either case, surrounding whitespace ignored). Errors name the
/// position of a bad character, never the character itself, because the input
/// may be a key.
pub fn decode_hex(hex_str: &str) -> Result<Vec<u8>, CryptoError> {
    hex::decode(hex_str.trim()).map_err(|e| CryptoError::InvalidHex {
        reason: match e {
            hex::FromHexError::InvalidHexCharacter { index, .. } => {
                format!("invalid character at position {index}")
            }
            hex::FromHexError::OddLength => "odd number of digits".to_owned(),
            hex::FromHexError::InvalidStringLength => "invalid length".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
