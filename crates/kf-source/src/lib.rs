//! Provisioning inputs for the station.
//!
//! Data flow:
//!
//! ```text
//! fob UID ──klms::KlmsClient (REST, mutual TLS, pinned CA)──▶ validated KeyPackage
//!           (static keys as AesKey, DGIs A001–A006, expires_at) ──▶ pipeline
//! audit journal ──klms::KlmsAuditSink──▶ KLMS /v1/audit
//! ```

pub mod klms;
