//! KLMS receipts: the KLMS's ECDSA P-256 signature over (station id,
//! sequence number, link) of a journal record it anchored, and the JSON
//! shapes of the anchor endpoints (`/v1/audit/chain`), shared by the KLMS and
//! the station's client.
//!
//! ```text
//! message   = "kf-klms/receipt/v1\0" ‖ u32 len(station_id) ‖ station_id ‖ seq u64 ‖ link [32]
//! signature = ECDSA P-256 / SHA-256 (FIPS 186-4, RFC 6979 nonces) over message, r ‖ s (64 bytes)
//! receipt   = {"station_id": …, "seq": n, "link": HEX64, "signature": HEX128}
//! ```
//!
//! The KLMS signs with its receipt key; the station stores the receipt with
//! the acknowledgement, and `verify` checks it against the KLMS's public key.
//! This module is the one home of the layout: the KLMS signs
//! [`receipt_message`], the station verifies [`Receipt::verify`].

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

const RECEIPT_TAG: &[u8] = b"kf-klms/receipt/v1\0";

/// The signed bytes of a receipt.
pub fn receipt_message(station_id: &str, seq: u64, link: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RECEIPT_TAG.len() + 4 + station_id.len() + 8 + 32);
    m.extend_from_slice(RECEIPT_TAG);
    m.extend_from_slice(&(station_id.len() as u32).to_be_bytes());
    m.extend_from_slice(station_id.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(link);
    m
}

/// A parsed receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Station identity (the CN of its client certificate).
    pub station_id: String,
    /// Sequence number of the anchored record.
    pub seq: u64,
    /// Its link, upper-case hex.
    pub link: String,
    /// ECDSA P-256 signature, r ‖ s, upper-case hex.
    pub signature: String,
}

impl Receipt {
    /// Parses the stored JSON text.
    pub fn parse(text: &str) -> Result<Receipt, String> {
        serde_json::from_str(text).map_err(|e| format!("receipt is not valid: {e}"))
    }

    /// The receipt as stored (compact JSON).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "station_id": self.station_id,
            "seq": self.seq,
            "link": self.link,
            "signature": self.signature,
        })
        .to_string()
    }

    /// True when the receipt names this sequence number and link.
    pub fn covers(&self, seq: u64, link: &[u8; 32]) -> bool {
        self.seq == seq && self.link.eq_ignore_ascii_case(&hex::encode(link))
    }

    /// True when the signature verifies under the KLMS receipt key.
    pub fn verify(&self, klms_key: &VerifyingKey) -> bool {
        let (Some(link), Ok(sig)) = (
            crate::record::decode_mac(&self.link),
            hex::decode(&self.signature),
        ) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&sig) else {
            return false;
        };
        klms_key
            .verify(&receipt_message(&self.station_id, self.seq, &link), &sig)
            .is_ok()
    }
}

/// Reads a KLMS receipt public key (SubjectPublicKeyInfo PEM).
pub fn klms_key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| format!("not a P-256 public key: {e}"))
}

/// `POST /v1/audit/chain` request: one journal record of the calling station.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainUpload {
    /// Sequence number in the station's journal (1-based).
    pub seq: u64,
    /// Link of the previous record, hex (64 zeros for the first).
    pub prev_link: String,
    /// This record's link, hex.
    pub link: String,
    /// `started` (no audit record) or `outcome` (with the KLMS contract's audit record).
    pub kind: String,
    /// The audit record of an outcome.
    #[serde(default)]
    pub record: Option<serde_json::Value>,
}

/// `POST /v1/audit/chain` response.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainUploadAck {
    /// `stored`, or `duplicate` for the same record again.
    pub status: String,
    /// The signed receipt over (station, seq, link).
    pub receipt: Receipt,
}

/// `GET /v1/audit/chain/head` response: the caller's anchored head.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    /// The station (client certificate CN).
    pub station_id: String,
    /// Last anchored sequence number (0: nothing anchored).
    pub seq: u64,
    /// Its link, hex.
    pub link: String,
}
