//! Host side of SCP03 (GP Amd D §6.2.5/§6.2.7): R-MAC checking and R-ENC
//! decryption of a response from the card. Raw hostile bytes must be refused
//! without panicking; a response the card wrapped must unwrap to what it sent.
#![no_main]
use kf_apdu::ResponseApdu;
use libfuzzer_sys::fuzz_target;

#[path = "common/scp03.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(common::Input {
        mut host,
        mut card,
        level,
        raw,
        rest,
    }) = common::input(data)
    else {
        return;
    };
    if raw {
        let _ = host.unwrap_bytes(rest);
        // A second response after a refused one is refused too.
        let _ = host.unwrap_bytes(rest);
    } else if let Ok(resp) = ResponseApdu::parse(rest) {
        // The card wraps only after a command; send one through first.
        let cmd = kf_apdu::CommandApdu::parse(&[0x80, 0xCA, 0x00, 0x66, 0x00]).expect("GET DATA");
        let wire = host.wrap(cmd).expect("wrap").to_bytes();
        card.unwrap_command(&wire)
            .expect("card unwraps the host's command");
        if let Ok(protected) = card.wrap_response(resp.clone()) {
            let opened = host
                .unwrap_bytes(&protected.to_bytes())
                .expect("host unwraps the card's response");
            assert_eq!(opened.sw(), resp.sw());
            // An error SW travels alone, without data or R-MAC (Amd D §6.2.5).
            if level.r_mac() && !kf_scp03::sm::sw_is_protected(resp.sw()) {
                assert!(opened.data().is_empty());
            } else {
                assert_eq!(opened.data(), resp.data());
            }
        }
    }
});
