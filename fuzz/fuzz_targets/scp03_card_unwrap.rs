//! Card side of SCP03 (GP Amd D §6.2.4/§6.2.6): C-MAC checking and C-DEC
//! decryption of a command from the host. Raw hostile bytes are refused
//! without panicking; a command the host wrapped unwraps to the plaintext.
#![no_main]
use kf_apdu::CommandApdu;
use libfuzzer_sys::fuzz_target;

#[path = "common/scp03.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(mut io) = common::input(data) else {
        return;
    };
    if io.raw {
        let _ = io.card.unwrap_command(io.rest);
        let _ = io.card.unwrap_command(io.rest);
    } else if let Ok(cmd) = CommandApdu::parse(io.rest) {
        if let Ok(wrapped) = io.host.wrap(cmd.clone()) {
            let plain = io
                .card
                .unwrap_command(&wrapped.to_bytes())
                .expect("card unwraps the host's command");
            assert_eq!(plain.data(), cmd.data());
            assert_eq!(plain.ins(), cmd.ins());
        }
    }
});
