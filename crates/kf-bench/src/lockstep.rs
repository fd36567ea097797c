//! Card responses for a measured host, produced outside the timed region.
//!
//! The R-MAC of a response chains on the C-MAC of the command it answers and
//! R-ENC uses that command's encryption counter (GPC Amd D §6.2.5, §6.2.7), so
//! a response is valid for one position in one session only. The
//! [`LockstepResponder`] holds a second host + card pair opened exactly like
//! the measured host ([`crate::fixtures::open_pair`]); wrapping the same
//! commands in the same order keeps its host in the measured host's state, and
//! its card produces the responses the measured host will accept.

use kf_apdu::{CommandApdu, ResponseApdu};
use kf_scp03::{CardChannel, SecureChannel, SecurityLevel};

use crate::fixtures::open_pair;
use crate::BenchError;

/// A shadow host + card pair that answers the measured host's commands ahead of time.
#[derive(Debug)]
pub struct LockstepResponder {
    host: SecureChannel,
    card: CardChannel,
}

impl LockstepResponder {
    /// A responder in the state of a host just returned by
    /// [`open_pair`]`(level)`, before its first command.
    pub fn new(level: SecurityLevel) -> Result<LockstepResponder, BenchError> {
        let (host, card) = open_pair(level)?;
        Ok(LockstepResponder { host, card })
    }

    /// Raw response bytes (data ‖ SW) for the measured host's next `count`
    /// commands, each of them `command`, each answered with `response`
    /// protected by the card. The measured host must wrap exactly these
    /// `count` commands next, and nothing else.
    pub fn responses(
        &mut self,
        command: &CommandApdu,
        response: &ResponseApdu,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, BenchError> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let wire = self.host.wrap(command.clone())?.to_bytes();
            let received = self.card.unwrap_command(&wire)?;
            if received.data() != command.data() {
                return Err(BenchError::Lockstep("card decrypted other data"));
            }
            out.push(self.card.wrap_response(response.clone())?.to_bytes());
        }
        Ok(out)
    }

    /// Commands answered so far.
    pub fn commands_answered(&self) -> u64 {
        self.card.commands_received()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{plain_response, store_data, LEVELS};

    #[test]
    fn measured_host_accepts_lockstep_responses() {
        for level in LEVELS {
            let (mut host, _card) = open_pair(level).unwrap();
            let mut responder = LockstepResponder::new(level).unwrap();
            let command = store_data(64);
            let response = plain_response(64);
            let answers = responder.responses(&command, &response, 5).unwrap();
            assert_eq!(responder.commands_answered(), 5);
            for answer in &answers {
                host.wrap(command.clone()).unwrap();
                let plain = host.unwrap_bytes(answer).unwrap();
                assert_eq!(plain, response, "level {level:?}");
            }
        }
    }

    #[test]
    fn out_of_step_host_rejects_the_responses() {
        let level = SecurityLevel::FULL;
        let (mut host, _card) = open_pair(level).unwrap();
        let mut responder = LockstepResponder::new(level).unwrap();
        let answers = responder
            .responses(&store_data(16), &plain_response(16), 2)
            .unwrap();
        // Skipping a command moves the chaining value: the R-MAC must fail.
        host.wrap(store_data(16)).unwrap();
        host.wrap(store_data(16)).unwrap();
        assert!(
            matches!(
                host.unwrap_bytes(&answers[0]),
                Err(kf_scp03::Scp03Error::Terminated(
                    kf_scp03::TerminationCause::RMacMismatch
                ))
            ),
            "the skipped response must fail its R-MAC"
        );
        assert!(host.is_terminated());
    }
}
