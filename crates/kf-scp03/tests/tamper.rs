//! Tamper tests (fail closed, Amd D §5.6): flipping any single bit of a
//! wrapped command is detected by the card, and flipping any single bit of a
//! protected response is detected by the host; both terminate their channel,
//! erase the session keys, and return the same error on every later call.
//!
//! Bits outside the integrity protection by design of Amd D §6.2.4 are
//! excluded: the logical channel bits of CLA (b1–b2) and the Le field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::{Mode, Scp03Error, SecurityLevel, TerminationCause};

const PROTECTED_LEVELS: [u8; 5] = [0x01, 0x03, 0x11, 0x13, 0x33];

fn i_for(level: SecurityLevel) -> u8 {
    if level.r_enc() {
        0x70
    } else if level.r_mac() {
        0x30
    } else {
        0x10
    }
}

/// A fresh channel pair after one good GET DATA exchange, so that the MAC
/// chaining value is not zero.
fn open_after_one_command(
    level: SecurityLevel,
    key_len: usize,
    mode: Mode,
) -> (kf_scp03::SecureChannel, kf_scp03::CardChannel) {
    let (mut host, mut card) = open(level, key_len, mode, i_for(level));
    let first = host
        .wrap(CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256))
        .unwrap();
    card.unwrap_command(&first.to_bytes()).unwrap();
    (host, card)
}

/// Names a tampering case in assertion messages: the channel, then `change`.
fn case(level: SecurityLevel, key_len: usize, mode: Mode, change: String) -> String {
    format!(
        "level {:02X} AES-{} {mode:?} {change}",
        level.value(),
        key_len * 8
    )
}

/// Byte ranges of `wire` covered by the C-MAC (everything but Le and CLA's channel bits).
fn protected_bits(wire: &[u8], command: &CommandApdu) -> Vec<(usize, u8)> {
    let le_len = match (command.le(), wire.len() > 5 && wire[4] == 0) {
        (None, _) => 0,
        (Some(_), false) => 1,
        (Some(_), true) => 2,
    };
    let mut out = Vec::new();
    for byte in 0..wire.len() - le_len {
        for bit in 0..8u8 {
            let mask = 1u8 << bit;
            if byte == 0 && mask & 0x03 != 0 {
                continue;
            }
            out.push((byte, mask));
        }
    }
    out
}

fn tamper_commands_for(level: u8, key_len: usize, mode: Mode) {
    let level = SecurityLevel::new(level).unwrap();
    let commands = [
        CommandApdu::new(0x80, 0xF2, 0x80, 0x02),
        CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256),
        CommandApdu::new(0x80, 0xE2, 0x90, 0x00)
            .with_data(vec![0xAB; 20])
            .with_le(256),
        CommandApdu::new(0x80, 0xE2, 0x90, 0x00).with_data(vec![0xCD; 250]),
    ];
    for command in &commands {
        // Wrap once with a fresh pair to learn the wire bytes, then replay each
        // single-bit flip on a fresh pair (same deterministic challenges).
        let (mut host, _) = open_after_one_command(level, key_len, mode);
        let wire = host.wrap(command.clone()).unwrap().to_bytes();
        let bits = protected_bits(&wire, command);
        // Extended encodings make exhaustive flipping slow; sample every 7th bit there.
        let step = if wire.len() > 64 { 7 } else { 1 };
        for &(byte, mask) in bits.iter().step_by(step) {
            let (mut host, mut card) = open_after_one_command(level, key_len, mode);
            let good = host.wrap(command.clone()).unwrap().to_bytes();
            assert_eq!(good, wire);
            let mut bad = good.clone();
            bad[byte] ^= mask;
            let what = case(level, key_len, mode, format!("byte {byte} mask {mask:02X}"));
            let err = card.unwrap_command(&bad).expect_err(&what);
            assert!(matches!(err, Scp03Error::Terminated(_)), "{what}: {err}");
            assert!(card.is_terminated(), "{what}");
            // Every later call returns the same error, even the genuine command.
            assert_eq!(card.unwrap_command(&good).unwrap_err(), err, "{what}");
            assert_eq!(
                card.wrap_response(ResponseApdu::status(StatusWord::SUCCESS))
                    .unwrap_err(),
                err,
                "{what}"
            );
            assert_eq!(err.card_status_word(), StatusWord::new(0x69, 0x82));
        }
    }
}

fn tamper_responses_for(level: u8, key_len: usize, mode: Mode) {
    let level = SecurityLevel::new(level).unwrap();
    let responses = [
        ResponseApdu::new(vec![], StatusWord::SUCCESS),
        ResponseApdu::new(vec![0x5A; 21], StatusWord::SUCCESS),
        ResponseApdu::new(vec![0x01, 0x02], StatusWord::new(0x63, 0xC2)),
    ];
    for response in &responses {
        let (_, mut card) = open_after_one_command(level, key_len, mode);
        let wire = card.wrap_response(response.clone()).unwrap().to_bytes();
        for byte in 0..wire.len() {
            for bit in 0..8u8 {
                let (mut host, mut card) = open_after_one_command(level, key_len, mode);
                let good = card.wrap_response(response.clone()).unwrap().to_bytes();
                assert_eq!(good, wire);
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let what = case(
                    level,
                    key_len,
                    mode,
                    format!("response byte {byte} bit {bit}"),
                );
                let err = host.unwrap_bytes(&bad).expect_err(&what);
                assert!(matches!(err, Scp03Error::Terminated(_)), "{what}: {err}");
                assert_eq!(host.unwrap_bytes(&good).unwrap_err(), err, "{what}");
                assert_eq!(
                    host.wrap(CommandApdu::new(0x80, 0xCA, 0x00, 0x66))
                        .unwrap_err(),
                    err,
                    "{what}"
                );
            }
        }
    }
}

