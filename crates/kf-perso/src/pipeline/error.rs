//! Pipeline errors: which layer failed (transport, card status word, secure
//! channel, source, plan, verification, randomness, journal). None carries
//! secret bytes.

use kf_apdu::StatusWord;
use thiserror::Error;

use crate::Stage;

/// Why one fob failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The reader or the card link failed (card removed, reader gone, timeout).
    #[error("transport: {0}")]
    Transport(#[from] kf_transport::error::TransportError),
    /// The card refused a command.
    #[error("{command} refused by the card: {sw}")]
    Card {
        /// Which command.
        command: &'static str,
        /// The card's status word.
        sw: StatusWord,
    },
    /// The secure channel failed (wrong keys, MAC error, card cryptogram mismatch).
    #[error("secure channel: {0}")]
    SecureChannel(#[from] kf_scp03::Scp03Error),
    /// The provisioning source failed (KLMS down, package invalid, pool empty).
    #[error("source: {0}")]
    Source(#[from] kf_source::SourceError),
    /// The personalization content does not fit the applet profile.
    #[error("personalization plan: {0}")]
    Plan(#[from] crate::PlanError),
    /// The package's private key and device certificate do not belong
    /// together; refused before any command reaches the card.
    #[error("key package rejected: {0}")]
    KeyPair(#[from] crate::KeyPairError),
    /// A response could not be parsed.
    #[error("malformed response: {0}")]
    Apdu(#[from] kf_apdu::ApduError),
    /// The fob's signature over a fresh challenge did not verify.
    #[error("key-pair verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// The operating system's random source failed: the fob gets no further
    /// command (a predictable challenge or identifier is never used).
    #[error("no randomness for {purpose}")]
    Randomness {
        /// What the random bytes were for.
        purpose: &'static str,
        /// The random source's error.
        #[source]
        source: kf_scp03::Scp03Error,
    },
    /// A stage needed the provisioning input before the source delivered it
    /// (a driver bug, never card or source input).
    #[error("no provisioning input")]
    NoInput,
    /// A secure command was due before the secure channel was open (a driver
    /// bug, never card input).
    #[error("secure channel not open")]
    ChannelNotOpen,
    /// The source delivered content for another fob.
    #[error("the source delivered a package for UID {delivered}, not for the fob in the reader")]
    UidMismatch {
        /// UID the package was issued for (hex).
        delivered: String,
    },
    /// The chip's CPLC (GET DATA `9F7F`) is malformed.
    #[error("{0}")]
    Cplc(#[from] kf_apdu::gp::CplcError),
    /// A hook refused the fob or its content (e.g. already personalized, an
    /// IRK used before) before anything was written to it. The hook's own
    /// reason, which the station tells apart by its type.
    #[error("{0}")]
    Refused(BoxedError),
    /// A hook could not do its work (the journal could not make the "started"
    /// record durable, or could not be read): the station is at fault, not the
    /// fob; nothing was written to the fob.
    #[error("audit journal: {0}")]
    Journal(BoxedError),
}

/// A hook's own error, of the hook's type.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl From<HookError> for PipelineError {
    fn from(error: HookError) -> Self {
        match error {
            HookError::Refused(reason) => PipelineError::Refused(reason),
            HookError::Failed(error) => PipelineError::Journal(error),
        }
    }
}

/// Why the fob's signature over the verification challenge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The answer is not a DER ECDSA signature.
    #[error("the signature is not a DER ECDSA signature")]
    MalformedSignature,
    /// A well-formed signature that the device certificate's key does not verify.
    #[error("the signature does not match the device certificate's public key")]
    SignatureMismatch,
}

/// Why a pipeline hook stopped the fob: a decision about the fob, or a
/// failure of the hook itself. Either way nothing more is written to the fob.
#[derive(Debug, Error)]
pub enum HookError {
    /// The fob or its content is refused (the operator sets the fob aside or
    /// calls the line lead); the reason is the hook's own error type.
    #[error("{0}")]
    Refused(BoxedError),
    /// The hook could not do its work (its journal or its index failed).
    #[error("{0}")]
    Failed(BoxedError),
}

impl HookError {
    /// A refusal of the fob or its content, for `reason`.
    pub fn refused(reason: impl Into<BoxedError>) -> HookError {
        HookError::Refused(reason.into())
    }

    /// A failure of the hook itself.
    pub fn failed(error: impl Into<BoxedError>) -> HookError {
        HookError::Failed(error.into())
    }
}

/// A pipeline error with the stage it happened in.
#[derive(Debug, Error)]
#[error("{stage:?}: {error}")]
pub struct StageError {
    /// The failing stage.
    pub stage: Stage,
    /// What went wrong.
    #[source]
    pub error: PipelineError,
}

impl StageError {
    /// True when the card left the field or the reader was reset, so
    /// re-presenting the fob may succeed.
    pub fn is_card_lost(&self) -> bool {
        matches!(&self.error, PipelineError::Transport(e) if e.is_session_lost())
    }
}
