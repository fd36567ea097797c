//! The replay contract against `tests/data/scp03-replay-pysim-aes128.json`
//! (a copy of `shared/vectors/`; transcripts from osmocom/pysim
//! tests/unittests/test_globalplatform.py). Every key of each case's `expected`
//! must match byte for byte; failures name the case and the key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_scp03::replay::{replay, ReplayError};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let v: Value =
        serde_json::from_str(include_str!("data/scp03-replay-pysim-aes128.json")).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn assert_subset(case: &str, path: &str, expected: &Value, actual: &Value) {
    match expected {
        Value::Object(map) => {
            for (k, v) in map {
                let a = actual
                    .get(k)
                    .unwrap_or_else(|| panic!("{case}: output lacks key {path}.{k}"));
                assert_subset(case, &format!("{path}.{k}"), v, a);
            }
        }
        Value::Array(items) => {
            let a = actual
                .as_array()
                .unwrap_or_else(|| panic!("{case}: {path} is not an array"));
            assert_eq!(items.len(), a.len(), "{case}: {path} length");
            for (i, (e, x)) in items.iter().zip(a).enumerate() {
                assert_subset(case, &format!("{path}[{i}]"), e, x);
            }
        }
        _ => assert_eq!(expected, actual, "{case}: {path}"),
    }
}

#[test]
fn replay_vectors_pysim_aes128_levels_11_03_33() {
    let cases = cases();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        let name = case["source"].as_str().unwrap();
        let input = serde_json::to_string(&case["input"]).unwrap();
        let report = replay(&input, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = report.to_json_value();
        assert_subset(name, "$", &case["expected"], &out);
        // Keys of the contract that the vectors do not pin.
        assert_eq!(out["scp_parameter_i"], "70", "{name}");
        assert_eq!(out["key_version"], "30", "{name}");
        let hc = out["host_cryptogram"].as_str().unwrap();
        assert_eq!(hc.len(), 16, "{name}");
        assert!(
            out["external_authenticate"].as_str().unwrap()[10..].starts_with(hc),
            "{name}: host cryptogram is the start of EXTERNAL AUTHENTICATE data"
        );
        assert!(
            out.get("session_keys").is_none(),
            "{name}: keys only on request"
        );
    }
}

