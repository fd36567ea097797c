//! Host (off-card entity) side of SCP03 as typed states:
//!
//! ```text
//! HostSession ──initialize_update──▶ (INITIALIZE UPDATE, AwaitingCardResponse)
//! AwaitingCardResponse ──process_response──▶ (EXTERNAL AUTHENTICATE, AwaitingExternalAuthenticate)
//! AwaitingExternalAuthenticate ──complete(9000)──▶ SecureChannel ──wrap / unwrap──▶ …
//! ```
//! Explicit secure channel initiation: GPC §D.1.2 / Figure E-1, Amd D §5.2, §6.2.

use kf_apdu::{gp, CommandApdu, ResponseApdu};
use kf_crypto::{ct_eq, StaticKeys};

use crate::channel::{ChannelCore, DEFAULT_COMMAND_LIMIT};
use crate::iu::InitializeUpdateResponse;
use crate::session::{pseudo_random_card_challenge, Cryptogram};
use crate::sm::{self, external_authenticate};
use crate::{
    ChallengeSource, Mode, ParameterI, Scp03Error, SecurityLevel, SessionKeys, TerminationCause,
};

/// Configuration and static keys of a host about to open a secure channel.
#[derive(Debug)]
pub struct HostSession {
    keys: StaticKeys,
    level: SecurityLevel,
    sd_aid: Option<Vec<u8>>,
    command_limit: u64,
}

impl HostSession {
    /// A host with these static keys, security level '03' (C-DECRYPTION and
    /// C-MAC, accepted with every "i"), no SD AID, and the default command limit.
    pub fn new(keys: StaticKeys) -> HostSession {
        HostSession {
            keys,
            level: SecurityLevel::C_DEC_C_MAC,
            sd_aid: None,
            command_limit: DEFAULT_COMMAND_LIMIT,
        }
    }

    /// Security level to request in EXTERNAL AUTHENTICATE (Amd D §7.1.2.1).
    pub fn security_level(mut self, level: SecurityLevel) -> HostSession {
        self.level = level;
        self
    }

    /// AID of the Security Domain; when set and "i" announces a pseudo-random
    /// challenge, the card challenge is verified (Amd D §6.2.2.1).
    pub fn sd_aid(mut self, aid: impl Into<Vec<u8>>) -> HostSession {
        self.sd_aid = Some(aid.into());
        self
    }

    /// Maximum number of commands in the session (see [`DEFAULT_COMMAND_LIMIT`]).
    pub fn command_limit(mut self, limit: u64) -> HostSession {
        self.command_limit = limit;
        self
    }

    /// Builds INITIALIZE UPDATE (`80 50 KVN 00 Lc host-challenge 00`, GPC
    /// §D.4.1 / Amd D §7.1.1) with `kf_apdu::gp::initialize_update`. KVN '00' lets the card choose the key set. An
    /// 8-byte challenge selects S8, a 16-byte one S16.
    pub fn initialize_update(
        self,
        key_version: u8,
        host_challenge: &[u8],
    ) -> Result<(CommandApdu, AwaitingCardResponse), Scp03Error> {
        let mode = Mode::from_challenge_len(host_challenge.len())?;
        let command = gp::initialize_update(key_version, host_challenge)?;
        Ok((
            command,
            AwaitingCardResponse {
                host: self,
                key_version,
                host_challenge: host_challenge.to_vec(),
                mode,
            },
        ))
    }

    /// Same as [`HostSession::initialize_update`] with a fresh challenge from `rng`.
    pub fn initialize_update_random(
        self,
        key_version: u8,
        mode: Mode,
        rng: &mut dyn ChallengeSource,
    ) -> Result<(CommandApdu, AwaitingCardResponse), Scp03Error> {
        let mut challenge = vec![0u8; mode.byte_len()];
        rng.fill(&mut challenge)?;
        self.initialize_update(key_version, &challenge)
    }
}

/// INITIALIZE UPDATE sent; waiting for the card's response.
#[derive(Debug)]
pub struct AwaitingCardResponse {
    host: HostSession,
    key_version: u8,
    host_challenge: Vec<u8>,
    mode: Mode,
}

