//! SET STATUS and GET STATUS (GPC 2.3.1 §11.10, §11.4).

use crate::command::CommandApdu;
use crate::error::ApduError;
use crate::gp::{check_aid, ins, tag, CLA_GP};

coded_enum! {
    /// Card life cycle states, the P2 of SET STATUS for the ISD (GPC 2.3.1 Table 11-6).
    pub enum CardLifeCycle {
        /// `01`.
        OpReady = 0x01,
        /// `07`.
        Initialized = 0x07,
        /// `0F`.
        Secured = 0x0F,
        /// `7F`.
        CardLocked = 0x7F,
        /// `FF`: irreversible.
        Terminated = 0xFF,
    }
}

impl CardLifeCycle {
    /// Whether SET STATUS may move the card from `self` to `to` (GPC 2.3.1
    /// §5.1.1, Figure 5-1): forward through OP_READY → INITIALIZED → SECURED
    /// (skipping allowed, irreversible), SECURED ⇄ CARD_LOCKED, anything
    /// except TERMINATED → TERMINATED. A transition to the current state is
    /// rejected (§11.10.2.2).
    pub const fn may_transition_to(self, to: CardLifeCycle) -> bool {
        use CardLifeCycle::*;
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

/// Application life cycle SELECTABLE (GPC 2.3.1 §11.1.1, Table 11-4): what an
/// installed application that can be selected reports in GET STATUS.
pub const APPLICATION_SELECTABLE: u8 = 0x07;

coded_enum! {
    /// What SET STATUS changes, its P1 "status type" (GPC 2.3.1 §11.10.2.1).
    pub enum SetStatusScope {
        /// `80`: the Issuer Security Domain, i.e. the card life cycle.
        IssuerSecurityDomain = 0x80,
        /// `40`: an application or supplementary security domain.
        Application = 0x40,
        /// `60`: a security domain and its associated applications.
        DomainAndApplications = 0x60,
    }
}

/// SET STATUS for the card (ISD): `80 F0 80 state` (GPC 2.3.1 §11.10.2,
/// Tables 11-85/86). The data field is ignored for P1 `80`, so none is sent.
pub fn set_card_status(state: CardLifeCycle) -> CommandApdu {
    CommandApdu::new(
        CLA_GP,
        ins::SET_STATUS,
        SetStatusScope::IssuerSecurityDomain.as_byte(),
        state.as_byte(),
    )
}

/// SET STATUS for an application or supplementary SD: `80 F0 40 state Lc AID`
/// (GPC 2.3.1 §11.10.2). `state` is coded per Table 11-4 (application) or
/// 11-5 (security domain); e.g. `07` SELECTABLE, `0F` PERSONALIZED, `83` LOCKED.
pub fn set_application_status(aid: &[u8], state: u8) -> Result<CommandApdu, ApduError> {
    check_aid(aid)?;
    Ok(CommandApdu::new(
        CLA_GP,
        ins::SET_STATUS,
        SetStatusScope::Application.as_byte(),
        state,
    )
    .with_data(aid))
}

/// SET STATUS for a security domain and its applications: `80 F0 60 80|00 Lc AID`
/// (GPC 2.3.1 §11.10.2.1–2): P2 b8 = 1 locks, 0 unlocks.
pub fn set_domain_and_applications_locked(
    sd_aid: &[u8],
    locked: bool,
) -> Result<CommandApdu, ApduError> {
    check_aid(sd_aid)?;
    let p2 = if locked { 0x80 } else { 0x00 };
    Ok(CommandApdu::new(
        CLA_GP,
        ins::SET_STATUS,
        SetStatusScope::DomainAndApplications.as_byte(),
        p2,
    )
    .with_data(sd_aid))
}

coded_enum! {
    /// The subset GET STATUS reports, its P1 (GPC 2.3.1 Table 11-33).
    pub enum GetStatusScope {
        /// `80`: the Issuer Security Domain only.
        IssuerSecurityDomain = 0x80,
        /// `40`: applications and supplementary security domains.
        Applications = 0x40,
        /// `20`: executable load files.
        LoadFiles = 0x20,
        /// `10`: executable load files and their modules.
        LoadFilesAndModules = 0x10,
    }
}

coded_enum! {
    /// Response data structure of GET STATUS, P2 b2 (GPC 2.3.1 §11.4.2.2,
    /// Table 11-34).
    pub enum GetStatusFormat {
        /// `00`: fixed fields without tags, kept for older hosts.
        Legacy = 0x00,
        /// `02`: tagged, one GlobalPlatform Registry entry `E3` each (Table 11-36).
        Tagged = 0x02,
    }
}

/// GET STATUS P2 b1: the next occurrence rather than the first (GPC 2.3.1
/// §11.4.2.2, Table 11-34).
pub const GET_STATUS_NEXT_OCCURRENCE: u8 = 0x01;

/// GET STATUS: `80 F2 P1 P2 Lc 4F len AID-prefix 00` (GPC 2.3.1 §11.4.2,
/// Tables 11-32..11-35).
///
/// P2 is `02` (tagged response format, Tables 11-36/37) or `03` for
/// "get next occurrence". An empty `aid_prefix` gives the search criterion
/// `4F 00`, matching every entry of the scope.
pub fn get_status(
    scope: GetStatusScope,
    aid_prefix: &[u8],
    next_occurrence: bool,
) -> Result<CommandApdu, ApduError> {
    if aid_prefix.len() > 16 {
        return Err(ApduError::InvalidArgument(
            "AID search criterion is at most 16 bytes",
        ));
    }
    if next_occurrence && scope == GetStatusScope::IssuerSecurityDomain {
        return Err(ApduError::InvalidArgument(
            "get next occurrence is rejected for the ISD scope (GPC 2.3.1 §11.4.2.2)",
        ));
    }
    let data = crate::Tlv::primitive(tag::AID, aid_prefix)
        .map_err(|_| ApduError::InvalidArgument("AID search criterion"))?
        .encode();
    let mut p2 = GetStatusFormat::Tagged.as_byte();
    if next_occurrence {
        p2 |= GET_STATUS_NEXT_OCCURRENCE;
    }
    Ok(
        CommandApdu::new(CLA_GP, ins::GET_STATUS, scope.as_byte(), p2)
            .with_data(data)
            .with_le(256),
    )
}
