//! Errors of building, loading and saving a virtual fob. Errors inside an
//! APDU exchange never surface here: they become status words.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong outside the APDU exchange. Never carries key bytes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FobError {
    /// A UID must be 4, 7 or 10 bytes (ISO/IEC 14443-3).
    #[error("a UID must be 4, 7 or 10 bytes, got {len} bytes")]
    InvalidUid {
        /// Length given.
        len: usize,
    },
    /// A UID given as text is not hex.
    #[error("a UID must be given as hex digits (4, 7 or 10 bytes)")]
    InvalidUidHex,
    /// The SCP03 "i" parameter is not one of Amd D Table 5-1's values.
    #[error("unsupported SCP03 i parameter {0:02X}")]
    InvalidScpParameter(u8),
    /// A key could not be built.
    #[error("invalid key: {0}")]
    Key(#[from] kf_crypto::CryptoError),
    /// The state file could not be written.
    #[error("state file {path}: {source}")]
    StateIo {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be read (missing is not an error: the fob starts fresh).
    #[error("state file {0}")]
    StateRead(#[source] kf_files::FileError),
    /// The state file exists but is not a valid fob state.
    #[error("state file {path} is not a valid fob state: {reason}")]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What is wrong (no secret content).
        reason: String,
    },
}
