//! Errors of the benchmark fixtures. They carry no key material.

use kf_crypto::CryptoError;
use kf_scp03::Scp03Error;

/// Why a benchmark fixture or measurement could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A fixed benchmark key could not be built.
    #[error("benchmark key setup failed: {0}")]
    Crypto(#[from] CryptoError),
    /// The SCP03 handshake or secure messaging failed.
    #[error("SCP03 failed during the benchmark: {0}")]
    Scp03(#[from] Scp03Error),
    /// A measured host and its lockstep responder got out of step.
    #[error("lockstep broken: {0}")]
    Lockstep(&'static str),
    /// A measurement was asked for zero rounds or an empty batch.
    #[error("a measurement needs at least one round and one APDU per round")]
    EmptyMeasurement,
}
