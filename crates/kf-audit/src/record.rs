//! Journal records, their canonical encoding and the keyed chain over them.
//!
//! # Canonical encoding (format 2)
//!
//! Every MAC is HMAC-SHA-256 (RFC 2104, FIPS 198-1) under the station's
//! 32-byte journal key ([`crate::JournalKey`]). Integers are big-endian, a
//! *string* is its UTF-8 bytes prefixed by their length as a 32-bit
//! big-endian integer, and each input starts with a NUL-terminated domain tag
//! so that no two kinds of MAC share an input:
//!
//! ```text
//! link(n)    = HMAC(key, "kf-audit/link/v2\0"   ‖ link(n-1) [32]  ‖ seq u64
//!                        ‖ str(timestamp) ‖ str(transaction_id) ‖ str(kind) ‖ str(body))
//! link(0)    = 32 zero bytes (genesis)
//! head MAC   = HMAC(key, "kf-audit/head/v2\0"   ‖ seq u64 ‖ link(seq) [32])
//! upload MAC = HMAC(key, "kf-audit/upload/v2\0" ‖ seq u64 ‖ link(seq) [32]
//!                        ‖ str(state) ‖ str(updated_at) ‖ str(detail) ‖ str(receipt))
//! key check  = HMAC(key, "kf-audit/key-check/v2\0")
//! subkey(L)  = HMAC(key, "kf-audit/derive/v1\0" ‖ str(L))
//! fingerprint(L, data) = first 16 bytes of HMAC(subkey(L), data)
//! ```
//!
//! Fingerprints (e.g. of a BLE IRK, label [`IRK_FINGERPRINT_LABEL`]) let a
//! record name a secret without holding it: only a holder of the journal key
//! can compute or match one, and the derived subkey (never stored) separates
//! them from every journal MAC. They are ordinary body fields, so they are
//! covered by the link like any other field.
//!
//! `seq` starts at 1 and grows by one per record. The record columns are
//! exactly `seq, timestamp, transaction_id, kind, body, link`: each is either
//! an input of the link or the link itself, so no stored value outside the
//! MAC can change what the journal says. `body` is compact JSON with sorted
//! keys, stored and MACed as the same text. The golden vectors in
//! `tests/data/chain_v2.json` pin this encoding.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::JournalKey;

/// Link before the first record.
pub const GENESIS_LINK: [u8; 32] = [0; 32];

const LINK_TAG: &[u8] = b"kf-audit/link/v2\0";
const HEAD_TAG: &[u8] = b"kf-audit/head/v2\0";
const UPLOAD_TAG: &[u8] = b"kf-audit/upload/v2\0";
const KEY_CHECK_TAG: &[u8] = b"kf-audit/key-check/v2\0";
const DERIVE_TAG: &[u8] = b"kf-audit/derive/v1\0";

/// Label of the BLE IRK fingerprint subkey.
pub const IRK_FINGERPRINT_LABEL: &str = "kf-audit/irk-fingerprint/v1";
/// Length of a fingerprint in bytes (HMAC-SHA-256 truncated to 128 bits).
pub const FINGERPRINT_LEN: usize = 16;

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
    /// The name stored in the database, MACed and exported.
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

/// Where an outcome record stands with respect to the KLMS upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Not uploaded yet (`started` records are never uploaded and stay here).
    Pending,
    /// The KLMS acknowledged it.
    Acknowledged {
        /// RFC 3339 time of the acknowledgement.
        at: String,
        /// The KLMS receipt as received (JSON text; empty when the sink gives none).
        receipt: String,
    },
    /// The KLMS refused it permanently (kept for the operator, not retried).
    Rejected(String),
}

impl UploadState {
    /// `pending`, `acknowledged` or `rejected`.
    pub fn name(&self) -> &'static str {
        match self {
            UploadState::Pending => "pending",
            UploadState::Acknowledged { .. } => "acknowledged",
            UploadState::Rejected(_) => "rejected",
        }
    }
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
    /// The JSON body exactly as MACed (compact, sorted keys).
    pub body: String,
    /// Link of the previous record (hex), [`GENESIS_LINK`] for the first.
    pub prev_link: String,
    /// This record's link (hex): the keyed MAC described in the module docs.
    pub link: String,
    /// Upload state (kept outside the chain in its own MACed table).
    pub upload: UploadState,
}

impl JournalRecord {
    /// The body parsed as JSON.
    pub fn body_json(&self) -> Result<serde_json::Value, crate::AuditError> {
        serde_json::from_str(&self.body).map_err(|e| crate::AuditError::InvalidBody(e.to_string()))
    }
}

fn put_str(mac: &mut Hmac<Sha256>, s: &str) {
    // Bodies are bounded far below 4 GiB by the journal (see `MAX_FIELD_BYTES`).
    mac.update(&(s.len() as u32).to_be_bytes());
    mac.update(s.as_bytes());
}

/// Largest stored text field; longer fields are refused at append.
pub(crate) const MAX_FIELD_BYTES: usize = 16 * 1024 * 1024;

fn hmac(key: &JournalKey) -> Hmac<Sha256> {
    hmac_with(key.expose())
}

fn hmac_with(key: &[u8; 32]) -> Hmac<Sha256> {
    // RFC 2104 pads a key shorter than the block with zeros; doing it here
    // uses the infallible fixed-size constructor.
    let mut block = zeroize::Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(
        hmac::digest::generic_array::GenericArray::from_slice(&block[..]),
    )
}

/// The fields of a record that its link covers.
#[derive(Debug, Clone, Copy)]
pub struct LinkInput<'a> {
    /// Sequence number (≥ 1).
    pub seq: u64,
    /// Append time.
    pub timestamp: &'a str,
    /// Transaction id.
    pub transaction_id: &'a str,
    /// Record kind.
    pub kind: RecordKind,
    /// Canonical JSON body.
    pub body: &'a str,
}

