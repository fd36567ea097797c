//! Layered errors of the SCP03 state machines. No variant carries key bytes,
//! session keys, cryptograms or MACs.

use kf_apdu::{ApduError, StatusWord};
use kf_crypto::CryptoError;

/// Why a secure channel was terminated (fail closed, Amd D §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminationCause {
    /// A C-MAC did not verify (Amd D §6.2.4).
    CMacMismatch,
    /// An R-MAC did not verify (Amd D §6.2.5).
    RMacMismatch,
    /// A protected message was too short to hold its MAC.
    MissingMac,
    /// Encrypted data had a bad length or bad padding (Amd D §4.1.4, §6.2.6, §6.2.7).
    BadCryptogramLayout,
    /// An error status word arrived with data, which Amd D §6.2.5 forbids
    /// (a protected response whose SW was altered).
    UnexpectedResponseData,
    /// A command lacked the secure messaging indication the security level requires (Amd D §5.6).
    MissingSecureMessaging,
    /// A command could not be parsed.
    MalformedCommand,
    /// The per-session command limit (or the encryption counter) was exhausted.
    CommandLimitReached,
    /// The caller ended the session explicitly.
    Closed,
}

/// Errors of the SCP03 host and card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Scp03Error {
    /// The channel is terminated; every call after the failure returns this same error.
    #[error("secure channel terminated ({0:?}); session keys were erased")]
    Terminated(TerminationCause),
    /// The host challenge must be 8 (S8) or 16 (S16) bytes (Amd D §6.2.2).
    #[error("host challenge must be 8 or 16 bytes, got {0}")]
    InvalidHostChallengeLength(usize),
    /// The INITIALIZE UPDATE response has the wrong length (Amd D §7.1.1.1).
    #[error("INITIALIZE UPDATE response of {len} bytes does not match the {mode} layout")]
    InvalidInitializeUpdateResponse {
        /// Length of the response data.
        len: usize,
        /// "S8" or "S16".
        mode: &'static str,
    },
    /// The card answered with an SCP identifier other than '03'.
    #[error("card uses SCP {0:02X}, not SCP 03")]
    UnexpectedScpIdentifier(u8),
    /// The card reported a key version other than the one requested (GPC §11.5.2).
    #[error("key version mismatch: requested {requested:02X}, card used {returned:02X}")]
    KeyVersionMismatch {
        /// KVN sent in INITIALIZE UPDATE P1.
        requested: u8,
        /// KVN returned in the key information.
        returned: u8,
    },
    /// The "i" parameter has reserved bits set or an invalid combination (Amd D Table 5-1).
    #[error("unsupported SCP03 i parameter {0:02X}")]
    UnsupportedParameterI(u8),
    /// The security level value is not one of 00, 01, 03, 11, 13, 33 (Amd D Table 7-3).
    #[error("unsupported security level {0:02X}")]
    UnsupportedSecurityLevel(u8),
    /// The security level needs R-MAC or R-ENCRYPTION, which "i" does not offer (Amd D §5.1).
    #[error("security level {level:02X} is not supported with i = {i:02X}")]
    SecurityLevelNotAllowed {
        /// The requested level.
        level: u8,
        /// The "i" parameter of the session.
        i: u8,
    },
    /// The card cryptogram did not verify: wrong static keys or a forged card (Amd D §6.2.2.2).
    #[error("card cryptogram mismatch")]
    CardCryptogramMismatch,
    /// The pseudo-random card challenge did not verify (Amd D §6.2.2.1).
    #[error("pseudo-random card challenge mismatch")]
    CardChallengeMismatch,
    /// The host cryptogram did not verify on the card (Amd D §6.2.2.3).
    #[error("host cryptogram mismatch")]
    HostCryptogramMismatch,
    /// The C-MAC of EXTERNAL AUTHENTICATE did not verify (Amd D §6.2.3).
    #[error("EXTERNAL AUTHENTICATE C-MAC mismatch")]
    ExternalAuthenticateMacMismatch,
    /// The card rejected a handshake command with this status word.
    #[error("card returned status {0}")]
    CardStatus(StatusWord),
    /// A handshake command on the card side is malformed (wrong CLA/INS/P2/length).
    #[error("malformed {command} command: {reason}")]
    MalformedHandshakeCommand {
        /// "INITIALIZE UPDATE" or "EXTERNAL AUTHENTICATE".
        command: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The card holds no key set with this version (GPC: "Referenced data not found").
    #[error("no key set with version {0:02X}")]
    UnknownKeyVersion(u8),
    /// The pseudo-random challenge sequence counter reached FFFFFF (Amd D §6.2.2.1).
    #[error("sequence counter exhausted")]
    SequenceCounterExhausted,
    /// The wrapped command would exceed 65535 data bytes.
    #[error("command data of {0} bytes is too long to wrap")]
    CommandTooLong(usize),
    /// The plaintext command already carries a secure messaging indication or an
    /// unsupported class byte.
    #[error("class byte {0:02X} cannot be wrapped")]
    UnsupportedClass(u8),
    /// APDU encoding error.
    #[error("APDU error: {0}")]
    Apdu(#[from] ApduError),
    /// Cryptographic layer error (e.g. invalid key length).
    #[error("crypto error: {0}")]
    Crypto(#[from] CryptoError),
    /// The randomness source failed.
    #[error("random number generator failed")]
    Rng,
}

impl Scp03Error {
    /// The status word a card should answer with for this error (GPC §11.1.3,
    /// Amd D §6.2.2.1, §7.1.1): 6982 for security failures, 6A88 for an unknown
    /// key version, 6985 for an exhausted sequence counter, 6700/6A86 for bad
    /// handshake commands, 6F00 otherwise.
    pub fn card_status_word(&self) -> StatusWord {
        match self {
            Scp03Error::UnknownKeyVersion(_) => StatusWord::new(0x6A, 0x88),
            Scp03Error::SequenceCounterExhausted => StatusWord::new(0x69, 0x85),
            Scp03Error::InvalidHostChallengeLength(_) => StatusWord::new(0x67, 0x00),
            Scp03Error::MalformedHandshakeCommand { .. } => StatusWord::new(0x6A, 0x86),
            Scp03Error::UnsupportedSecurityLevel(_)
            | Scp03Error::SecurityLevelNotAllowed { .. } => StatusWord::new(0x6A, 0x86),
            Scp03Error::Terminated(_)
            | Scp03Error::HostCryptogramMismatch
            | Scp03Error::ExternalAuthenticateMacMismatch => StatusWord::new(0x69, 0x82),
            _ => StatusWord::new(0x6F, 0x00),
        }
    }
}
