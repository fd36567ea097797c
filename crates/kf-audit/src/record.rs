//! Journal records and the hash chain over them.

use sha2::{Digest, Sha256};

/// Previous-hash value of the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Domain separator of the canonical record encoding (version 1).
const CANONICAL_TAG: &[u8] = b"kf-audit/record/v1\0";

/// What a record says about its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// Written before the first STORE DATA of a fob (intent).
    Started,
    /// Written after the pipeline ended, successfully or not (the audit record).
    Outcome,
}

impl RecordKind {
    /// The name stored in the database and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Started => "started",
            RecordKind::Outcome => "outcome",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "started" => Some(RecordKind::Started),
            "outcome" => Some(RecordKind::Outcome),
            _ => None,
        }
    }
}

/// Where a record stands with respect to the KLMS upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Not uploaded (`started` records are never uploaded and stay here).
    Pending,
    /// The KLMS acknowledged it at this RFC 3339 time.
    Acknowledged(String),
    /// The KLMS refused it permanently (kept for the operator, not retried).
    Rejected(String),
}

/// One journal record as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalRecord {
    /// Sequence number, 1-based and gap-free.
    pub seq: i64,
    /// Append time, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// KLMS transaction id (or a local id for offline sources).
    pub transaction_id: String,
    /// Started or outcome.
    pub kind: RecordKind,
    /// The JSON body exactly as hashed (canonical: compact, sorted keys).
    pub body: String,
    /// Hash of the previous record (hex), [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// SHA-256(prev_hash ‖ canonical bytes), hex.
    pub hash: String,
    /// Upload state (not covered by the hash: it changes after the append).
    pub upload: UploadState,
}

impl JournalRecord {
    /// The body parsed as JSON.
    pub fn body_json(&self) -> Result<serde_json::Value, crate::AuditError> {
        serde_json::from_str(&self.body).map_err(|e| crate::AuditError::InvalidBody(e.to_string()))
    }
}

/// Canonical bytes of a record: a domain tag, the big-endian sequence number
/// and each text field prefixed by its 32-bit big-endian length, so that no
/// two different records share an encoding.
pub(crate) fn canonical_bytes(
    seq: i64,
    timestamp: &str,
    transaction_id: &str,
    kind: RecordKind,
    body: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(CANONICAL_TAG.len() + 8 + body.len() + 64);
    out.extend_from_slice(CANONICAL_TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    for field in [timestamp, transaction_id, kind.as_str(), body] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// SHA-256(prev_hash ‖ canonical bytes).
pub(crate) fn chain_hash(prev_hash: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(canonical);
    h.finalize().into()
}

/// Why the chain is broken at a record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    /// The stored hash does not match the record's content (the row was edited).
    HashMismatch,
    /// The stored previous hash is not the hash of the record before it.
    PrevHashMismatch,
    /// A sequence number is missing (a row was deleted).
    SequenceGap {
        /// The sequence number that was expected here.
        expected: i64,
    },
    /// A column could not be read (unknown kind, non-hex hash).
    Malformed(String),
}

/// The first record at which the chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenLink {
    /// Sequence number of the offending record.
    pub seq: i64,
    /// What is wrong.
    pub reason: BreakReason,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            BreakReason::HashMismatch => {
                write!(f, "record {}: content does not match its hash", self.seq)
            }
            BreakReason::PrevHashMismatch => {
                write!(
                    f,
                    "record {}: previous-hash link does not match record {}",
                    self.seq,
                    self.seq - 1
                )
            }
            BreakReason::SequenceGap { expected } => {
                write!(
                    f,
                    "record {}: expected sequence number {expected} (records missing)",
                    self.seq
                )
            }
            BreakReason::Malformed(why) => write!(f, "record {}: malformed ({why})", self.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_separates_fields() {
        let a = canonical_bytes(1, "t", "ab", RecordKind::Started, "{}");
        let b = canonical_bytes(1, "ta", "b", RecordKind::Started, "{}");
        assert_ne!(a, b);
        assert_ne!(chain_hash(&GENESIS_HASH, &a), chain_hash(&GENESIS_HASH, &b));
    }

    #[test]
    fn kind_round_trip() {
        for k in [RecordKind::Started, RecordKind::Outcome] {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKind::parse("other"), None);
    }
}
