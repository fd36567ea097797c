//! Audit records as a station uploads them, for tests of their receivers.

/// A `SUCCESS` audit record of transaction `txid` for the fob `uid` (hex),
/// from `station-01`.
pub fn success_record(txid: &str, uid: &str) -> serde_json::Value {
    serde_json::json!({
        "transaction_id": txid,
        "fob_uid": uid,
        "timestamp_iso8601": "2026-11-22T14:32:01.123Z",
        "overall_result": "SUCCESS",
        "stage_reached": "POST_PERSONALIZATION",
        "apdu_trace": [{"direction": "TX", "apdu_hex": "8050000008"}],
        "eol_station_id": "station-01"
    })
}
