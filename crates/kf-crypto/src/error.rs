//! Error type of the crate. Variants carry lengths and positions, never key bytes.

/// Errors of the cryptographic layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// AES keys are 16, 24 or 32 bytes (FIPS 197; GPC Amd D §6.1).
    #[error("invalid AES key length {len} (expected 16, 24 or 32 bytes)")]
    InvalidKeyLength {
        /// The rejected length in bytes.
        len: usize,
    },
    /// A hex string could not be decoded.
    #[error("invalid hex string ({reason})")]
    InvalidHex {
        /// What the decoder complained about (never the input itself).
        reason: String,
    },
    /// ISO/IEC 9797-1 method 2 padding was malformed (GPC Amd D §4.1.4).
    #[error("invalid ISO 9797-1 method 2 padding")]
    InvalidPadding,
    /// The input to an unpadded block operation is not a multiple of 16 bytes.
    #[error("data length {len} is not a multiple of the AES block length")]
    NotBlockAligned {
        /// The rejected length in bytes.
        len: usize,
    },
    /// The requested derived length is not supported by the KDF.
    #[error("unsupported KDF output length of {bits} bits")]
    InvalidKdfLength {
        /// The requested length in bits.
        bits: u32,
    },
    /// The static keys of a key set have different lengths (GPC Amd D §6.1).
    #[error("the keys of a key set must have the same length")]
    KeySetLengthMismatch,
}
