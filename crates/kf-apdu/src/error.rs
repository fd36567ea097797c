//! Errors of the APDU codec.

use thiserror::Error;

/// Errors raised while encoding or parsing command and response APDUs
/// (ISO/IEC 7816-3 §12.1, ISO/IEC 7816-4 §5.1).
///
/// Errors carry lengths and offsets only, never payload bytes, so they are
/// safe to log even for sensitive commands.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApduError {
    /// A command APDU is shorter than its 4-byte header.
    #[error("command APDU too short: {len} bytes, the header alone needs 4")]
    CommandTooShort {
        /// Length of the input.
        len: usize,
    },
    /// A response APDU is shorter than its 2-byte status word.
    #[error("response APDU too short: {len} bytes, the status word alone needs 2")]
    ResponseTooShort {
        /// Length of the input.
        len: usize,
    },
    /// The body of a command APDU matches none of the cases 1, 2S, 3S, 4S,
    /// 2E, 3E, 4E of ISO/IEC 7816-3 §12.1.3.
    #[error("malformed command APDU body: {reason} (body length {body_len})")]
    MalformedBody {
        /// Which rule the body breaks.
        reason: &'static str,
        /// Length of the body (everything after the 4-byte header).
        body_len: usize,
    },
    /// Le is outside `1..=65536`.
    #[error("Le {0} out of range 1..=65536")]
    LeOutOfRange(usize),
    /// Command data is longer than the 65535 bytes an extended Lc can carry.
    #[error("command data of {0} bytes exceeds the 65535-byte maximum")]
    DataTooLong(usize),
    /// Short encoding was requested for a command that needs extended lengths
    /// (data longer than 255 bytes or Le above 256).
    #[error("command needs extended length encoding (Lc {lc}, Le {le:?})")]
    NeedsExtendedLength {
        /// Length of the command data.
        lc: usize,
        /// Expected response length.
        le: Option<usize>,
    },
    /// A builder argument is invalid (wrong AID length, challenge length, ...).
    #[error("invalid builder argument: {0}")]
    InvalidArgument(&'static str),
}