/// Every protected level with AES-128 and S8 and with AES-256 and S16;
/// level 33 with AES-192 and S8.
#[test]
fn tamper_command_any_bit_detected_by_card() {
    for (levels, key_len, mode) in [
        (&PROTECTED_LEVELS[..], 16, Mode::S8),
        (&PROTECTED_LEVELS[..], 32, Mode::S16),
        (&[0x33][..], 24, Mode::S8),
    ] {
        for &level in levels {
            tamper_commands_for(level, key_len, mode);
        }
    }
}

/// The R-MAC levels with AES-128 and S8 and with AES-256 and S16; level 33
/// with AES-192 and S16.
#[test]
fn tamper_response_any_bit_detected_by_host() {
    for (levels, key_len, mode) in [
        (&[0x11, 0x13, 0x33][..], 16, Mode::S8),
        (&[0x11, 0x13, 0x33][..], 32, Mode::S16),
        (&[0x33][..], 24, Mode::S16),
    ] {
        for &level in levels {
            tamper_responses_for(level, key_len, mode);
        }
    }
}

#[test]
fn tamper_dropped_command_breaks_the_chain() {
    let (mut host, mut card) = open(SecurityLevel::C_MAC, 16, Mode::S8, 0x00);
    let _lost = host.wrap(CommandApdu::new(0x80, 0xCA, 0x00, 0x66)).unwrap();
    let next = host.wrap(CommandApdu::new(0x80, 0xCA, 0x00, 0x67)).unwrap();
    assert_eq!(
        card.unwrap_command(&next.to_bytes()).unwrap_err(),
        Scp03Error::Terminated(TerminationCause::CMacMismatch)
    );
}

#[test]
fn tamper_replayed_command_is_rejected() {
    let (mut host, mut card) = open(SecurityLevel::C_DEC_C_MAC, 16, Mode::S8, 0x00);
    let c = host
        .wrap(CommandApdu::new(0x80, 0xE2, 0, 0).with_data(vec![1, 2, 3]))
        .unwrap();
    card.unwrap_command(&c.to_bytes()).unwrap();
    assert!(matches!(
        card.unwrap_command(&c.to_bytes()),
        Err(Scp03Error::Terminated(TerminationCause::CMacMismatch))
    ));
}

#[test]
fn tamper_reordered_commands_are_rejected() {
    let (mut host, mut card) = open(SecurityLevel::FULL, 16, Mode::S8, 0x70);
    let a = host
        .wrap(CommandApdu::new(0x80, 0xE2, 0, 0).with_data(vec![1]))
        .unwrap();
    let b = host
        .wrap(CommandApdu::new(0x80, 0xE2, 0, 0).with_data(vec![2]))
        .unwrap();
    let mismatch = Err(Scp03Error::Terminated(TerminationCause::CMacMismatch));
    assert_eq!(card.unwrap_command(&b.to_bytes()), mismatch);
    // The channel stays terminated: the right command no longer gets through.
    assert_eq!(card.unwrap_command(&a.to_bytes()), mismatch);
}

#[test]
fn tamper_unprotected_command_at_mac_level_terminates() {
    let (_, mut card) = open(SecurityLevel::C_MAC, 16, Mode::S8, 0x00);
    let plain = CommandApdu::new(0x80, 0xCA, 0x00, 0x66)
        .with_le(256)
        .to_bytes();
    assert_eq!(
        card.unwrap_command(&plain).unwrap_err(),
        Scp03Error::Terminated(TerminationCause::MissingSecureMessaging)
    );
}

#[test]
fn error_status_word_alone_passes_through_without_terminating() {
    let (mut host, mut card) = open(SecurityLevel::FULL, 16, Mode::S8, 0x70);
    let c = host
        .wrap(CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256))
        .unwrap();
    card.unwrap_command(&c.to_bytes()).unwrap();
    let r = card
        .wrap_response(ResponseApdu::new(
            vec![1, 2, 3],
            StatusWord::new(0x6A, 0x88),
        ))
        .unwrap();
    assert_eq!(
        r.to_bytes(),
        vec![0x6A, 0x88],
        "error SW carries no data and no R-MAC"
    );
    assert_eq!(
        host.unwrap(r).unwrap(),
        ResponseApdu::status(StatusWord::new(0x6A, 0x88))
    );
    assert!(!host.is_terminated());
    round_trip(
        &mut host,
        &mut card,
        &CommandApdu::new(0x80, 0xE2, 0, 0).with_data(vec![9; 9]),
        &ResponseApdu::new(vec![7; 7], StatusWord::SUCCESS),
        "after error SW",
    );
}