/// `link(n)` from `link(n-1)` and the record's fields.
pub fn compute_link(key: &JournalKey, prev: &[u8; 32], record: &LinkInput<'_>) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(LINK_TAG);
    mac.update(prev);
    mac.update(&record.seq.to_be_bytes());
    put_str(&mut mac, record.timestamp);
    put_str(&mut mac, record.transaction_id);
    put_str(&mut mac, record.kind.as_str());
    put_str(&mut mac, record.body);
    mac.finalize().into_bytes().into()
}

/// MAC over the journal head (last sequence number and its link).
pub fn compute_head_mac(key: &JournalKey, seq: u64, link: &[u8; 32]) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(HEAD_TAG);
    mac.update(&seq.to_be_bytes());
    mac.update(link);
    mac.finalize().into_bytes().into()
}

/// The fields of an upload-state row that its MAC covers.
#[derive(Debug, Clone, Copy)]
pub struct UploadInput<'a> {
    /// Sequence number of the outcome record.
    pub seq: u64,
    /// That record's link.
    pub link: &'a [u8; 32],
    /// `pending`, `acknowledged` or `rejected`.
    pub state: &'a str,
    /// Time of the last change.
    pub updated_at: &'a str,
    /// Rejection reason (empty otherwise).
    pub detail: &'a str,
    /// KLMS receipt (empty when none).
    pub receipt: &'a str,
}

/// MAC of an upload-state row.
pub fn compute_upload_mac(key: &JournalKey, row: &UploadInput<'_>) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(UPLOAD_TAG);
    mac.update(&row.seq.to_be_bytes());
    mac.update(row.link);
    put_str(&mut mac, row.state);
    put_str(&mut mac, row.updated_at);
    put_str(&mut mac, row.detail);
    put_str(&mut mac, row.receipt);
    mac.finalize().into_bytes().into()
}

/// Key check value stored in the journal: tells a wrong key from a tampered journal.
pub fn key_check(key: &JournalKey) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(KEY_CHECK_TAG);
    mac.finalize().into_bytes().into()
}

/// A subkey for `label`, derived from the journal key (never stored).
fn derive_subkey(key: &JournalKey, label: &str) -> zeroize::Zeroizing<[u8; 32]> {
    let mut mac = hmac(key);
    mac.update(DERIVE_TAG);
    put_str(&mut mac, label);
    zeroize::Zeroizing::new(mac.finalize().into_bytes().into())
}

/// The keyed fingerprint of `data` under the subkey of `label`: the first
/// [`FINGERPRINT_LEN`] bytes of HMAC-SHA-256(subkey(label), data).
pub fn fingerprint(key: &JournalKey, label: &str, data: &[u8]) -> [u8; FINGERPRINT_LEN] {
    let subkey = derive_subkey(key, label);
    let mut mac = hmac_with(&subkey);
    mac.update(data);
    let full = zeroize::Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&full[..FINGERPRINT_LEN]);
    out
}

/// Constant-time comparison of two MACs.
pub(crate) fn mac_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
}

/// Decodes 64 hex digits.
pub(crate) fn decode_mac(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_separate_fields() {
        let key = JournalKey::from_bytes([7; 32]);
        let a = LinkInput {
            seq: 1,
            timestamp: "t",
            transaction_id: "ab",
            kind: RecordKind::Started,
            body: "{}",
        };
        let b = LinkInput {
            transaction_id: "b",
            timestamp: "ta",
            ..a
        };
        assert_ne!(
            compute_link(&key, &GENESIS_LINK, &a),
            compute_link(&key, &GENESIS_LINK, &b)
        );
        let other = JournalKey::from_bytes([8; 32]);
        assert_ne!(
            compute_link(&key, &GENESIS_LINK, &a),
            compute_link(&other, &GENESIS_LINK, &a)
        );
    }

    #[test]
    fn fingerprints_depend_on_key_label_and_data() {
        let key = JournalKey::from_bytes([7; 32]);
        let irk = [0x11u8; 16];
        let a = fingerprint(&key, IRK_FINGERPRINT_LABEL, &irk);
        assert_eq!(a, fingerprint(&key, IRK_FINGERPRINT_LABEL, &irk));
        assert_ne!(a, fingerprint(&key, "other", &irk));
        assert_ne!(a, fingerprint(&key, IRK_FINGERPRINT_LABEL, &[0x12; 16]));
        assert_ne!(
            a,
            fingerprint(
                &JournalKey::from_bytes([8; 32]),
                IRK_FINGERPRINT_LABEL,
                &irk
            )
        );
        // Not a plain HMAC under the journal key itself.
        let mut plain = hmac(&key);
        plain.update(&irk);
        let plain: [u8; 32] = plain.finalize().into_bytes().into();
        assert_ne!(&a[..], &plain[..FINGERPRINT_LEN]);
    }

    /// Pins the derivation for the back end (computed independently with
    /// Python's `hmac`: subkey = HMAC(key, "kf-audit/derive/v1\0" ‖
    /// u32be(len) ‖ label), fingerprint = HMAC(subkey, IRK)[..16]).
    #[test]
    fn irk_fingerprint_vector() {
        let key = JournalKey::from_bytes([7; 32]);
        let irk: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            hex::encode_upper(fingerprint(&key, IRK_FINGERPRINT_LABEL, &irk)),
            "D591FA1C31383A385C5298CF87E8B9D5"
        );
    }

    #[test]
    fn kind_round_trip() {
        for k in [RecordKind::Started, RecordKind::Outcome] {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKind::parse("other"), None);
    }
}
