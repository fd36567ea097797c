//! Host↔card loopback across the coverage matrix: every security level of
//! Amd D Table 7-3 × AES-128/192/256 × S8/S16, each over every "i" value that
//! allows the level (Table 5-1), with commands of cases 1–4, short and
//! extended, and responses with success, warning and error status words.
//! Test names read `loopback_l<level>_aes<bits>_<mode>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::{Mode, ParameterI, SecurityLevel};
use proptest::prelude::*;

fn run_matrix_cell(level: u8, key_len: usize, mode: Mode) {
    let level = SecurityLevel::new(level).unwrap();
    let is = allowed_i(level);
    assert!(!is.is_empty());
    for i in is {
        let what = format!(
            "level {:02X} AES-{} {mode:?} i={i:02X}",
            level.value(),
            key_len * 8
        );
        let (mut host, mut card) = open(level, key_len, mode, i);
        let commands = sample_commands();
        let responses = sample_responses();
        for (n, command) in commands.iter().enumerate() {
            let response = &responses[n % responses.len()];
            let (wire, resp_wire) = round_trip(
                &mut host,
                &mut card,
                command,
                response,
                &format!("{what} cmd {n}"),
            );
            if level.c_mac() {
                // Lc includes the MAC; the padding adds 1..=16 bytes when encrypting.
                let pad = if level.c_dec() && !command.data().is_empty() {
                    16 - command.data().len() % 16
                } else {
                    0
                };
                let wrapped = CommandApdu::parse(&wire).unwrap();
                assert_eq!(
                    wrapped.data().len(),
                    command.data().len() + pad + mode.byte_len(),
                    "{what} cmd {n}: Lc"
                );
                assert_eq!(
                    wrapped.cla() & 0x04 | wrapped.cla() & 0x20,
                    if command.cla() & 0x40 != 0 {
                        0x20
                    } else {
                        0x04
                    },
                    "{what}: SM bit"
                );
            } else {
                assert_eq!(wire, command.to_bytes(), "{what}: level 00 is plaintext");
            }
            if level.r_enc() && !response.data().is_empty() && response.sw().is_success() {
                assert_ne!(
                    &resp_wire[..response.data().len()],
                    response.data(),
                    "{what}: R-ENC"
                );
            }
        }
        assert_eq!(host.commands_sent(), commands.len() as u64);
        assert_eq!(card.commands_received(), commands.len() as u64);
        assert!(!host.is_terminated() && !card.is_terminated(), "{what}");
    }
}

macro_rules! matrix {
    ($($name:ident: $level:expr, $key:expr, $mode:expr;)*) => {
        $(#[test] fn $name() { run_matrix_cell($level, $key, $mode); })*
    };
}

matrix! {
    loopback_l00_aes128_s8: 0x00, 16, Mode::S8;
    loopback_l00_aes192_s8: 0x00, 24, Mode::S8;
    loopback_l00_aes256_s8: 0x00, 32, Mode::S8;
    loopback_l00_aes128_s16: 0x00, 16, Mode::S16;
    loopback_l00_aes192_s16: 0x00, 24, Mode::S16;
    loopback_l00_aes256_s16: 0x00, 32, Mode::S16;
    loopback_l01_aes128_s8: 0x01, 16, Mode::S8;
    loopback_l01_aes192_s8: 0x01, 24, Mode::S8;
    loopback_l01_aes256_s8: 0x01, 32, Mode::S8;
    loopback_l01_aes128_s16: 0x01, 16, Mode::S16;
    loopback_l01_aes192_s16: 0x01, 24, Mode::S16;
    loopback_l01_aes256_s16: 0x01, 32, Mode::S16;
    loopback_l03_aes128_s8: 0x03, 16, Mode::S8;
    loopback_l03_aes192_s8: 0x03, 24, Mode::S8;
    loopback_l03_aes256_s8: 0x03, 32, Mode::S8;
    loopback_l03_aes128_s16: 0x03, 16, Mode::S16;
    loopback_l03_aes192_s16: 0x03, 24, Mode::S16;
    loopback_l03_aes256_s16: 0x03, 32, Mode::S16;
    loopback_l11_aes128_s8: 0x11, 16, Mode::S8;
    loopback_l11_aes192_s8: 0x11, 24, Mode::S8;
    loopback_l11_aes256_s8: 0x11, 32, Mode::S8;
    loopback_l11_aes128_s16: 0x11, 16, Mode::S16;
    loopback_l11_aes192_s16: 0x11, 24, Mode::S16;
    loopback_l11_aes256_s16: 0x11, 32, Mode::S16;
    loopback_l13_aes128_s8: 0x13, 16, Mode::S8;
    loopback_l13_aes192_s8: 0x13, 24, Mode::S8;
    loopback_l13_aes256_s8: 0x13, 32, Mode::S8;
    loopback_l13_aes128_s16: 0x13, 16, Mode::S16;
    loopback_l13_aes192_s16: 0x13, 24, Mode::S16;
    loopback_l13_aes256_s16: 0x13, 32, Mode::S16;
    loopback_l33_aes128_s8: 0x33, 16, Mode::S8;
    loopback_l33_aes192_s8: 0x33, 24, Mode::S8;
    loopback_l33_aes256_s8: 0x33, 32, Mode::S8;
    loopback_l33_aes128_s16: 0x33, 16, Mode::S16;
    loopback_l33_aes192_s16: 0x33, 24, Mode::S16;
    loopback_l33_aes256_s16: 0x33, 32, Mode::S16;
}

fn arb_command() -> impl Strategy<Value = CommandApdu> {
    (
        prop::sample::select(vec![0x80u8, 0x00, 0x81, 0x83, 0x40, 0x4F, 0xC0]),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..=255),
        prop_oneof![
            Just(None),
            (1usize..=256).prop_map(Some),
            (257usize..=65536).prop_map(Some)
        ],
    )
        .prop_map(|(cla, ins, p1, p2, data, le)| {
            let mut c = CommandApdu::new(cla, ins, p1, p2).with_data(data);
            if let Some(le) = le {
                c = c.with_le(le);
            }
            c
        })
}

fn arb_response() -> impl Strategy<Value = ResponseApdu> {
    (
        prop::collection::vec(any::<u8>(), 0..=256),
        prop::sample::select(vec![0x9000u16, 0x6310, 0x6283, 0x6A82, 0x6982, 0x6D00]),
    )
        .prop_map(|(data, sw)| {
            let sw = StatusWord::from_u16(sw);
            if sw.is_success() || sw.is_warning() {
                ResponseApdu::new(data, sw)
            } else {
                ResponseApdu::status(sw)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random levels × key sizes × modes × allowed i, random APDUs of cases 1–4
    /// with 0..=255 data bytes (extended encodings included).
    #[test]
    fn loopback_proptest_random_apdus_all_parameters(
        level_idx in 0usize..6,
        key_len in prop::sample::select(KEY_LENS.to_vec()),
        s16 in any::<bool>(),
        i_pick in any::<prop::sample::Index>(),
        exchanges in prop::collection::vec((arb_command(), arb_response()), 1..6),
    ) {
        let level = SecurityLevel::ALL[level_idx];
        let mode = if s16 { Mode::S16 } else { Mode::S8 };
        let is = allowed_i(level);
        let i = is[i_pick.index(is.len())];
        let (mut host, mut card) = open(level, key_len, mode, i);
        for (n, (c, r)) in exchanges.iter().enumerate() {
            round_trip(&mut host, &mut card, c, r, &format!("exchange {n}"));
        }
        prop_assert!(ParameterI::new(i).unwrap().allows(level));
    }
}
