//! The station's parser of a KLMS key-package response (`POST /v1/key-packages`):
//! JSON, hex keys, KVN, DGIs and expiry, checked against the requested UID.
//! Errors never repeat a key value from the body.
#![no_main]
use kf_source::klms::KeyPackage;
use libfuzzer_sys::fuzz_target;

const UID: [u8; 10] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99];

fuzz_target!(|data: &[u8]| {
    if let Err(e) = KeyPackage::from_json(data, &UID) {
        let _ = e.to_string();
    }
});