#[test]
fn replay_output_key_order_follows_the_contract() {
    let case = &cases()[0];
    let text = replay(&case["input"].to_string(), false)
        .unwrap()
        .to_json_pretty();
    let order = [
        "scp_parameter_i",
        "key_version",
        "card_cryptogram_valid",
        "card_challenge_valid",
        "host_cryptogram",
        "external_authenticate",
        "commands",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn replay_shows_session_keys_only_when_asked() {
    let case = &cases()[0];
    let report = replay(&case["input"].to_string(), true).unwrap();
    let v = report.to_json_value();
    for k in ["s_enc", "s_mac", "s_rmac"] {
        let s = v["session_keys"][k].as_str().unwrap();
        assert_eq!(s.len(), 32, "{k}");
        assert_eq!(s, s.to_uppercase(), "{k}");
    }
    assert!(!format!("{report:?}").contains(v["session_keys"]["s_mac"].as_str().unwrap()));
}

#[test]
fn replay_reports_and_continues_on_wrong_keys() {
    let mut input = cases()[2]["input"].clone();
    input["static_keys"]["mac"] = Value::from("00000000000000000000000000000000");
    let out = replay(&input.to_string(), false).unwrap().to_json_value();
    assert_eq!(out["card_cryptogram_valid"], false);
    // The challenge uses Key-ENC, which is unchanged.
    assert_eq!(out["card_challenge_valid"], true);
    assert_eq!(out["commands"].as_array().unwrap().len(), 5);
    assert_eq!(out["commands"][0]["response_valid"], false);
}

#[test]
fn replay_reports_wrong_challenge_and_tampered_response() {
    let mut input = cases()[0]["input"].clone();
    input["sd_aid"] = Value::from("A000000151000000");
    let r = input["commands"][0]["response"]
        .as_str()
        .unwrap()
        .to_owned();
    // Flip one bit of the R-MAC.
    let mut bytes = hex::decode(&r).unwrap();
    let idx = bytes.len() - 3;
    bytes[idx] ^= 0x01;
    input["commands"][0]["response"] = Value::from(hex::encode(bytes));
    let out = replay(&input.to_string(), false).unwrap().to_json_value();
    assert_eq!(out["card_challenge_valid"], false);
    assert_eq!(out["card_cryptogram_valid"], true);
    assert_eq!(out["commands"][0]["response_valid"], false);
}

#[test]
fn replay_without_sd_aid_leaves_challenge_unchecked() {
    let mut input = cases()[1]["input"].clone();
    input.as_object_mut().unwrap().remove("sd_aid");
    let out = replay(&input.to_string(), false).unwrap().to_json_value();
    assert_eq!(out["card_challenge_valid"], Value::Null);
}

#[test]
fn replay_malformed_input_is_a_one_line_error() {
    let base = cases()[0]["input"].clone();
    let mut variants: Vec<String> = vec![
        "".into(),
        "{".into(),
        "[]".into(),
        "{\"static_keys\": 1}".into(),
    ];
    let edits: Vec<(&str, Value)> = vec![
        ("host_challenge", Value::from("0102")),
        ("host_challenge", Value::from("zz")),
        ("initialize_update_response", Value::from("00")),
        ("security_level", Value::from("02")),
        ("security_level", Value::from("0303")),
        ("sd_aid", Value::from("0")),
    ];
    for (k, v) in edits {
        let mut i = base.clone();
        i[k] = v;
        variants.push(i.to_string());
    }
    let mut i = base.clone();
    i["static_keys"]["enc"] = Value::from("0011");
    variants.push(i.to_string());
    let mut i = base.clone();
    i["commands"][1]["apdu"] = Value::from("80");
    variants.push(i.to_string());
    let mut i = base.clone();
    i["commands"][0]["response"] = Value::from("90");
    variants.push(i.to_string());
    let mut i = base.clone();
    i["unexpected"] = Value::from(1);
    variants.push(i.to_string());
    for v in &variants {
        let e: ReplayError = replay(v, false)
            .err()
            .unwrap_or_else(|| panic!("accepted: {v}"));
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(!msg.contains("000102030405060708090A0B0C0D0E0F"), "{msg}");
    }
}

/// AES-192 and AES-256 at every security level, S16, and commands whose
/// wrapped form is extended, against an implementation written separately
/// from the specification (`tests/independent/scp03_vectors.py`, Python
/// `cryptography`): no published transcript covers them.
#[test]
fn independent_vectors_aes192_aes256_s16_and_extended_length() {
    let v: Value = serde_json::from_str(include_str!("data/scp03-independent.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    let mut key_lengths = std::collections::BTreeSet::new();
    let mut s16 = 0;
    let mut extended = 0;
    for case in cases {
        let name = case["source"].as_str().unwrap();
        let input = serde_json::to_string(&case["input"]).unwrap();
        let report = replay(&input, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_subset(name, "$", &case["expected"], &report.to_json_value());
        key_lengths.insert(case["input"]["static_keys"]["enc"].as_str().unwrap().len() / 2);
        s16 += usize::from(case["input"]["host_challenge"].as_str().unwrap().len() == 32);
        extended += case["expected"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["wrapped"].as_str().unwrap().get(8..10) == Some("00"))
            .count();
    }
    assert_eq!(key_lengths.into_iter().collect::<Vec<_>>(), [16, 24, 32]);
    assert_eq!(s16, 2);
    assert!(extended >= 3 * cases.len(), "{extended} extended commands");
}

/// The committed vectors are exactly what their generator prints (Python 3
/// with `cryptography`, installed by `scripts/setup-deps.sh`; `PYTHON`
/// names another interpreter).
#[test]
fn the_independent_vectors_are_what_their_generator_prints() {
    kf_testkit::process::assert_generator_prints(
        env!("CARGO_MANIFEST_DIR"),
        "tests/independent/scp03_vectors.py",
        "tests/data/scp03-independent.json",
    );
}