impl AwaitingCardResponse {
    /// Checks the INITIALIZE UPDATE response and builds EXTERNAL AUTHENTICATE.
    ///
    /// Checks, in order: SW '9000'; exact layout, SCP '03' and a valid "i"
    /// (Amd D §7.1.1.1, Table 5-1); the key version when one was requested; the
    /// security level against "i" (§5.1); the pseudo-random card challenge when
    /// "i" says so and the SD AID is known (§6.2.2.1); the card cryptogram, in
    /// constant time (§6.2.2.2). Any failure consumes the state, dropping (and
    /// zeroizing) the session keys.
    pub fn process_response(
        self,
        response: &ResponseApdu,
    ) -> Result<(CommandApdu, AwaitingExternalAuthenticate), Scp03Error> {
        if !response.sw().is_success() {
            return Err(Scp03Error::CardStatus(response.sw()));
        }
        let card = InitializeUpdateResponse::parse(response.data(), self.mode)?;
        if self.key_version != 0 && card.key_version != self.key_version {
            return Err(Scp03Error::KeyVersionMismatch {
                requested: self.key_version,
                returned: card.key_version,
            });
        }
        let level = self.host.level;
        if !card.parameter_i.allows(level) {
            return Err(Scp03Error::SecurityLevelNotAllowed {
                level: level.value(),
                i: card.parameter_i.value(),
            });
        }
        if let (Some(counter), Some(aid)) = (card.sequence_counter, &self.host.sd_aid) {
            let expected =
                pseudo_random_card_challenge(&self.host.keys.enc, self.mode, counter, aid)?;
            if !ct_eq(&expected, &card.card_challenge) {
                return Err(Scp03Error::CardChallengeMismatch);
            }
        }
        let keys =
            SessionKeys::derive(&self.host.keys, &self.host_challenge, &card.card_challenge)?;
        let expected = Cryptogram::Card.compute(
            &keys,
            self.mode,
            &self.host_challenge,
            &card.card_challenge,
        )?;
        if !ct_eq(&expected, &card.card_cryptogram) {
            return Err(Scp03Error::CardCryptogramMismatch);
        }
        let host_crypto = Cryptogram::Host.compute(
            &keys,
            self.mode,
            &self.host_challenge,
            &card.card_challenge,
        )?;
        let (command, chaining) = external_authenticate(&keys, self.mode, level, &host_crypto)?;
        let core = ChannelCore::new(keys, self.mode, level, chaining, self.host.command_limit);
        Ok((command, AwaitingExternalAuthenticate { core, card }))
    }
}

/// EXTERNAL AUTHENTICATE sent; waiting for its status word.
pub struct AwaitingExternalAuthenticate {
    core: ChannelCore,
    card: InitializeUpdateResponse,
}

impl std::fmt::Debug for AwaitingExternalAuthenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core
            .debug_struct(f, "AwaitingExternalAuthenticate")
            .finish_non_exhaustive()
    }
}

impl AwaitingExternalAuthenticate {
    /// The card's INITIALIZE UPDATE data (KDD, KVN, "i", sequence counter).
    pub fn card_info(&self) -> &InitializeUpdateResponse {
        &self.card
    }

    /// Opens the channel once the card answered EXTERNAL AUTHENTICATE with
    /// '9000' (the response carries no R-MAC, Amd D §6.2.5).
    pub fn complete(self, response: &ResponseApdu) -> Result<SecureChannel, Scp03Error> {
        if !response.sw().is_success() {
            return Err(Scp03Error::CardStatus(response.sw()));
        }
        Ok(self.complete_unconfirmed())
    }

    /// Opens the channel without seeing the card's answer. Only for offline
    /// computation (trace replay, benchmarks); a live host uses [`Self::complete`].
    pub fn complete_unconfirmed(self) -> SecureChannel {
        SecureChannel {
            core: self.core,
            card: self.card,
        }
    }
}

/// An open secure channel on the host side (Amd D §6.2.4–§6.2.7).
pub struct SecureChannel {
    core: ChannelCore,
    card: InitializeUpdateResponse,
}

impl std::fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = self.core.debug_struct(f, "SecureChannel");
        self.core.finish_debug(&mut d)
    }
}

impl SecureChannel {
    /// Protects a plaintext command: C-MAC (and C-DECRYPTION per level), CLA
    /// secure messaging bit, Lc including the MAC, Le kept. Every command
    /// advances the encryption counter. Errors in the plaintext (class byte,
    /// length) leave the channel untouched; a terminated channel returns its
    /// termination error.
    pub fn wrap(&mut self, command: CommandApdu) -> Result<CommandApdu, Scp03Error> {
        self.core
            .next_command(|keys, mode, level, chaining, counter| {
                sm::protect_command(keys, mode, level, chaining, counter, &command)
            })?
    }

