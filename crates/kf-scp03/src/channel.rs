//! State shared by the host and card channels: session keys, MAC chaining
//! value, encryption counter, command limit, and fail-closed termination
//! (ARCHITECTURE convention 3, Amd D §5.6).

use zeroize::Zeroize;

use crate::sm::{ChainingValue, ResponseContext};
use crate::{Mode, Scp03Error, SecurityLevel, SessionKeys, TerminationCause};

/// Default per-session command limit: 2^20 commands.
///
/// Amendment D sets no limit (the counter block is 15 bytes wide); the limit
/// bounds how much traffic one set of session keys protects. A personalization
/// session needs a few hundred commands. Configure it per session with
/// `command_limit` on the host or card configuration.
pub const DEFAULT_COMMAND_LIMIT: u64 = 1 << 20;

pub(crate) struct ChannelCore {
    keys: Option<SessionKeys>,
    pub(crate) mode: Mode,
    pub(crate) level: SecurityLevel,
    pub(crate) chaining: ChainingValue,
    /// Encryption counter of the last command (0 before the first one).
    pub(crate) counter: u64,
    limit: u64,
    terminated: Option<TerminationCause>,
}

impl ChannelCore {
    pub(crate) fn new(
        keys: SessionKeys,
        mode: Mode,
        level: SecurityLevel,
        chaining: ChainingValue,
        limit: u64,
    ) -> Self {
        ChannelCore {
            keys: Some(keys),
            mode,
            level,
            chaining,
            counter: 0,
            limit,
            terminated: None,
        }
    }

    /// The live session keys, or the termination error.
    pub(crate) fn keys(&self) -> Result<&SessionKeys, Scp03Error> {
        match (&self.terminated, &self.keys) {
            (None, Some(k)) => Ok(k),
            (Some(cause), _) => Err(Scp03Error::Terminated(*cause)),
            (None, None) => Err(Scp03Error::Terminated(TerminationCause::Closed)),
        }
    }

    /// Terminates: drops (and so zeroizes) the session keys and wipes the chaining value.
    pub(crate) fn terminate(&mut self, cause: TerminationCause) -> Scp03Error {
        if self.terminated.is_none() {
            self.terminated = Some(cause);
        }
        self.keys = None;
        self.chaining.zeroize();
        Scp03Error::Terminated(self.terminated.unwrap_or(cause))
    }

    /// Counter for the next command, terminating when the limit is reached.
    pub(crate) fn next_counter(&mut self) -> Result<u64, Scp03Error> {
        self.keys()?;
        if self.counter >= self.limit {
            return Err(self.terminate(TerminationCause::CommandLimitReached));
        }
        Ok(self.counter + 1)
    }

    /// Runs one command's secure messaging with the next encryption counter
    /// and a working copy of the chaining value; the channel keeps both only
    /// when `step` succeeds. The outer error is the channel's own (terminated,
    /// command limit), the inner one is `step`'s.
    pub(crate) fn next_command<T, E>(
        &mut self,
        step: impl FnOnce(&SessionKeys, Mode, SecurityLevel, &mut ChainingValue, u64) -> Result<T, E>,
    ) -> Result<Result<T, E>, Scp03Error> {
        let counter = self.next_counter()?;
        let keys = self.keys()?;
        let mut chaining = self.chaining;
        let result = step(keys, self.mode, self.level, &mut chaining, counter);
        if result.is_ok() {
            self.chaining = chaining;
            self.counter = counter;
        }
        Ok(result)
    }

    /// The context of the response to the last command.
    pub(crate) fn response_context(&self) -> Result<ResponseContext<'_>, Scp03Error> {
        Ok(ResponseContext {
            keys: self.keys()?,
            mode: self.mode,
            level: self.level,
            chaining: &self.chaining,
            counter: self.counter,
        })
    }

    /// A `Debug` view of a channel named `name`, starting with its level
    /// and mode (never the keys).
    pub(crate) fn debug_struct<'a, 'b>(
        &self,
        f: &'a mut std::fmt::Formatter<'b>,
        name: &str,
    ) -> std::fmt::DebugStruct<'a, 'b> {
        let mut d = f.debug_struct(name);
        d.field("level", &self.level).field("mode", &self.mode);
        d
    }

    /// Ends the `Debug` view of an open channel with its command count and
    /// termination.
    pub(crate) fn finish_debug(&self, d: &mut std::fmt::DebugStruct<'_, '_>) -> std::fmt::Result {
        d.field("commands", &self.counter)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }

    pub(crate) fn termination(&self) -> Option<TerminationCause> {
        self.terminated
    }

    #[cfg(test)]
    pub(crate) fn has_keys(&self) -> bool {
        self.keys.is_some()
    }
}
