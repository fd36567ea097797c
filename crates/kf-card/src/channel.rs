//! The card's secure-messaging state over the card side of `kf-scp03`:
//! INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, command unwrap and response wrap
//! (GPC Amd D §7.1, §6.2.4–§6.2.7). The ISD and the applet's security domain
//! each have a [`CardSession`] over the same key sets (this profile), with
//! their own AID as pseudo-random challenge context and their own sequence
//! counters.
//!
//! ```text
//! Closed ──INITIALIZE UPDATE──▶ Awaiting ──EXTERNAL AUTHENTICATE──▶ Open { channel, STORE DATA sequence }
//!   ▲                                                                  │
//!   └──── close(): SELECT, power, a new INITIALIZE UPDATE, bad MAC ────┘
//! ```
//!
//! A STORE DATA sequence lives inside [`OpenChannel`], so ending the channel
//! ends the sequence by construction. This module answers with values and
//! status words; persisting counters is the fob's job, and it must not
//! depend on the fob.

use kf_apdu::{gp, CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::{
    CardAwaitingAuthentication, CardChannel, CardConfig, CardKeySet, CardSession, Mode, ParameterI,
    Scp03Error, KDD_LEN,
};

use crate::error::FobError;
use crate::perso::PersoSession;
use crate::selected::Selected;
use crate::state::CardData;

/// The secure-messaging state of the fob: both security domains' SCP03
/// endpoints and the one channel that may be in progress.
pub(crate) struct SecureMessaging {
    isd: CardSession,
    applet: CardSession,
    state: ChannelState,
}

/// Where the secure channel stands.
enum ChannelState {
    /// No channel.
    Closed,
    /// INITIALIZE UPDATE answered, waiting for EXTERNAL AUTHENTICATE.
    Awaiting(CardAwaitingAuthentication),
    /// EXTERNAL AUTHENTICATE succeeded.
    Open(OpenChannel),
}

/// An open channel and the STORE DATA sequence that lives only as long as it.
pub(crate) struct OpenChannel {
    channel: CardChannel,
    /// A STORE DATA sequence in progress (staged in RAM only).
    pub(crate) perso: Option<PersoSession>,
}

impl OpenChannel {
    /// Key version number of the key set the channel was opened with.
    pub(crate) fn kvn(&self) -> u8 {
        self.channel.key_version()
    }
}

/// A successful INITIALIZE UPDATE.
pub(crate) struct InitializeUpdated {
    /// The response to send.
    pub(crate) response: ResponseApdu,
    /// The key set used and its sequence counter after the command, which
    /// the fob must make durable before answering when it changed.
    pub(crate) kvn: u8,
    /// See `kvn`.
    pub(crate) sequence_counter: Option<u32>,
}

/// Why EXTERNAL AUTHENTICATE did not open the channel.
pub(crate) enum AuthenticateRefused {
    /// Wrong host cryptogram or MAC: a failed authentication, to be counted.
    Failed(StatusWord),
    /// Refused before any authentication was attempted (no INITIALIZE
    /// UPDATE just before, security level not allowed).
    Refused(StatusWord),
}

impl SecureMessaging {
    /// The endpoints of a card with `data`'s key sets and sequence counters;
    /// no channel.
    pub(crate) fn new(data: &CardData, scp_i: u8, mode: Mode) -> Result<SecureMessaging, FobError> {
        let i = ParameterI::new(scp_i).map_err(|_| FobError::InvalidScpParameter(scp_i))?;
        // Key diversification data: the UID, left-aligned (JCOP returns card
        // identification data here; the station derives keys from the UID).
        let mut kdd = [0u8; KDD_LEN];
        let uid = data.uid.as_bytes();
        let n = uid.len().min(KDD_LEN);
        kdd[..n].copy_from_slice(&uid[..n]);
        let session = |sd: Selected| {
            let mut config = CardConfig::new(i, mode, sd.aid());
            config.key_diversification_data = kdd;
            let key_sets = data
                .key_sets
                .iter()
                .map(|(kvn, keys)| {
                    CardKeySet::new(*kvn, keys.duplicate())
                        .with_sequence_counter(data.sequence_counter(sd.state_name(), *kvn))
                })
                .collect();
            CardSession::new(config, key_sets)
        };
        Ok(SecureMessaging {
            isd: session(Selected::Isd),
            applet: session(Selected::Applet),
            state: ChannelState::Closed,
        })
    }

    /// Ends the channel and, with it, any STORE DATA sequence.
    pub(crate) fn close(&mut self) {
        self.state = ChannelState::Closed;
    }

    /// The open channel, if any.
    pub(crate) fn open_mut(&mut self) -> Option<&mut OpenChannel> {
        match &mut self.state {
            ChannelState::Open(open) => Some(open),
            _ => None,
        }
    }

    /// Whether a channel is open (EXTERNAL AUTHENTICATE succeeded).
    pub(crate) fn is_open(&self) -> bool {
        matches!(&self.state, ChannelState::Open(open) if !open.channel.is_terminated())
    }

    /// Whether a STORE DATA sequence is in progress.
    pub(crate) fn personalization_in_progress(&self) -> bool {
        matches!(&self.state, ChannelState::Open(open) if open.perso.is_some())
    }

    /// INITIALIZE UPDATE to security domain `sd` (Amd D §7.1.1). Ends any
    /// previous channel first. ISO class (CLA 00) → 6E00; unknown KVN →
    /// 6A88; challenge length ≠ S8/S16 mode → 6700; P2 ≠ 00 or CLA 84 → 6A86.
    pub(crate) fn initialize_update(
        &mut self,
        sd: Selected,
        cmd: &CommandApdu,
    ) -> Result<InitializeUpdated, StatusWord> {
        self.close();
        if !gp::cla_is_proprietary(cmd.cla()) {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let session = match sd {
            Selected::Isd => &mut self.isd,
            Selected::Applet => &mut self.applet,
        };
        let (response, awaiting) = session
            .initialize_update(cmd)
            .map_err(|e| e.card_status_word())?;
        let kvn = awaiting.key_version();
        let sequence_counter = session.key_set(kvn).map(|k| k.sequence_counter());
        self.state = ChannelState::Awaiting(awaiting);
        Ok(InitializeUpdated {
            response,
            kvn,
            sequence_counter,
        })
    }

    /// EXTERNAL AUTHENTICATE (Amd D §7.1.2): opens the channel, or says why
    /// not. Whatever the outcome, a channel that was in progress before is
    /// gone unless this call opened it.
    pub(crate) fn external_authenticate(
        &mut self,
        raw: &[u8],
    ) -> Result<ResponseApdu, AuthenticateRefused> {
        let ChannelState::Awaiting(awaiting) =
            std::mem::replace(&mut self.state, ChannelState::Closed)
        else {
            return Err(AuthenticateRefused::Refused(
                StatusWord::CONDITIONS_NOT_SATISFIED,
            ));
        };
        match awaiting.external_authenticate(raw) {
            Ok((response, channel)) => {
                self.state = ChannelState::Open(OpenChannel {
                    channel,
                    perso: None,
                });
                Ok(response)
            }
            Err(
                e @ (Scp03Error::HostCryptogramMismatch
                | Scp03Error::ExternalAuthenticateMacMismatch),
            ) => Err(AuthenticateRefused::Failed(e.card_status_word())),
            Err(e) => Err(AuthenticateRefused::Refused(e.card_status_word())),
        }
    }

    /// Verifies and decrypts a protected command; any error closes the
    /// channel (fail closed, Amd D §5.6): 6982.
    pub(crate) fn unwrap_command(&mut self, raw: &[u8]) -> Result<CommandApdu, StatusWord> {
        let result = match &mut self.state {
            ChannelState::Open(open) => open
                .channel
                .unwrap_command(raw)
                .map_err(|e| e.card_status_word()),
            _ => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
        };
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Protects a response (R-MAC / R-ENC per the session's security level).
    /// With no channel (the command closed it, e.g. SELECT) the response
    /// goes out plain; an error closes the channel and answers its status word.
    pub(crate) fn wrap_response(&mut self, response: ResponseApdu) -> ResponseApdu {
        let result = match &mut self.state {
            ChannelState::Closed => return response,
            ChannelState::Open(open) => open
                .channel
                .wrap_response(response)
                .map_err(|e| e.card_status_word()),
            ChannelState::Awaiting(_) => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
        };
        result.unwrap_or_else(|sw| {
            self.close();
            ResponseApdu::status(sw)
        })
    }
}
