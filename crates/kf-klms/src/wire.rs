//! JSON shapes of the KLMS contract (seed 000 "KLMS API Contract", extended).
//!
//! Requests are parsed strictly (`deny_unknown_fields`): a station that sends a
//! field the server does not know is a version mismatch, better caught at once.
//! The audit record is the exception: the seed 000 fields are required and
//! type-checked, further fields (stage durations, failure reason) are stored
//! verbatim so the station can extend the record without a server release.

use serde::{Deserialize, Serialize};

/// `POST /v1/key-packages` request (seed 000).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPackageRequest {
    /// Fob UID, hex (10 bytes unless the server is configured otherwise).
    pub fob_uid: String,
    /// Reader that holds the fob, e.g. `LINE_04_READER_01`.
    pub reader_id: String,
}

/// The three static keys, upper-case hex.
#[derive(Serialize)]
pub struct StaticKeysHex {
    /// Key-ENC.
    pub enc: String,
    /// Key-MAC.
    pub mac: String,
    /// Key-DEK.
    pub dek: String,
}

/// Seed 000 `ford_payload`: the STORE DATA header template and the
/// concatenated DGI encoding of all personalization items (same order as
/// `personalization_dgis`).
#[derive(Serialize)]
pub struct FordPayload {
    /// CLA INS P1 P2 of the STORE DATA template, hex (`80E20000`).
    pub apdu_cla_ins_p1_p2: String,
    /// `TAG ‖ len ‖ value` for every DGI, hex.
    pub data_hex: String,
}

/// One personalization DGI.
#[derive(Serialize)]
pub struct DgiJson {
    /// Tag, 4 upper-case hex digits (`A001`…`A006`).
    pub tag: String,
    /// Value as written to the card, hex (A003 already DEK-encrypted).
    pub data_hex: String,
    /// True when the value is encrypted under the fob's static DEK.
    pub encrypted: bool,
}

/// `POST /v1/key-packages` response (seed 000 plus `fob_uid`,
/// `personalization_dgis` and `expires_at`).
#[derive(Serialize)]
pub struct KeyPackageResponse {
    /// Transaction id, echoed in the audit record.
    pub transaction_id: String,
    /// The UID the package was issued for (upper-case hex).
    pub fob_uid: String,
    /// Key version number of the static keys (1..=255).
    pub key_version: u8,
    /// Diversified static keys.
    pub scp03_static_keys: StaticKeysHex,
    /// Seed 000 payload.
    pub ford_payload: FordPayload,
    /// DGIs A003, A001, A002, A004, A005, A006.
    pub personalization_dgis: Vec<DgiJson>,
    /// End of validity, RFC 3339 UTC.
    pub expires_at: String,
}

/// Required part of the seed 000 audit record, for validation.
#[derive(Debug, Deserialize)]
pub struct AuditRecordCore {
    /// Transaction id of the key package.
    pub transaction_id: String,
    /// Fob UID, hex.
    pub fob_uid: String,
    /// Station time, RFC 3339.
    pub timestamp_iso8601: String,
    /// `SUCCESS` or a failure result.
    pub overall_result: String,
    /// Last stage reached.
    pub stage_reached: String,
    /// Redacted APDU trace.
    pub apdu_trace: Vec<ApduTraceEntry>,
    /// Station identifier.
    pub eol_station_id: String,
}

/// One APDU trace entry of the audit record.
#[derive(Debug, Deserialize)]
pub struct ApduTraceEntry {
    /// `TX` or `RX`.
    pub direction: String,
    /// The APDU (or its redacted header), hex.
    pub apdu_hex: String,
    /// SW1 of a response, hex.
    #[serde(default)]
    pub sw1: Option<String>,
    /// SW2 of a response, hex.
    #[serde(default)]
    pub sw2: Option<String>,
}

/// `POST /v1/audit` response.
#[derive(Serialize)]
pub struct AuditAck {
    /// Transaction id of the stored record.
    pub transaction_id: String,
    /// `stored` for a new record, `duplicate` for an identical re-upload.
    pub status: &'static str,
}

/// Error body of every non-2xx response.
#[derive(Serialize)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `already_issued`.
    pub error: &'static str,
    /// Human-readable explanation (never contains key material).
    pub message: String,
}
