//! Pipeline errors: which layer failed (transport, card status word, secure
//! channel, source, plan, verification, journal). None carries secret bytes.

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
    Verify(String),
    /// The source delivered content for another fob.
    #[error("the source delivered a package for UID {delivered}, not for the fob in the reader")]
    UidMismatch {
        /// UID the package was issued for (hex).
        delivered: String,
    },
    /// The journal refused the "started" record; nothing was written to the fob.
    #[error("audit journal: {0}")]
    Journal(String),
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
