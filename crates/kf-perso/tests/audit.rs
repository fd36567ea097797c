//! Audit record: the KLMS contract's JSON shape, redaction of sensitive commands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kf_perso::{AuditRecord, Direction, OverallResult, Stage};
use kf_transport::RawApdu;

/// The "Audit Response" example of the KLMS contract (see tests/data/README.md).
const CONTRACT_AUDIT_EXAMPLE: &str = include_str!("data/klms_contract_audit_example.json");

#[test]
fn the_contract_example_parses_and_round_trips() {
    let record: AuditRecord = serde_json::from_str(CONTRACT_AUDIT_EXAMPLE).unwrap();
    assert_eq!(record.overall_result, OverallResult::Success);
    assert_eq!(record.stage_reached, Stage::PayloadDelivery);
    assert_eq!(record.apdu_trace[0].direction, Direction::Tx);
    assert_eq!(record.apdu_trace[0].sw1, None);
    assert_eq!(record.apdu_trace[1].sw1.as_deref(), Some("90"));
    assert!(record.stage_durations_ms.is_empty());
    assert_eq!(record.failure_reason, None);

    let json = serde_json::to_value(&record).unwrap();
    let example: serde_json::Value = serde_json::from_str(CONTRACT_AUDIT_EXAMPLE).unwrap();
    // Every field of the example is present with the same value; TX entries keep no sw1/sw2.
    for (k, v) in example.as_object().unwrap() {
        assert_eq!(&json[k], v, "field {k}");
    }
    let again: AuditRecord = serde_json::from_value(json).unwrap();
    assert_eq!(again, record);
}

#[test]
fn field_names_and_stage_names() {
    let started = time::macros::datetime!(2026-06-15 15:43:56.961 +02:00);
    let mut record = AuditRecord::new(
        "dev-1KM0001E-1",
        &[0x04, 0xA1, 0xFF],
        "LINE-04-PC-12",
        started,
    );
    record.enter(Stage::ExternalAuthenticate);
    record.record_duration(Stage::ReadUid, Duration::from_micros(1500));
    record.record_duration(Stage::ExternalAuthenticate, Duration::from_millis(12));
    record.trace_command(RawApdu::public(&[
        0x84, 0x82, 0x01, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    ]));
    record.trace_response(&[0x69, 0x82]);
    record.fail(
        Stage::ExternalAuthenticate,
        "card refused the host cryptogram (6982)",
    );

    let json: serde_json::Value = serde_json::from_str(&record.to_json_line().unwrap()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "apdu_trace",
            "eol_station_id",
            "failure_reason",
            "fob_uid",
            "overall_result",
            "stage_durations_ms",
            "stage_reached",
            "timestamp_iso8601",
            "transaction_id"
        ]
    );
    assert_eq!(json["fob_uid"], "04A1FF");
    assert_eq!(json["timestamp_iso8601"], "2026-06-15T13:43:56.961Z");
    assert_eq!(json["overall_result"], "FAILURE");
    assert_eq!(json["stage_reached"], "EXTERNAL_AUTHENTICATE");
    assert_eq!(json["stage_durations_ms"]["READ_UID"], 1.5);
    assert_eq!(json["stage_durations_ms"]["EXTERNAL_AUTHENTICATE"], 12.0);
    assert_eq!(json["apdu_trace"][1]["direction"], "RX");
    assert_eq!(json["apdu_trace"][1]["sw1"], "69");
    assert_eq!(json["apdu_trace"][1]["sw2"], "82");
    assert!(json["apdu_trace"][0].get("sw1").is_none());
    assert!(json["apdu_trace"][0].get("redacted").is_none());

    let names: Vec<String> = Stage::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "READ_UID",
            "FETCH_KEYS",
            "INITIALIZE_UPDATE",
            "EXTERNAL_AUTHENTICATE",
            "PAYLOAD_DELIVERY",
            "LIFECYCLE_TRANSITION",
            "POST_PERSONALIZATION",
            "VERIFY",
            "ZEROIZE"
        ]
    );
    for s in Stage::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }

    let mut ok = AuditRecord::new("t", &[1], "S", started);
    ok.enter(Stage::Zeroize);
    ok.succeed();
    let json = serde_json::to_value(&ok).unwrap();
    assert_eq!(json["overall_result"], "SUCCESS");
    assert!(json["failure_reason"].is_null());
}

#[test]
fn sensitive_commands_keep_only_the_header() {
    let trace = |bytes: &[u8], sensitive| {
        let mut record = AuditRecord::new("t", &[1], "S", time::OffsetDateTime::UNIX_EPOCH);
        record.trace_command(if sensitive {
            RawApdu::sensitive(bytes)
        } else {
            RawApdu::public(bytes)
        });
        record.apdu_trace.remove(0)
    };
    let mut short = vec![0x84, 0xE2, 0x00, 0x00, 0x3B];
    short.extend([0xAB; 0x3B]);
    let e = trace(&short, true);
    assert_eq!(e.apdu_hex, "84E20000");
    assert!(e.redacted);
    assert_eq!(e.direction, Direction::Tx);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["redacted"], true);
    assert!(!json.to_string().contains("ABAB"));

    let mut extended = vec![0x84, 0xE2, 0x00, 0x01, 0x00, 0x01, 0x10];
    extended.extend([0xCD; 0x110]);
    let e = trace(&extended, true);
    assert_eq!(e.apdu_hex, "84E20001");

    let plain = trace(&short, false);
    assert_eq!(plain.apdu_hex, hex::encode_upper(&short));
    assert!(!plain.redacted);
}
