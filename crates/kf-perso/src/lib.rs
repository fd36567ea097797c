//! The key-fob provisioning pipeline: DGI plan, stages and audit record.
//!
//! ```text
//! kf-source ──ProvisioningInput──▶ PersoPlan::build (DGIs, DEK-encrypted A003, STORE DATA blocks)
//!   ──plaintext CommandApdus──▶ [SCP03 host wrap, transport: pipeline driver]
//!   every exchange ──▶ AuditRecord (the KLMS contract's shape, redacted TX, stage durations)
//! ```
//!
//! This crate is sans-IO: it builds commands and records, and never owns a
//! transport, an HTTP client or a database (ARCHITECTURE "crate map").
//!
//! Depends on the protocol crates and the inputs (`kf-apdu`, `kf-crypto`, `kf-scp03`,
//! `kf-profile`, `kf-transport`'s trait and driver, `kf-source`, `kf-audit`); never on the
//! virtual fob, the KLMS server or the station.

pub mod audit;
pub mod keypair;
pub mod pipeline;
pub mod plan;

use thiserror::Error;

pub use audit::{ApduTraceEntry, AuditRecord, Direction, OverallResult, Stage};
pub use keypair::{check_key_pair, KeyPairError};
pub use plan::{LastBlockStyle, PersoPlan, PlanOptions, StoreDataBlock};

/// Errors while building a personalization plan. No variant carries secret bytes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A DGI value breaks the applet profile (wrong length or shape).
    #[error("invalid personalization item: {0}")]
    InvalidDgi(#[from] kf_profile::ProfileError),
    /// A DGI could not be encoded (value above 65535 bytes).
    #[error("DGI encoding failed: {0}")]
    DgiEncoding(#[from] kf_apdu::DgiError),
    /// A block could not be put into a command APDU.
    #[error("STORE DATA command could not be built: {0}")]
    Apdu(#[from] kf_apdu::ApduError),
    /// The personalization needs more blocks than the P2 counter can number.
    #[error("personalization needs {blocks} STORE DATA commands; P2 numbers at most 256")]
    TooManyBlocks {
        /// Commands needed.
        blocks: usize,
    },
    /// The Lc limit leaves no room for data after the MAC and padding.
    #[error("an Lc limit of {lc_limit} leaves no room for STORE DATA content")]
    NoRoomForData {
        /// The limit in force.
        lc_limit: usize,
    },
}
