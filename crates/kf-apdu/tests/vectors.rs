//! Data-file tests: tests/data/apdu-vectors.json. Each failure names the
//! vector and its source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::gp::{self, CardLifeCycle, GetStatusScope, PutKeyParams, StoreDataP1};
use kf_apdu::{ApduCase, CommandApdu, Dgi, StatusKind, StatusWord, Tag, Tlv};
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("data/apdu-vectors.json");
    serde_json::from_str(text).expect("vector file parses")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in vector file")
}

fn byte(v: &Value) -> u8 {
    let b = unhex(v.as_str().expect("hex string"));
    assert_eq!(b.len(), 1, "expected one byte, got {v}");
    b[0]
}

fn items<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing array {key}"))
}

fn label(v: &Value) -> String {
    format!("vector '{}' (source: {})", v["name"], v["source"])
}

/// Runs `check` on each vector of section `key`, which must hold at least
/// `min`, with the vector's label for failure messages.
fn each_vector(key: &str, min: usize, mut check: impl FnMut(&str, &Value)) {
    let all = vectors();
    let list = items(&all, key);
    assert!(
        list.len() >= min,
        "{key}: {} vectors, expected at least {min}",
        list.len()
    );
    for v in list {
        check(&label(v), v);
    }
}

/// Checks that `result` is the error the vector names: its `Debug` form
/// under `error_key` and its message under `message_key`.
fn assert_rejected<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
    v: &Value,
    error_key: &str,
    message_key: &str,
    result: Result<T, E>,
) {
    let id = label(v);
    let err = match result {
        Ok(parsed) => panic!("{id}: parsed as {parsed:?}"),
        Err(e) => e,
    };
    let text = |key: &str| {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: missing {key}"))
            .to_owned()
    };
    assert_eq!(format!("{err:?}"), text(error_key), "{id}: error");
    assert_eq!(err.to_string(), text(message_key), "{id}: message");
}

/// Each vector of section `key` is refused by `parse` with the error it names.
fn each_rejected<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
    key: &str,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) {
    each_vector(key, 1, |_, v| {
        let bytes = unhex(v["hex"].as_str().unwrap());
        assert_rejected(v, "error", "message", parse(&bytes));
    });
}

#[test]
fn command_vectors_parse_and_encode() {
    each_vector("commands", 15, |id, v| {
        let bytes = unhex(v["hex"].as_str().unwrap());
        let apdu = CommandApdu::parse(&bytes).unwrap_or_else(|e| panic!("{id}: parse failed: {e}"));
        assert_eq!(apdu.cla(), byte(&v["cla"]), "{id}: CLA");
        assert_eq!(apdu.ins(), byte(&v["ins"]), "{id}: INS");
        assert_eq!(apdu.p1(), byte(&v["p1"]), "{id}: P1");
        assert_eq!(apdu.p2(), byte(&v["p2"]), "{id}: P2");
        assert_eq!(
            apdu.data(),
            unhex(v["data"].as_str().unwrap()),
            "{id}: data"
        );
        assert_eq!(apdu.le(), v["le"].as_u64().map(|n| n as usize), "{id}: Le");
        let case = match v["case"].as_u64().unwrap() {
            1 => ApduCase::Case1,
            2 => ApduCase::Case2,
            3 => ApduCase::Case3,
            _ => ApduCase::Case4,
        };
        assert_eq!(apdu.case(), case, "{id}: case");
        assert_eq!(
            apdu.is_extended(),
            v["extended"].as_bool().unwrap(),
            "{id}: extended"
        );
        assert_eq!(apdu.to_bytes(), bytes, "{id}: re-encoding");
    });
}

#[test]
fn malformed_command_vectors_are_rejected() {
    each_rejected("malformed_commands", CommandApdu::parse);
}

