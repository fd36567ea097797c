//! The secrets scan: whether a key turns up in any output, in any encoding.

use std::path::Path;

use base64::Engine as _;

/// Asserts that no secret appears in any output: as hex (either case),
/// Base64 (padded or not) or raw bytes.
pub fn assert_no_leak(outputs: &[(String, Vec<u8>)], secrets: &[(String, Vec<u8>)]) {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    for (name, bytes) in outputs {
        let text = String::from_utf8_lossy(bytes);
        for (what, secret) in secrets {
            let forms = [
                ("hex", hex::encode_upper(secret)),
                ("hex", hex::encode(secret)),
                ("Base64", STANDARD.encode(secret)),
                ("Base64", STANDARD_NO_PAD.encode(secret)),
            ];
            for (form, needle) in &forms {
                assert!(
                    !text.contains(needle.as_str()),
                    "{what} leaked into {name} as {form}"
                );
            }
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{what} leaked into {name} as raw bytes"
            );
        }
    }
}

/// S-ENC, S-MAC and S-RMAC of every fob in the JSON-lines audit `records`
/// whose INITIALIZE UPDATE was answered, derived under the static keys
/// `keys_of` gives for the fob's UID (hex, as in the record).
pub fn session_keys(
    records: &[u8],
    keys_of: impl Fn(&str) -> kf_crypto::StaticKeys,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(records).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let trace = record["apdu_trace"].as_array().unwrap();
        let Some(at) = trace
            .iter()
            .position(|e| e["direction"] == "TX" && e["apdu_hex"].as_str().unwrap()[2..4] == *"50")
        else {
            continue;
        };
        let command = hex::decode(trace[at]["apdu_hex"].as_str().unwrap()).unwrap();
        let response = hex::decode(trace[at + 1]["apdu_hex"].as_str().unwrap()).unwrap();
        let host_challenge = &command[5..5 + usize::from(command[4])];
        let mode = kf_scp03::Mode::from_challenge_len(host_challenge.len()).unwrap();
        let iu = kf_scp03::InitializeUpdateResponse::parse(&response[..response.len() - 2], mode)
            .unwrap();
        let fob = record["fob_uid"].as_str().unwrap();
        let session =
            kf_scp03::SessionKeys::derive(&keys_of(fob), host_challenge, &iu.card_challenge)
                .unwrap();
        // These are the fob's session keys: they reproduce its cryptogram.
        assert_eq!(
            kf_scp03::Cryptogram::Card
                .compute(&session, mode, host_challenge, &iu.card_challenge)
                .unwrap(),
            iu.card_cryptogram
        );
        for (name, key) in [
            ("S-ENC", session.s_enc()),
            ("S-MAC", session.s_mac()),
            ("S-RMAC", session.s_rmac()),
        ] {
            out.push((format!("{name} of {fob}"), key.expose_secret().to_vec()));
        }
    }
    out
}

/// Every regular file below `dir`, as bytes (sockets and the like are passed over).
pub fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else if path.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}
