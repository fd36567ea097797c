//! Glue between the fob and the card side of `kf-scp03`: INITIALIZE UPDATE,
//! EXTERNAL AUTHENTICATE, command unwrap and response wrap (GPC Amd D §7.1,
//! §6.2.4–§6.2.7). The ISD and the applet's security domain each have a
//! [`CardSession`] over the same key sets (this profile), with their own AID
//! as pseudo-random challenge context and their own sequence counters.

use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::{
    CardAwaitingAuthentication, CardChannel, CardConfig, CardKeySet, CardSession, Mode, ParameterI,
    Scp03Error, KDD_LEN,
};

use crate::error::FobError;
use crate::fob::{status, Selected, VirtualFob};
use crate::state::CardData;
use crate::sw;

/// INITIALIZE UPDATE (GPC Amd D §7.1.1).
pub(crate) const INS_INITIALIZE_UPDATE: u8 = 0x50;
/// EXTERNAL AUTHENTICATE (GPC Amd D §7.1.2).
pub(crate) const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;

/// The two security domains' SCP03 endpoints.
pub(crate) struct ScpEndpoints {
    isd: CardSession,
    applet: CardSession,
}

impl ScpEndpoints {
    pub(crate) fn new(data: &CardData, scp_i: u8, mode: Mode) -> Result<ScpEndpoints, FobError> {
        let i = ParameterI::new(scp_i).map_err(|_| FobError::InvalidScpParameter(scp_i))?;
        // Key diversification data: the UID, left-aligned (JCOP returns card
        // identification data here; the station derives keys from the UID).
        let mut kdd = [0u8; KDD_LEN];
        let uid = data.uid.as_bytes();
        let n = uid.len().min(KDD_LEN);
        kdd[..n].copy_from_slice(&uid[..n]);
        let session = |sd: Selected| {
            let mut config = CardConfig::new(i, mode, sd_aid(sd));
            config.key_diversification_data = kdd;
            let key_sets = data
                .key_sets
                .iter()
                .map(|(kvn, keys)| {
                    CardKeySet::new(*kvn, keys.duplicate())
                        .with_sequence_counter(data.sequence_counter(sd_name(sd), *kvn))
                })
                .collect();
            CardSession::new(config, key_sets)
        };
        Ok(ScpEndpoints {
            isd: session(Selected::Isd),
            applet: session(Selected::Applet),
        })
    }

    fn get_mut(&mut self, sd: Selected) -> &mut CardSession {
        match sd {
            Selected::Isd => &mut self.isd,
            Selected::Applet => &mut self.applet,
        }
    }
}

fn sd_aid(sd: Selected) -> &'static [u8] {
    match sd {
        Selected::Isd => kf_profile::ISD_AID,
        Selected::Applet => kf_profile::APPLET_AID,
    }
}

fn sd_name(sd: Selected) -> &'static str {
    match sd {
        Selected::Isd => "isd",
        Selected::Applet => "applet",
    }
}

/// A secure channel session with the selected security domain.
pub(crate) enum ScpChannel {
    /// INITIALIZE UPDATE answered, waiting for EXTERNAL AUTHENTICATE.
    Awaiting(CardAwaitingAuthentication),
    /// EXTERNAL AUTHENTICATE succeeded.
    Open(CardChannel),
}

impl ScpChannel {
    pub(crate) fn kvn(&self) -> u8 {
        match self {
            ScpChannel::Awaiting(a) => a.key_version(),
            ScpChannel::Open(c) => c.key_version(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self, ScpChannel::Open(c) if !c.is_terminated())
    }

    /// Verifies and decrypts a protected command; errors close the channel (6982).
    pub(crate) fn unwrap_command(&mut self, raw: &[u8]) -> Result<CommandApdu, StatusWord> {
        match self {
            ScpChannel::Open(c) => c.unwrap_command(raw).map_err(|e| e.card_status_word()),
            ScpChannel::Awaiting(_) => Err(sw::SECURITY_STATUS),
        }
    }

    /// Protects a response (R-MAC / R-ENC per the session's security level).
    pub(crate) fn wrap_response(
        &mut self,
        response: ResponseApdu,
    ) -> Result<ResponseApdu, StatusWord> {
        match self {
            ScpChannel::Open(c) => c.wrap_response(response).map_err(|e| e.card_status_word()),
            ScpChannel::Awaiting(_) => Err(sw::SECURITY_STATUS),
        }
    }
}

impl VirtualFob {
    /// INITIALIZE UPDATE to the selected security domain (Amd D §7.1.1).
    /// Ends any previous channel and STORE DATA sequence. ISO class (CLA 00)
    /// → 6E00; unknown KVN → 6A88; challenge length ≠ S8/S16 mode → 6700;
    /// P2 ≠ 00 or CLA 84 → 6A86.
    pub(crate) fn initialize_update(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        self.channel = None;
        self.perso = None;
        if cmd.cla() & 0x80 == 0 {
            return status(sw::CLA_NOT_SUPPORTED);
        }
        let sd = self.selected;
        let session = self.scp.get_mut(sd);
        match session.initialize_update(cmd) {
            Ok((response, awaiting)) => {
                let kvn = awaiting.key_version();
                let counter = session.key_set(kvn).map(|k| k.sequence_counter());
                self.channel = Some(ScpChannel::Awaiting(awaiting));
                if let Some(counter) = counter {
                    if counter != self.data.sequence_counter(sd_name(sd), kvn) {
                        // Pseudo-random challenges must never repeat across restarts.
                        self.data.set_sequence_counter(sd_name(sd), kvn, counter);
                        if self.persist().is_err() {
                            self.channel = None;
                            return status(sw::MEMORY_FAILURE);
                        }
                    }
                }
                response
            }
            Err(e) => status(e.card_status_word()),
        }
    }

    /// EXTERNAL AUTHENTICATE (Amd D §7.1.2): opens the channel, or counts a
    /// failed authentication (wrong host cryptogram or MAC → 6982). Without a
    /// preceding INITIALIZE UPDATE → 6985; level not allowed by "i" or below
    /// C-MAC → 6A86.
    pub(crate) fn external_authenticate(&mut self, raw: &[u8]) -> ResponseApdu {
        let Some(ScpChannel::Awaiting(awaiting)) = self.channel.take() else {
            self.perso = None;
            return status(sw::CONDITIONS_NOT_SATISFIED);
        };
        match awaiting.external_authenticate(raw) {
            Ok((response, channel)) => {
                self.channel = Some(ScpChannel::Open(channel));
                response
            }
            Err(e) => {
                if matches!(
                    e,
                    Scp03Error::HostCryptogramMismatch
                        | Scp03Error::ExternalAuthenticateMacMismatch
                ) {
                    self.data.auth_failures = self.data.auth_failures.saturating_add(1);
                    // The count is kept in RAM even if the file cannot be written.
                    let _ = self.persist();
                }
                status(e.card_status_word())
            }
        }
    }
}
