//! Typed transport errors.
//!
//! Transport errors say what happened to the link between the host and the
//! card (removed, reset, no service, ...). Card status words are *not* errors
//! at this layer: a response with SW 6A82 is a successful transmission.

use thiserror::Error;

/// Everything that can go wrong while moving APDU bytes to a card and back.
///
/// Messages never contain APDU payloads, so they are safe to log even when the
/// failing command carried key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The card was removed from the reader (or torn away) during the session.
    #[error("card removed from the reader")]
    CardRemoved,
    /// The card was reset by another application or the reader; the session
    /// state on the card (secure channel, selected applet) is lost.
    #[error("card was reset; session state on the card is lost")]
    CardReset,
    /// No card is present in the reader.
    #[error("no card present in the reader")]
    NoCard,
    /// The card does not answer or is not powered.
    #[error("card is unresponsive or unpowered")]
    CardUnresponsive,
    /// The smart card service (pcscd / WinSCard) is not running or stopped.
    #[error("smart card service is not running (pcscd / WinSCard)")]
    NoService,
    /// A wait or transmission timed out.
    #[error("operation timed out")]
    Timeout,
    /// A blocking wait was cancelled through its cancel handle.
    #[error("operation cancelled")]
    Cancelled,
    /// Another application holds the card (exclusive connection refused).
    #[error("card is in use by another application (sharing violation)")]
    SharingViolation,
    /// The named reader does not exist.
    #[error("reader not found: {0}")]
    NoReader(String),
    /// The reader exists but cannot be used (unplugged, driver failure).
    #[error("reader unavailable")]
    ReaderUnavailable,
    /// The command APDU is malformed (bad header or length fields).
    #[error("malformed command APDU: {0}")]
    InvalidApdu(#[from] kf_apdu::ApduError),
    /// The command APDU is longer than the transport can carry.
    #[error("command APDU of {len} bytes exceeds the transport limit of {max} bytes")]
    ApduTooLong {
        /// Length of the rejected command.
        len: usize,
        /// Largest command the transport accepts.
        max: usize,
    },
    /// A protocol-level violation on the link (response too short, GET
    /// RESPONSE loop bound reached, protocol mismatch).
    #[error("transport protocol error: {0}")]
    Protocol(String),
    /// The reader could not return the card UID (`FF CA 00 00 00` answered
    /// with the given status word).
    #[error("reader could not read the card UID (SW {sw:04X})")]
    UidUnavailable {
        /// Status word returned by the reader.
        sw: u16,
    },
    /// The PC/SC backend is not compiled into this build.
    #[error("PC/SC support is not built in (enable the `pcsc` feature of kf-transport)")]
    PcscUnavailable,
    /// An I/O error on a socket or pipe (vpcd bridge).
    #[error("I/O error: {0}")]
    Io(String),
    /// Any other failure reported by the backend.
    #[error("transport error: {0}")]
    Other(String),
}

impl TransportError {
    /// True when the card is gone or was reset, i.e. any session on it is lost
    /// and a caller should reconnect and start over.
    pub fn is_session_lost(&self) -> bool {
        matches!(
            self,
            Self::CardRemoved | Self::CardReset | Self::NoCard | Self::CardUnresponsive
        )
    }
}

impl From<std::io::Error> for TransportError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Self::Timeout,
            _ => Self::Io(err.to_string()),
        }
    }
}