fn build(v: &Value) -> CommandApdu {
    let a = &v["args"];
    let hex_arg = |k: &str| unhex(a[k].as_str().unwrap());
    let byte_arg = |k: &str| byte(&a[k]);
    match v["builder"].as_str().unwrap() {
        "select_by_aid" => gp::select_by_aid(&hex_arg("aid")).unwrap(),
        "initialize_update" => {
            gp::initialize_update(byte_arg("kvn"), &hex_arg("challenge")).unwrap()
        }
        "external_authenticate" => {
            gp::external_authenticate(byte_arg("level"), &hex_arg("cryptogram")).unwrap()
        }
        "store_data" => {
            let p1 = StoreDataP1::from_byte(byte_arg("p1")).unwrap();
            assert_eq!(p1.to_byte(), byte_arg("p1"), "{}: P1 round trip", label(v));
            gp::store_data(p1, byte_arg("block"), hex_arg("data"))
        }
        "set_card_status" => {
            gp::set_card_status(CardLifeCycle::from_byte(byte_arg("state")).unwrap())
        }
        "set_application_status" => {
            gp::set_application_status(&hex_arg("aid"), byte_arg("state")).unwrap()
        }
        "get_status" => {
            let scope = GetStatusScope::from_byte(byte_arg("scope")).unwrap();
            gp::get_status(scope, &hex_arg("aid"), a["next"].as_bool().unwrap()).unwrap()
        }
        "get_data" => {
            let t = hex_arg("tag");
            gp::get_data(u16::from_be_bytes([t[0], t[1]]))
        }
        "put_key" => gp::put_key(
            PutKeyParams {
                current_key_version: byte_arg("kvn"),
                first_key_id: byte_arg("key_id"),
                multiple_keys: a["multiple"].as_bool().unwrap(),
                more_commands: a["more"].as_bool().unwrap(),
            },
            hex_arg("data"),
        )
        .unwrap(),
        "get_response" => gp::get_response(a["le"].as_u64().unwrap() as usize),
        "put_data_odd" => {
            gp::put_data_odd(byte_arg("p1"), byte_arg("p2"), hex_arg("data")).unwrap()
        }
        other => panic!("unknown builder {other}"),
    }
}

#[test]
fn builder_vectors_match_expected_encoding() {
    each_vector("builders", 20, |id, v| {
        let apdu = build(v);
        assert_eq!(
            hex::encode_upper(apdu.to_bytes()),
            v["hex"].as_str().unwrap(),
            "{id}: encoding"
        );
        assert_eq!(
            apdu.is_sensitive(),
            v["sensitive"].as_bool().unwrap(),
            "{id}: sensitivity"
        );
    });
}

fn kind_name(kind: StatusKind) -> String {
    match kind {
        StatusKind::VerifyFailed { retries } => format!("VerifyFailed({retries})"),
        StatusKind::BytesAvailable(n) => format!("BytesAvailable({n})"),
        StatusKind::WrongLe(n) => format!("WrongLe({n})"),
        StatusKind::Unknown(_) => "Unknown".to_owned(),
        other => format!("{other:?}"),
    }
}

#[test]
fn status_word_vectors_classify() {
    each_vector("status_words", 1, |_, v| {
        let raw = unhex(v["sw"].as_str().unwrap());
        let sw = StatusWord::new(raw[0], raw[1]);
        assert_eq!(
            kind_name(sw.kind()),
            v["kind"].as_str().unwrap(),
            "status word {} (source: {})",
            v["sw"],
            v["source"]
        );
    });
}

#[test]
fn dgi_vectors_encode_and_decode() {
    each_vector("dgi", 1, |id, v| {
        let t = unhex(v["tag"].as_str().unwrap());
        let dgi = Dgi::new(
            u16::from_be_bytes([t[0], t[1]]),
            unhex(v["data"].as_str().unwrap()),
        );
        let wire = unhex(v["hex"].as_str().unwrap());
        assert_eq!(dgi.encode().unwrap(), wire, "{id}: encode");
        assert_eq!(Dgi::decode(&wire).unwrap(), dgi, "{id}: decode");
    });
}

#[test]
fn malformed_dgi_vectors_are_rejected() {
    each_vector("dgi_malformed", 1, |_, v| {
        let wire = unhex(v["hex"].as_str().unwrap());
        assert_rejected(v, "error", "message", Dgi::decode(&wire));
        assert_rejected(
            v,
            "sequence_error",
            "sequence_message",
            Dgi::decode_sequence(&wire),
        );
    });
}

#[test]
fn tlv_vectors_round_trip_and_find_tags() {
    each_vector("tlv", 1, |id, v| {
        let wire = unhex(v["hex"].as_str().unwrap());
        let tlv = Tlv::parse(&wire).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(tlv.encode(), wire, "{id}: re-encoding");
        for tag in v["tags"].as_array().unwrap() {
            let t = unhex(tag.as_str().unwrap());
            let value = t.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
            let tag = Tag::new(value).unwrap();
            assert!(tlv.find(tag).is_some(), "{id}: tag {tag} not found");
        }
    });
}

#[test]
fn malformed_tlv_vectors_are_rejected() {
    each_rejected("tlv_malformed", Tlv::parse);
}
