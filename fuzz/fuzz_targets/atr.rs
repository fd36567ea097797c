//! ATR parsing (historical bytes, card capabilities): never panics; the
//! historical bytes are a slice of the ATR where T0 says they are.
#![no_main]
use kf_apdu::atr::{announces_extended_length, card_capabilities, historical_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(historical) = historical_bytes(data) {
        assert_eq!(historical.len(), usize::from(data[1] & 0x0F));
        let _ = card_capabilities(historical);
    }
    let _ = card_capabilities(data);
    let _ = announces_extended_length(data);
});
