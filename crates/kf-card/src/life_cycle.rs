//! Card (ISD) life cycle states and their transitions (GPC 2.3.1 §5.1.1,
//! Figure 5-1, coding of Table 11-6).

use serde::{Deserialize, Serialize};

/// The card life cycle state, inherited by the Issuer Security Domain
/// (GPC 2.3.1 §5.1.1; codes per Table 11-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum IsdLifeCycle {
    /// `01` OP_READY.
    OpReady,
    /// `07` INITIALIZED.
    Initialized,
    /// `0F` SECURED.
    Secured,
    /// `7F` CARD_LOCKED: only the ISD can be selected (§5.1.1.4).
    CardLocked,
    /// `FF` TERMINATED: only GET DATA is processed (§5.1.1.5).
    Terminated,
}

impl IsdLifeCycle {
    /// The coding of Table 11-6.
    pub const fn code(self) -> u8 {
        match self {
            IsdLifeCycle::OpReady => 0x01,
            IsdLifeCycle::Initialized => 0x07,
            IsdLifeCycle::Secured => 0x0F,
            IsdLifeCycle::CardLocked => 0x7F,
            IsdLifeCycle::Terminated => 0xFF,
        }
    }

    /// The state for a code of Table 11-6, `None` for other values.
    pub const fn from_code(code: u8) -> Option<IsdLifeCycle> {
        match code {
            0x01 => Some(IsdLifeCycle::OpReady),
            0x07 => Some(IsdLifeCycle::Initialized),
            0x0F => Some(IsdLifeCycle::Secured),
            0x7F => Some(IsdLifeCycle::CardLocked),
            0xFF => Some(IsdLifeCycle::Terminated),
            _ => None,
        }
    }

    /// Whether SET STATUS may move the card from `self` to `to` (Figure 5-1):
    /// forward through OP_READY → INITIALIZED → SECURED (skipping allowed,
    /// irreversible), SECURED ⇄ CARD_LOCKED, anything except TERMINATED →
    /// TERMINATED. A transition to the current state is rejected (§11.10.2.2).
    pub const fn may_transition_to(self, to: IsdLifeCycle) -> bool {
        use IsdLifeCycle::*;
        matches!(
            (self, to),
            (OpReady, Initialized)
                | (OpReady, Secured)
                | (Initialized, Secured)
                | (Secured, CardLocked)
                | (CardLocked, Secured)
                | (OpReady | Initialized | Secured | CardLocked, Terminated)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in [
            IsdLifeCycle::OpReady,
            IsdLifeCycle::Initialized,
            IsdLifeCycle::Secured,
            IsdLifeCycle::CardLocked,
            IsdLifeCycle::Terminated,
        ] {
            assert_eq!(IsdLifeCycle::from_code(s.code()), Some(s));
        }
        assert_eq!(IsdLifeCycle::from_code(0x03), None);
    }

    #[test]
    fn transitions_follow_figure_5_1() {
        use IsdLifeCycle::*;
        assert!(OpReady.may_transition_to(Secured));
        assert!(Secured.may_transition_to(CardLocked));
        assert!(CardLocked.may_transition_to(Secured));
        assert!(!Secured.may_transition_to(Secured));
        assert!(!Secured.may_transition_to(OpReady));
        assert!(!OpReady.may_transition_to(CardLocked));
        assert!(!Terminated.may_transition_to(Secured));
        assert!(CardLocked.may_transition_to(Terminated));
    }
}
