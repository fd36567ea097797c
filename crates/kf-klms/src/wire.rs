//! JSON shapes of the KLMS contract ("KLMS API Contract", extended).
//!
//! Requests are parsed strictly: a duplicate key, a field the server does not
//! know or a value of the wrong type is refused (400) with the field's path,
//! since a station that sends them is a version mismatch, better caught at once.
//! The audit record requires the KLMS contract's fields and accepts the station's
//! extensions `reader_id`, `stage_durations_ms`, `failure_reason`, `ic_serial`,
//! `ic_fabrication_date` (the chip identity from its CPLC) and
//! `irk_fingerprint` (a keyed fingerprint of the fob's BLE IRK, 32 hex
//! digits); the stored copy is the record as received, re-serialized.
//!
//! Station and reader identifiers (the client certificate CN, `reader_id`,
//! `eol_station_id`, `kf-klms pki init --station`) follow [`check_identifier`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use kf_audit::identifier::{check_identifier, IdentifierError, IDENTIFIER_MAX_LEN};

/// Parses a request body strictly into `T`; the error names the field path
/// (e.g. `apdu_trace[2].sw1: invalid type: integer `1`, expected a string`).
pub fn parse_strict<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// `POST /v1/key-packages` request (KLMS contract).
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

/// The KLMS contract's `ford_payload`: the STORE DATA header template and the
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

/// `POST /v1/key-packages` response (the KLMS contract plus `fob_uid`,
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
    /// The KLMS contract's payload.
    pub ford_payload: FordPayload,
    /// DGIs A003, A001, A002, A004, A005, A006.
    pub personalization_dgis: Vec<DgiJson>,
    /// End of validity, RFC 3339 UTC.
    pub expires_at: String,
}

/// The KLMS contract's audit record with the station's extensions (strict).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Station identifier; must be the CN of the uploading station's certificate.
    pub eol_station_id: String,
    /// The reader the fob was on (station extension; an identifier).
    #[serde(default)]
    pub reader_id: Option<String>,
    /// Duration of each stage in milliseconds (station extension).
    #[serde(default)]
    pub stage_durations_ms: Option<UniqueKeyMap<f64>>,
    /// Why the fob failed, `null` on success (station extension).
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The chip's identity from its CPLC, `FFFF-TTTT-BBBB-SSSSSSSS` hex
    /// (IC fabricator, type, batch, serial; station extension).
    #[serde(default)]
    pub ic_serial: Option<String>,
    /// The chip's CPLC fabrication date, `YDDD` hex (station extension).
    #[serde(default)]
    pub ic_fabrication_date: Option<String>,
    /// Keyed fingerprint of the fob's BLE IRK: 16 bytes as 32 hex digits
    /// (HMAC-SHA-256 under a subkey of the station's journal key, truncated;
    /// never the IRK itself; station extension).
    #[serde(default)]
    pub irk_fingerprint: Option<String>,
}

/// A JSON object whose keys must be unique (`serde_json` keeps the last of
/// duplicate keys silently; a record with two values for one key is refused).
#[derive(Debug, Default)]
pub struct UniqueKeyMap<V>(pub BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueKeyMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = UniqueKeyMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with unique keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate key `{}`",
                            key.escape_debug()
                        )));
                    }
                    out.insert(key, value);
                }
                Ok(UniqueKeyMap(out))
            }
        }
        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

/// One APDU trace entry of the audit record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// True when the command's data field was left out (sensitive command).
    #[serde(default)]
    pub redacted: bool,
}

/// `POST /v1/audit` response.
#[derive(Serialize)]
pub struct AuditAck {
    /// Transaction id of the stored record.
    pub transaction_id: String,
    /// `stored` for a new record, `duplicate` for an identical re-upload,
    /// `flagged` for a `SUCCESS` the ledger keeps but marks (see
    /// [`crate::ledger::AuditFlag`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in [
            "station-01",
            "LINE_04_READER_01",
            "a",
            "A.b-c_9",
            &"x".repeat(64),
        ] {
            assert_eq!(check_identifier(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_identifier(""), Err(IdentifierError::Empty));
        assert_eq!(
            check_identifier(&"x".repeat(100 * 1024)),
            Err(IdentifierError::TooLong(100 * 1024))
        );
        for (bad, code) in [
            ("a\0b", 0),
            ("a\nb", 10),
            ("a b", 32),
            ("../x", 47),
            ("é", 0xE9),
        ] {
            assert!(
                matches!(check_identifier(bad), Err(IdentifierError::BadCharacter { code: c, .. }) if c == code),
                "{bad:?}"
            );
        }
        assert_eq!(check_identifier(".."), Err(IdentifierError::BadStart));
        assert_eq!(check_identifier("-x"), Err(IdentifierError::BadStart));
    }

    #[test]
    fn strict_parse_names_the_field() {
        let err = parse_strict::<KeyPackageRequest>(
            br#"{"fob_uid":"00","fob_uid":"11","reader_id":"R"}"#,
        )
        .unwrap_err();
        assert!(err.contains("duplicate field `fob_uid`"), "{err}");
        let err = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[{"direction":"TX","apdu_hex":"00","sw1":1}],"eol_station_id":"s"}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("apdu_trace[0].sw1: invalid type"), "{err}");
        let err = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s","stage_durations_ms":{"A":1,"A":2}}"#,
        )
        .unwrap_err();
        assert!(err.contains("duplicate key `A`"), "{err}");
        let core = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s",
                "ic_serial":"4790-D321-A4A5-A6A7A8A9","ic_fabrication_date":"3123"}"#,
        )
        .unwrap();
        assert_eq!(core.ic_serial.as_deref(), Some("4790-D321-A4A5-A6A7A8A9"));
        assert_eq!(core.ic_fabrication_date.as_deref(), Some("3123"));
        let core = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s",
                "irk_fingerprint":"00112233445566778899AABBCCDDEEFF"}"#,
        )
        .unwrap();
        assert_eq!(
            core.irk_fingerprint.as_deref(),
            Some("00112233445566778899AABBCCDDEEFF")
        );
        let err = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s","irk_fingerprint":1}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("irk_fingerprint: invalid type"), "{err}");
        let err = parse_strict::<AuditRecordCore>(
            br#"{"transaction_id":"t","fob_uid":"00","timestamp_iso8601":"x","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s","ic_serial":7}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("ic_serial: invalid type"), "{err}");
        let err = parse_strict::<KeyPackageRequest>(br#"{"fob_uid":"00","reader_id":"R"} x"#)
            .unwrap_err();
        assert!(err.contains("trailing characters"), "{err}");
    }
}
