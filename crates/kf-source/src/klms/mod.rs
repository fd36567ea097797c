//! KLMS client ("KLMS API Contract", mutual TLS).
//!
//! * The server is authenticated against the pinned CA only: no system or
//!   built-in roots.
//! * The station authenticates with its client certificate (PEM files).
//! * Only transient failures are retried, with a bounded exponential backoff:
//!   connection failures and HTTP 502/503/504. A read timeout after the
//!   request was sent is **not** retried: the server may have issued the
//!   package, and the one-time ledger would answer 409 anyway.
//! * Responses are validated strictly into a [`KeyPackage`]; an expired package
//!   is never returned, and [`KeyPackage::ensure_fresh`] re-checks right
//!   before the keys are used.

mod client;
mod error;
mod package;
mod sink;
mod source;

pub use client::{AuditAck, KlmsClient, KlmsClientConfig, MAX_RESPONSE_BYTES};
pub use error::KlmsError;
pub use package::{FordPayload, KeyPackage, PersonalizationDgi};
pub use sink::KlmsAuditSink;
pub use source::{KlmsProvisioningSource, KlmsSource};
