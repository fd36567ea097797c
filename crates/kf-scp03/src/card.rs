//! Card (Security Domain) side of SCP03, mirroring the host:
//!
//! ```text
//! CardSession ──initialize_update(cmd)──▶ (response, CardAwaitingAuthentication)
//! CardAwaitingAuthentication ──external_authenticate(raw)──▶ ('9000', CardChannel)
//! CardChannel ──unwrap_command / wrap_response──▶ …
//! ```
//! `CardSession` outlives channels: it holds the key sets and their
//! pseudo-random challenge sequence counters (Amd D §6.2.2.1).

use kf_apdu::{gp, CommandApdu, ResponseApdu, StatusWord};
use kf_crypto::{ct_eq, StaticKeys};

use crate::channel::{ChannelCore, DEFAULT_COMMAND_LIMIT};
use crate::iu::{InitializeUpdateResponse, KDD_LEN};
use crate::session::{pseudo_random_card_challenge, Cryptogram};
use crate::sm;
use crate::{
    ChallengeSource, Mode, OsRandom, ParameterI, Scp03Error, SecurityLevel, SessionKeys,
    TerminationCause,
};

/// Largest value of the 3-byte sequence counter.
pub const MAX_SEQUENCE_COUNTER: u32 = 0x00FF_FFFF;

/// One static key set of a Security Domain with its key version number.
#[derive(Debug)]
pub struct CardKeySet {
    /// Key version number (INITIALIZE UPDATE P1).
    pub kvn: u8,
    /// Key-ENC, Key-MAC, Key-DEK.
    pub keys: StaticKeys,
    sequence_counter: u32,
}

impl CardKeySet {
    /// A fresh key set; its sequence counter starts at 0 (Amd D §6.2.2.1).
    pub fn new(kvn: u8, keys: StaticKeys) -> CardKeySet {
        CardKeySet {
            kvn,
            keys,
            sequence_counter: 0,
        }
    }

    /// Sets the stored sequence counter (e.g. restored from persistence);
    /// values above FFFFFF are clamped.
    pub fn with_sequence_counter(mut self, counter: u32) -> CardKeySet {
        self.sequence_counter = counter.min(MAX_SEQUENCE_COUNTER);
        self
    }

    /// The sequence counter of the last INITIALIZE UPDATE with this key set.
    pub fn sequence_counter(&self) -> u32 {
        self.sequence_counter
    }
}

/// Static configuration of the card's SCP03.
#[derive(Debug, Clone)]
pub struct CardConfig {
    /// The "i" parameter the card announces.
    pub parameter_i: ParameterI,
    /// S8 or S16; the host challenge length must match.
    pub mode: Mode,
    /// AID of the Security Domain (context of the pseudo-random challenge).
    pub sd_aid: Vec<u8>,
    /// Key diversification data returned in INITIALIZE UPDATE.
    pub key_diversification_data: [u8; KDD_LEN],
    /// Lowest security level accepted in EXTERNAL AUTHENTICATE (bitwise:
    /// the requested level must include all of its protections).
    pub minimum_level: SecurityLevel,
    /// Per-session command limit.
    pub command_limit: u64,
}

impl CardConfig {
    /// A configuration with KDD = 10 × '00', minimum level '01' (C-MAC) and
    /// the default command limit.
    pub fn new(parameter_i: ParameterI, mode: Mode, sd_aid: impl Into<Vec<u8>>) -> CardConfig {
        CardConfig {
            parameter_i,
            mode,
            sd_aid: sd_aid.into(),
            key_diversification_data: [0; KDD_LEN],
            minimum_level: SecurityLevel::C_MAC,
            command_limit: DEFAULT_COMMAND_LIMIT,
        }
    }
}

/// The card's SCP03 endpoint: key sets, configuration, challenge source.
pub struct CardSession {
    config: CardConfig,
    key_sets: Vec<CardKeySet>,
    rng: Box<dyn ChallengeSource + Send>,
}

impl std::fmt::Debug for CardSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSession")
            .field("config", &self.config)
            .field("key_versions", &self.key_versions())
            .finish_non_exhaustive()
    }
}

impl CardSession {
    /// A card with these key sets, drawing random challenges from the OS.
    pub fn new(config: CardConfig, key_sets: Vec<CardKeySet>) -> CardSession {
        CardSession {
            config,
            key_sets,
            rng: Box::new(OsRandom),
        }
    }

