//! The pysim transcripts (`tests/data/scp03-replay-pysim-aes128.json`) driven
//! through the host state machine itself (HostSession → SecureChannel), not the
//! replay calculator: EXTERNAL AUTHENTICATE, every wrapped command, and every
//! response must match the published bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_crypto::StaticKeys;
use kf_scp03::{HostSession, SecurityLevel};
use serde_json::Value;

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn host_session_matches_pysim_vectors_levels_11_03_33() {
    let v: Value =
        serde_json::from_str(include_str!("data/scp03-replay-pysim-aes128.json")).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let name = case["source"].as_str().unwrap();
        let input = &case["input"];
        let expected = &case["expected"];
        let k = &input["static_keys"];
        let keys = StaticKeys::from_hex(
            k["enc"].as_str().unwrap(),
            k["mac"].as_str().unwrap(),
            k["dek"].as_str().unwrap(),
        )
        .unwrap();
        let level = SecurityLevel::new(h(&input["security_level"])[0]).unwrap();
        let host = HostSession::new(keys)
            .security_level(level)
            .sd_aid(h(&input["sd_aid"]));
        let (iu, awaiting) = host
            .initialize_update(0x30, &h(&input["host_challenge"]))
            .unwrap();
        assert_eq!(
            hex::encode_upper(iu.to_bytes()).len(),
            2 * (5 + 8 + 1),
            "{name}"
        );
        let iu_resp =
            ResponseApdu::new(h(&input["initialize_update_response"]), StatusWord::SUCCESS);
        let (ea, awaiting_ea) = awaiting
            .process_response(&iu_resp)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            hex::encode_upper(ea.to_bytes()),
            expected["external_authenticate"].as_str().unwrap(),
            "{name}: EXTERNAL AUTHENTICATE"
        );
        let mut channel = awaiting_ea
            .complete(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();
        for (n, (c, e)) in input["commands"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["commands"].as_array().unwrap())
            .enumerate()
        {
            let plain = CommandApdu::parse(&h(&c["apdu"])).unwrap();
            let wrapped = channel.wrap(plain).unwrap();
            assert_eq!(
                hex::encode_upper(wrapped.to_bytes()),
                e["wrapped"].as_str().unwrap(),
                "{name}: command {n} wrapped"
            );
            if let Some(r) = c.get("response") {
                let plain = channel
                    .unwrap_bytes(&h(r))
                    .unwrap_or_else(|err| panic!("{name}: {n}: {err}"));
                assert_eq!(
                    hex::encode_upper(plain.to_bytes()),
                    e["response_plain"].as_str().unwrap(),
                    "{name}: command {n} response"
                );
            }
        }
        assert!(!channel.is_terminated(), "{name}");
    }
}
