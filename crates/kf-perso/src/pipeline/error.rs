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
    /// The identity check refused the fob before anything was fetched or
    /// written (e.g. it is already personalized).
    #[error("{0}")]
    Refused(HookError),
    /// The journal refused the "started" record; nothing was written to the fob.
    #[error("audit journal: {0}")]
    Journal(#[from] HookError),
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

/// Why a pipeline hook stopped the fob (for the journal hook: the "started"
/// record could not be made durable). Wraps the hook's own error.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct HookError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl HookError {
    /// Wraps the hook's error (any error type, or a message).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> HookError {
        HookError(error.into())
    }

    /// The hook's own error, if it is a `T` (to tell refusals apart).
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
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