    /// Replaces the source of random card challenges (deterministic tests).
    pub fn with_challenge_source(
        mut self,
        source: impl ChallengeSource + Send + 'static,
    ) -> CardSession {
        self.rng = Box::new(source);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &CardConfig {
        &self.config
    }

    /// Key version numbers present.
    pub fn key_versions(&self) -> Vec<u8> {
        self.key_sets.iter().map(|k| k.kvn).collect()
    }

    /// The key set with version `kvn`.
    pub fn key_set(&self, kvn: u8) -> Option<&CardKeySet> {
        self.key_sets.iter().find(|k| k.kvn == kvn)
    }

    /// Adds or replaces a whole key set; its sequence counter restarts at 0
    /// (Amd D §6.2.2.1).
    pub fn put_key_set(&mut self, key_set: CardKeySet) {
        self.key_sets.retain(|k| k.kvn != key_set.kvn);
        self.key_sets.push(CardKeySet {
            sequence_counter: 0,
            ..key_set
        });
    }

    /// Processes INITIALIZE UPDATE (Amd D §7.1.1, GPC §11.12): selects the key
    /// set (P1 '00' = the first one), makes the card challenge (random, or
    /// pseudo-random with the incremented sequence counter), derives the
    /// session keys and returns the response (data ‖ '9000').
    ///
    /// On error, answer with [`Scp03Error::card_status_word`].
    pub fn initialize_update(
        &mut self,
        command: &CommandApdu,
    ) -> Result<(ResponseApdu, CardAwaitingAuthentication), Scp03Error> {
        let malformed = |reason| Scp03Error::MalformedHandshakeCommand {
            command: "INITIALIZE UPDATE",
            reason,
        };
        if command.cla() & 0xFC != gp::CLA_GP
            || command.ins() != gp::ins::INITIALIZE_UPDATE
            || command.p2() != 0x00
        {
            return Err(malformed("wrong CLA, INS or P2"));
        }
        let mode = self.config.mode;
        let host_challenge = command.data().to_vec();
        if host_challenge.len() != mode.byte_len() {
            return Err(Scp03Error::InvalidHostChallengeLength(host_challenge.len()));
        }
        let kvn = command.p1();
        let index = if kvn == 0 {
            (!self.key_sets.is_empty()).then_some(0)
        } else {
            self.key_sets.iter().position(|k| k.kvn == kvn)
        }
        .ok_or(Scp03Error::UnknownKeyVersion(kvn))?;
        let i = self.config.parameter_i;
        let (card_challenge, sequence_counter) = if i.pseudo_random_challenge() {
            let set = &mut self.key_sets[index];
            if set.sequence_counter >= MAX_SEQUENCE_COUNTER {
                return Err(Scp03Error::SequenceCounterExhausted);
            }
            set.sequence_counter += 1;
            let c = set.sequence_counter.to_be_bytes();
            let counter = [c[1], c[2], c[3]];
            let challenge =
                pseudo_random_card_challenge(&set.keys.enc, mode, counter, &self.config.sd_aid)?;
            (challenge, Some(counter))
        } else {
            let mut challenge = vec![0u8; mode.byte_len()];
            self.rng.fill(&mut challenge)?;
            (challenge, None)
        };
        let set = &self.key_sets[index];
        let keys = SessionKeys::derive(&set.keys, &host_challenge, &card_challenge)?;
        let card_crypto =
            Cryptogram::Card.compute(&keys, mode, &host_challenge, &card_challenge)?;
        let response = InitializeUpdateResponse {
            key_diversification_data: self.config.key_diversification_data,
            key_version: set.kvn,
            parameter_i: i,
            card_challenge: card_challenge.clone(),
            card_cryptogram: card_crypto,
            sequence_counter,
        };
        Ok((
            ResponseApdu::new(response.to_bytes(), StatusWord::SUCCESS),
            CardAwaitingAuthentication {
                keys,
                mode,
                parameter_i: i,
                minimum_level: self.config.minimum_level,
                command_limit: self.config.command_limit,
                host_challenge,
                card_challenge,
                kvn: set.kvn,
            },
        ))
    }
}

/// INITIALIZE UPDATE answered; the card waits for EXTERNAL AUTHENTICATE.
pub struct CardAwaitingAuthentication {
    keys: SessionKeys,
    mode: Mode,
    parameter_i: ParameterI,
    minimum_level: SecurityLevel,
    command_limit: u64,
    host_challenge: Vec<u8>,
    card_challenge: Vec<u8>,
    kvn: u8,
}

impl std::fmt::Debug for CardAwaitingAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardAwaitingAuthentication")
            .field("mode", &self.mode)
            .field("kvn", &self.kvn)
            .finish_non_exhaustive()
    }
}

