//! Operator words: the one place where a failure or a stage becomes text for
//! the people at the line (tiles of the console, outcome list). Each reason
//! says what happened and what to do, in a few words.

use crate::journal::ContentRefused;
use kf_perso::pipeline::{PipelineError, StageError};
use kf_perso::Stage;
use kf_source::klms::KlmsError;
use kf_source::SourceError;
use kf_transport::error::TransportError;

/// What the operator reads while a stage runs.
pub fn stage_words(stage: Stage) -> &'static str {
    match stage {
        Stage::ReadUid => "reading the fob",
        Stage::FetchKeys => "fetching keys",
        Stage::InitializeUpdate | Stage::ExternalAuthenticate => "opening secure channel",
        Stage::PayloadDelivery => "writing keys",
        Stage::LifecycleTransition => "locking the fob",
        Stage::PostPersonalization => "finishing",
        Stage::Verify => "checking the fob",
        Stage::Zeroize => "wiping session keys",
        _ => "working",
    }
}

/// Why a fob failed, in operator words.
pub fn failure_words(error: &StageError) -> &'static str {
    match &error.error {
        PipelineError::Transport(e) => transport_words(e),
        PipelineError::Source(e) => source_words(e),
        PipelineError::Card { .. } => "fob refused a command — put it aside",
        PipelineError::SecureChannel(_) => "fob keys do not match — put it aside",
        PipelineError::Plan(_) | PipelineError::KeyPair(_) | PipelineError::UidMismatch { .. } => {
            "bad key package — call the line lead"
        }
        PipelineError::Apdu(_) => "fob answered nonsense — put it aside",
        PipelineError::Verify(_) => "fob failed the final check — put it aside",
        PipelineError::Journal(_) => "audit journal unavailable — call maintenance",
        PipelineError::Refused(refusal) => match refusal.downcast_ref::<ContentRefused>() {
            Some(ContentRefused::AlreadyPersonalized { .. }) => {
                "fob already personalized — put it aside"
            }
            Some(ContentRefused::IrkReused { .. }) => {
                "key package used before — call the line lead"
            }
            None => "fob refused by the station — put it aside",
        },
        _ => "station fault — call maintenance",
    }
}

/// A reader or card-link error, in operator words (also for a fob that
/// could not be connected to).
pub fn transport_words(error: &TransportError) -> &'static str {
    if error.is_session_lost() {
        return "fob removed too early — tap again";
    }
    match error {
        TransportError::Timeout => "fob did not answer — tap again",
        TransportError::NoReader(_)
        | TransportError::ReaderUnavailable
        | TransportError::NoService
        | TransportError::PcscUnavailable => "reader not available — call maintenance",
        TransportError::SharingViolation => "reader busy — tap again",
        _ => "reader error — tap again",
    }
}

fn source_words(error: &SourceError) -> &'static str {
    match error {
        SourceError::Klms(e) => match e {
            KlmsError::Unreachable { .. } | KlmsError::Timeout { .. } => {
                "KLMS unreachable — call the line lead"
            }
            KlmsError::AlreadyIssued { .. } => "fob already personalized — put it aside",
            KlmsError::Forbidden { .. } => "station not allowed by KLMS — call the line lead",
            _ => "KLMS refused the request — call the line lead",
        },
        SourceError::PoolExhausted { .. } => "no key packages left — call the line lead",
        _ => "bad key package — call the line lead",
    }
}

/// Whether the failure says something about the KLMS: `Some(false)` when
/// it could not be reached, `Some(true)` when it answered (even with a
/// refusal), `None` when the KLMS played no part.
pub fn klms_reachability(error: &StageError) -> Option<bool> {
    match &error.error {
        PipelineError::Source(SourceError::Klms(e)) => Some(!matches!(
            e,
            KlmsError::Unreachable { .. } | KlmsError::Timeout { .. }
        )),
        _ => None,
    }
}

/// Whether the failure is a KLMS error (counted in the metrics).
pub fn is_klms_error(error: &StageError) -> bool {
    matches!(&error.error, PipelineError::Source(SourceError::Klms(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stage: Stage, error: PipelineError) -> StageError {
        StageError { stage, error }
    }

    #[test]
    fn torn_fob_and_unreachable_klms_read_as_operator_words() {
        let torn = at(
            Stage::PayloadDelivery,
            PipelineError::Transport(TransportError::CardRemoved),
        );
        assert_eq!(failure_words(&torn), "fob removed too early — tap again");
        assert_eq!(klms_reachability(&torn), None);
        let down = at(
            Stage::FetchKeys,
            PipelineError::Source(SourceError::Klms(KlmsError::Unreachable {
                url: "https://klms".into(),
                attempts: 3,
                detail: "connection refused".into(),
            })),
        );
        assert_eq!(
            failure_words(&down),
            "KLMS unreachable — call the line lead"
        );
        assert_eq!(klms_reachability(&down), Some(false));
        assert!(is_klms_error(&down));
        let issued = at(
            Stage::FetchKeys,
            PipelineError::Source(SourceError::Klms(KlmsError::AlreadyIssued {
                message: "uid".into(),
            })),
        );
        assert_eq!(klms_reachability(&issued), Some(true));
    }
}
