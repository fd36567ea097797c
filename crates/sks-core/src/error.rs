//! SKS status codes (§7.3) and the error type every API method returns (§7.2).
//!
//! ## Which code for which failure
//!
//! The SKS API's table (§7.3) names thirteen codes; the byte-layout supplement (§8.9, §10 items
//! 15-17) fixes the provisioning cases. Every choice this SKS makes:
//!
//! | Code | Returned for | Why |
//! |---|---|---|
//! | ERROR_AUTHORIZATION 0x01 | wrong, missing or redundant PIN/PUK; locked key or PUK; PUK attempt without its delay; missing biometric verification; a rejected transport credential (`sks serve` token, peer UID) | §7.3 "something wrong with a supplied PIN or PUK"; a rejected client credential is the same kind of non-fatal failure |
//! | ERROR_NOT_ALLOWED 0x02 | Export/DeleteProtection `not-allowed`; changePIN/setPIN/unlockKey on a key without a local PIN policy or PUK; a PIN that is not user modifiable | §7.3 "operation is not allowed" |
//! | ERROR_STORAGE 0x03 | the durable write of a call failed (state reloaded, nothing applied); the open-session cap; object handles exhausted | §7.3 "no persistent storage available for the operation" |
//! | ERROR_MAC 0x04 | a provisioning MAC mismatch (session aborted) | §7.3, byte layouts §4.1 |
//! | ERROR_CRYPTO 0x05 | decryption of encrypted provisioning data (aborts, §10 item 17); malformed PKCS#8, certificates, key-management signatures; User API cryptographic failures | §7.3 "various cryptographic errors", §8.9 |
//! | ERROR_NO_SESSION 0x06 | the session is missing or not open (no abort) | §7.3, §8.9 |
//! | ERROR_NO_KEY 0x07 | unknown key handle, or a key in the wrong session state, in the User API and the key-handle methods; an unknown post-operation target (aborts) | §7.3, §8.9 |
//! | ERROR_ALGORITHM 0x08 | unknown session algorithm or KeyAlgorithm; an algorithm the key does not support or endorse | §7.3, §8.9 |
//! | ERROR_OPTION 0x09 | every other invalid argument: the default session-aborting code (§8.9); createProvisioningSession parameters (§10 item 16); RSA exponents outside 3..2^33-1 or even; SessionKeyLimit exhausted; a malformed request frame (unknown method, bad argument encoding: the frame arrived intact, so it is an invalid option, not a link failure) | §7.3 "invalid or unsupported option", §8.9 default |
//! | ERROR_INTERNAL 0x0A | a key-generation or attestation-signing failure; stored data that no longer decodes; a reply that does not match its request; an undefined status byte from a peer | §7.3 "internal error", §8.9 |
//! | ERROR_EXTERNAL 0x0B | transport failures only: a connection that breaks, a frame over the size limit, a reply that does not decode on the client | §7.3 "communication link failure" |
//! | ERROR_USER_ABORT 0x0C | never: this SKS has no PIN dialog a user could cancel | §7.3 |
//! | ERROR_NOT_AVAILABLE 0x0D | updateFirmware (UpdateURL is empty); the server's SKS is unusable after an earlier internal fault | §7.3 "a requested SKS is unavailable" |

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

/// A value that does not fit its wire encoding (a field over its length prefix): the call's
/// data cannot be encoded as the protocol requires, so the call is refused.
impl From<crate::codec::DecodeError> for SksError {
    fn from(e: crate::codec::DecodeError) -> Self {
        SksError::new(
            ErrorCode::Option,
            format!("Cannot encode the call's data: {e}"),
        )
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
