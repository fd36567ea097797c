//! KLMS request bodies as the server parses them (strict JSON: duplicate keys,
//! unknown fields and wrong types refused): `POST /v1/key-packages` and the
//! identifiers it carries.
#![no_main]
use kf_klms::wire::{check_identifier, parse_strict, KeyPackageRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_strict::<KeyPackageRequest>(data) {
        let _ = check_identifier(&req.reader_id);
        let _ = check_identifier(&req.fob_uid);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = check_identifier(text);
    }
});
