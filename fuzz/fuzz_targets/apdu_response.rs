//! R-APDU parsing (data + SW1 SW2): never panics; round-trips exactly.
#![no_main]
use kf_apdu::ResponseApdu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = ResponseApdu::parse(data) {
        assert_eq!(resp.to_bytes(), data);
    }
});
