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
    /// A virtual fob could not be built.
    #[error("virtual fob: {0}")]
    Fob(#[from] kf_card::FobError),
    /// The provisioning source could not make packages.
    #[error("provisioning source: {0}")]
    Source(#[from] kf_source::SourceError),
    /// A fob failed in the pipeline during an end-to-end run.
    #[error("fob failed during the bench: {0}")]
    FobFailed(kf_perso::pipeline::StageError),
    /// An exchange of the end-to-end run or its floor failed.
    #[error("transport: {0}")]
    Transport(#[from] kf_transport::TransportError),
    /// pcscd with the vpcd driver could not be started, or the vpcd bridge
    /// could not reach it.
    #[error("pcscd + vpcd (needs root and the packages pcscd vsmartcard-vpcd): {0}")]
    Pcscd(std::io::Error),
    /// A reader thread of the line bench panicked.
    #[error("a reader thread of the bench panicked")]
    ReaderPanicked,
    /// The vpcd transport was asked for in a build without it.
    #[error("the vpcd transport needs Linux with the `pcsc` feature (and root for pcscd)")]
    VpcdUnavailable,
    /// A temporary directory or file could not be made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