impl CardAwaitingAuthentication {
    /// Key version of the selected key set.
    pub fn key_version(&self) -> u8 {
        self.kvn
    }

    /// Verifies EXTERNAL AUTHENTICATE (Amd D §7.1.2, §6.2.2.3, §6.2.3): C-MAC
    /// chained from 16 × '00', host cryptogram in constant time, and a security
    /// level of Table 7-3 that "i" supports and that includes the configured
    /// minimum. Returns '9000' (no R-MAC) and the open channel. Any failure
    /// consumes the state and so erases the session keys.
    pub fn external_authenticate(
        self,
        raw_command: &[u8],
    ) -> Result<(ResponseApdu, CardChannel), Scp03Error> {
        let (command, host_crypto, chaining) =
            sm::verify_external_authenticate(&self.keys, self.mode, raw_command)?;
        let expected = Cryptogram::Host.compute(
            &self.keys,
            self.mode,
            &self.host_challenge,
            &self.card_challenge,
        )?;
        if !ct_eq(&expected, &host_crypto) {
            return Err(Scp03Error::HostCryptogramMismatch);
        }
        let level = SecurityLevel::new(command.p1())?;
        if !self.parameter_i.allows(level) || !level.includes(self.minimum_level) {
            return Err(Scp03Error::SecurityLevelNotAllowed {
                level: level.value(),
                i: self.parameter_i.value(),
            });
        }
        let core = ChannelCore::new(self.keys, self.mode, level, chaining, self.command_limit);
        Ok((
            ResponseApdu::status(StatusWord::SUCCESS),
            CardChannel {
                core,
                kvn: self.kvn,
            },
        ))
    }
}

/// An open secure channel on the card side.
pub struct CardChannel {
    core: ChannelCore,
    kvn: u8,
}

impl std::fmt::Debug for CardChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = self.core.debug_struct(f, "CardChannel");
        d.field("kvn", &self.kvn);
        self.core.finish_debug(&mut d)
    }
}

impl CardChannel {
    /// Verifies the C-MAC and decrypts a received command (Amd D §6.2.4,
    /// §6.2.6), returning the plaintext command (CLA without the secure
    /// messaging bit, Le kept). Any failure (missing secure messaging, bad MAC,
    /// bad padding, command limit) terminates the channel (Amd D §5.6); answer
    /// with [`Scp03Error::card_status_word`] ('6982').
    pub fn unwrap_command(&mut self, raw_command: &[u8]) -> Result<CommandApdu, Scp03Error> {
        self.core
            .next_command(|keys, mode, level, chaining, counter| {
                sm::verify_command(keys, mode, level, chaining, counter, raw_command)
            })?
            .map_err(|cause| self.core.terminate(cause))
    }

    /// [`Self::unwrap_command`] for an already parsed command (assumes the
    /// canonical encoding: short lengths whenever they fit).
    pub fn unwrap_command_apdu(
        &mut self,
        command: &CommandApdu,
    ) -> Result<CommandApdu, Scp03Error> {
        self.unwrap_command(&command.to_bytes())
    }

    /// Protects the response to the last command (Amd D §6.2.5, §6.2.7): error
    /// SWs other than '62xx'/'63xx' are returned alone; otherwise R-ENC and R-MAC
    /// as the level requires.
    pub fn wrap_response(&mut self, response: ResponseApdu) -> Result<ResponseApdu, Scp03Error> {
        Ok(sm::protect_response(
            &self.core.response_context()?,
            &response,
        ))
    }

    /// Ends the session (e.g. on SELECT or a new INITIALIZE UPDATE, Amd D §5.6).
    pub fn terminate(&mut self) {
        self.core.terminate(TerminationCause::Closed);
    }

    /// The security level set by EXTERNAL AUTHENTICATE.
    pub fn security_level(&self) -> SecurityLevel {
        self.core.level
    }

    /// Key version of the session's key set.
    pub fn key_version(&self) -> u8 {
        self.kvn
    }

    /// Commands received so far.
    pub fn commands_received(&self) -> u64 {
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
}