    /// Verifies and decrypts the response to the last wrapped command. Error SWs
    /// other than '62xx'/'63xx' carry no R-MAC and pass through as the bare SW
    /// without terminating. A bad R-MAC or layout terminates the channel.
    pub fn unwrap(&mut self, response: ResponseApdu) -> Result<ResponseApdu, Scp03Error> {
        let ctx = self.core.response_context()?;
        sm::verify_response(&ctx, &response).map_err(|cause| self.core.terminate(cause))
    }

    /// [`Self::unwrap`] for raw response bytes (data ‖ SW).
    pub fn unwrap_bytes(&mut self, response: &[u8]) -> Result<ResponseApdu, Scp03Error> {
        self.core.keys()?;
        match ResponseApdu::parse(response) {
            Ok(r) => self.unwrap(r),
            Err(_) => Err(self.core.terminate(TerminationCause::MissingMac)),
        }
    }

    /// Ends the session: session keys are erased; later calls fail.
    pub fn close(&mut self) {
        self.core.terminate(TerminationCause::Closed);
    }

    /// The negotiated security level.
    pub fn security_level(&self) -> SecurityLevel {
        self.core.level
    }

    /// S8 or S16.
    pub fn mode(&self) -> Mode {
        self.core.mode
    }

    /// The card's "i" parameter.
    pub fn parameter_i(&self) -> ParameterI {
        self.card.parameter_i
    }

    /// The card's INITIALIZE UPDATE data.
    pub fn card_info(&self) -> &InitializeUpdateResponse {
        &self.card
    }

    /// Commands wrapped so far (= the encryption counter of the last one).
    pub fn commands_sent(&self) -> u64 {
        self.core.counter
    }

    /// Why the channel ended, if it did.
    pub fn termination(&self) -> Option<TerminationCause> {
        self.core.termination()
    }

    /// Whether the channel is terminated.
    pub fn is_terminated(&self) -> bool {
        self.core.termination().is_some()
    }

    #[cfg(test)]
    pub(crate) fn has_session_keys(&self) -> bool {
        self.core.has_keys()
    }
}

#[cfg(test)]
mod tests {
    use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
    use kf_crypto::StaticKeys;

    use crate::{
        CardConfig, CardKeySet, CardSession, HostSession, Mode, ParameterI, Scp03Error,
        SecurityLevel, TerminationCause,
    };

    fn keys() -> StaticKeys {
        StaticKeys::from_hex(
            "404142434445464748494A4B4C4D4E4F",
            "404142434445464748494A4B4C4D4E4F",
            "404142434445464748494A4B4C4D4E4F",
        )
        .unwrap()
    }

    #[test]
    fn termination_erases_session_keys() {
        let cfg = CardConfig::new(
            ParameterI::new(0x30).unwrap(),
            Mode::S8,
            vec![0xA0, 0, 0, 0, 1],
        );
        let mut card = CardSession::new(cfg, vec![CardKeySet::new(1, keys())])
            .with_challenge_source(|b: &mut [u8]| b.fill(7));
        let (iu, awaiting) = HostSession::new(keys())
            .security_level(SecurityLevel::C_MAC_R_MAC)
            .initialize_update(1, &[1; 8])
            .unwrap();
        let (resp, auth) = card.initialize_update(&iu).unwrap();
        let (ea, awaiting) = awaiting.process_response(&resp).unwrap();
        let (ok, mut card_channel) = auth.external_authenticate(&ea.to_bytes()).unwrap();
        let mut host = awaiting.complete(&ok).unwrap();
        assert!(host.has_session_keys());
        let w = host.wrap(CommandApdu::new(0x80, 0xCA, 0, 0x66)).unwrap();
        card_channel.unwrap_command(&w.to_bytes()).unwrap();
        let r = card_channel
            .wrap_response(ResponseApdu::new(vec![1, 2], StatusWord::SUCCESS))
            .unwrap();
        let mut bytes = r.to_bytes();
        bytes[0] ^= 1;
        assert_eq!(
            host.unwrap_bytes(&bytes),
            Err(Scp03Error::Terminated(TerminationCause::RMacMismatch))
        );
        assert!(!host.has_session_keys());
        assert_eq!(host.termination(), Some(TerminationCause::RMacMismatch));
    }
}
