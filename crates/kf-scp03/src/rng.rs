//! Randomness for challenges, injectable for deterministic tests.

use crate::Scp03Error;

/// Source of host and card challenges.
///
/// Closures `FnMut(&mut [u8])` implement it, which makes deterministic tests
/// easy; [`OsRandom`] is the production source.
pub trait ChallengeSource {
    /// Fills `buf` with fresh random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Scp03Error>;
}

impl<F: FnMut(&mut [u8])> ChallengeSource for F {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Scp03Error> {
        self(buf);
        Ok(())
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl ChallengeSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Scp03Error> {
        getrandom::getrandom(buf).map_err(|_| Scp03Error::Rng)
    }
}
