//! C-APDU parsing (ISO 7816-4 §5.1 cases 1–4, short and extended): never panics;
//! what parses re-encodes to bytes that parse to the same command.
#![no_main]
use kf_apdu::CommandApdu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = CommandApdu::parse(data) {
        let again = CommandApdu::parse(&cmd.to_bytes()).expect("re-encoded command parses");
        assert_eq!(again.to_bytes(), cmd.to_bytes());
        let _ = cmd.to_bytes_short();
        let _ = cmd.to_bytes_extended();
        let _ = cmd.case();
    }
});
