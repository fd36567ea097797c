//! SKS status codes (§7.3) and the error type every API method returns (§7.2).

use std::fmt;

/// One table of the §7.3 codes: the enum, its status byte, its spec name, and the way back.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $status:literal, $name:literal;)*) => {
        /// The standard SKS error codes of §7.3. Status `0x00` means success and has no variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant = $status,)*
        }

        impl ErrorCode {
            /// The status byte of this code.
            pub fn status(self) -> u8 {
                self as u8
            }

            /// Maps a non-zero status byte back to a code; unknown values become
            /// [`ErrorCode::Internal`] (a peer's undefined status is an internal failure).
            pub fn from_status(status: u8) -> Self {
                match status {
                    $($status => Self::$variant,)*
                    _ => Self::Internal,
                }
            }

            /// The spec's name of the code, e.g. `ERROR_MAC`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

error_codes! {
    /// Something is wrong with a supplied PIN or PUK (non-fatal).
    Authorization = 0x01, "ERROR_AUTHORIZATION";
    /// The operation is not allowed.
    NotAllowed = 0x02, "ERROR_NOT_ALLOWED";
    /// No persistent storage available for the operation.
    Storage = 0x03, "ERROR_STORAGE";
    /// A MAC does not match the supplied data.
    Mac = 0x04, "ERROR_MAC";
    /// Various cryptographic errors.
    Crypto = 0x05, "ERROR_CRYPTO";
    /// Provisioning session not found.
    NoSession = 0x06, "ERROR_NO_SESSION";
    /// Key not found.
    NoKey = 0x07, "ERROR_NO_KEY";
    /// Unknown or non-matching algorithm.
    Algorithm = 0x08, "ERROR_ALGORITHM";
    /// Invalid or unsupported option.
    Option = 0x09, "ERROR_OPTION";
    /// Internal error.
    Internal = 0x0A, "ERROR_INTERNAL";
    /// External error like a communication link failure.
    External = 0x0B, "ERROR_EXTERNAL";
    /// The user aborted PIN input or similar.
    UserAbort = 0x0C, "ERROR_USER_ABORT";
    /// A requested SKS is unavailable.
    NotAvailable = 0x0D, "ERROR_NOT_AVAILABLE";
}

/// Longest ErrorString the wire carries (§7.2).
pub const MAX_ERROR_STRING: usize = 2000;

/// An SKS error: a §7.3 status code plus an English description (§7.2).
///
/// Descriptions never contain secret material (PINs, keys, session keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SksError {
    code: ErrorCode,
    message: String,
}

impl SksError {
    /// Creates an error; the message is cut to [`MAX_ERROR_STRING`] bytes on a char boundary.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_STRING {
            let mut cut = MAX_ERROR_STRING;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self { code, message }
    }

    /// The status code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The English description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (0x{:02X}): {}",
            self.code.name(),
            self.code.status(),
            self.message
        )
    }
}

/// Shorthand constructors used throughout the engine.
pub(crate) fn err(code: ErrorCode, message: impl Into<String>) -> SksError {
    SksError::new(code, message)
}

/// Result alias for SKS operations.
pub type SksResult<T> = Result<T, SksError>;
