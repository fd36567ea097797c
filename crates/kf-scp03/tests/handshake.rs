//! Channel opening (Amd D §6.2.1–§6.2.3, §7.1): cryptogram checks on both
//! sides, key versions, "i" versus security level, pseudo-random challenges and
//! their sequence counter, command limit, status words for the card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::sm;
use kf_scp03::{
    AwaitingCardResponse, CardConfig, CardKeySet, CardSession, HostSession,
    InitializeUpdateResponse, Mode, ParameterI, Scp03Error, SecurityLevel, SessionKeys,
    TerminationCause,
};

/// The host's refusal of the INITIALIZE UPDATE answer of a card with
/// `key_len`-byte keys, `mode` and "i" parameter `i`.
fn host_refusal(host: HostSession, key_len: usize, mode: Mode, i: u8) -> Scp03Error {
    let mut card = card(key_len, mode, i);
    let (awaiting, resp, _) = start(host, &mut card, mode);
    awaiting.process_response(&resp).unwrap_err()
}

#[test]
fn handshake_wrong_static_mac_key_gives_card_cryptogram_mismatch() {
    for mode in MODES {
        let host = HostSession::new(static_keys(16, 2)).security_level(SecurityLevel::C_MAC);
        assert_eq!(
            host_refusal(host, 16, mode, 0x00),
            Scp03Error::CardCryptogramMismatch
        );
    }
}

#[test]
fn handshake_wrong_static_enc_key_gives_card_challenge_mismatch_with_pseudo_random_i() {
    let mut keys = static_keys(16, 1);
    keys.enc = kf_crypto::AesKey::from_slice(&[0xEE; 16]).unwrap();
    let host = HostSession::new(keys).sd_aid(SD_AID.to_vec());
    assert_eq!(
        host_refusal(host, 16, Mode::S8, 0x10),
        Scp03Error::CardChallengeMismatch
    );
}

#[test]
fn handshake_wrong_sd_aid_gives_card_challenge_mismatch() {
    let host = HostSession::new(static_keys(24, 1)).sd_aid(vec![0xA0, 0, 0, 0, 0x03]);
    assert_eq!(
        host_refusal(host, 24, Mode::S16, 0x70),
        Scp03Error::CardChallengeMismatch
    );
}

/// Session keys as the card derived them, recomputed from public data.
fn card_side_keys(key_len: usize, mode: Mode, resp: &ResponseApdu) -> SessionKeys {
    let iu = InitializeUpdateResponse::parse(resp.data(), mode).unwrap();
    SessionKeys::derive(
        &static_keys(key_len, 1),
        &host_challenge(mode, 0x5A),
        &iu.card_challenge,
    )
    .unwrap()
}

#[test]
fn handshake_wrong_host_cryptogram_is_rejected_by_card() {
    for mode in MODES {
        let mut card = card(16, mode, 0x00);
        let (_, resp, auth) = start(host(16, SecurityLevel::C_MAC), &mut card, mode);
        let keys = card_side_keys(16, mode, &resp);
        // Correct C-MAC over a wrong cryptogram.
        let (ea, _) = sm::external_authenticate(
            &keys,
            mode,
            SecurityLevel::C_MAC,
            &vec![0x42; mode.byte_len()],
        )
        .unwrap();
        let err = auth.external_authenticate(&ea.to_bytes()).unwrap_err();
        assert_eq!(err, Scp03Error::HostCryptogramMismatch);
        assert_eq!(err.card_status_word(), StatusWord::new(0x69, 0x82));
    }
}

#[test]
fn handshake_tampered_external_authenticate_mac_is_rejected_by_card() {
    let mut card = card(32, Mode::S8, 0x00);
    let (awaiting, resp, auth) = start(host(32, SecurityLevel::C_MAC), &mut card, Mode::S8);
    let (ea, _) = awaiting.process_response(&resp).unwrap();
    let mut bytes = ea.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert_eq!(
        auth.external_authenticate(&bytes).unwrap_err(),
        Scp03Error::ExternalAuthenticateMacMismatch
    );
}

#[test]
fn handshake_level_needing_r_mac_rejected_by_host_when_i_lacks_it() {
    assert_eq!(
        host_refusal(host(16, SecurityLevel::C_MAC_R_MAC), 16, Mode::S8, 0x10),
        Scp03Error::SecurityLevelNotAllowed {
            level: 0x11,
            i: 0x10
        }
    );
}

#[test]
fn handshake_level_needing_r_enc_rejected_by_card_when_i_lacks_it() {
    let mut card = card(16, Mode::S8, 0x30);
    let (_, resp, auth) = start(host(16, SecurityLevel::C_MAC), &mut card, Mode::S8);
    let keys = card_side_keys(16, Mode::S8, &resp);
    let iu = InitializeUpdateResponse::parse(resp.data(), Mode::S8).unwrap();
    let crypto = kf_scp03::Cryptogram::Host
        .compute(
            &keys,
            Mode::S8,
            &host_challenge(Mode::S8, 0x5A),
            &iu.card_challenge,
        )
        .unwrap();
    let (ea, _) = sm::external_authenticate(&keys, Mode::S8, SecurityLevel::FULL, &crypto).unwrap();
    assert_eq!(
        auth.external_authenticate(&ea.to_bytes()).unwrap_err(),
        Scp03Error::SecurityLevelNotAllowed {
            level: 0x33,
            i: 0x30
        }
    );
}

#[test]
fn handshake_card_minimum_level_is_enforced() {
    let mut cfg = CardConfig::new(ParameterI::new(0x00).unwrap(), Mode::S8, SD_AID.to_vec());
    cfg.minimum_level = SecurityLevel::C_DEC_C_MAC;
    let mut card = CardSession::new(cfg, vec![CardKeySet::new(KVN, static_keys(16, 1))]);
    let (awaiting, resp, auth) = start(host(16, SecurityLevel::C_MAC), &mut card, Mode::S8);
    let (ea, _) = awaiting.process_response(&resp).unwrap();
    assert!(matches!(
        auth.external_authenticate(&ea.to_bytes()),
        Err(Scp03Error::SecurityLevelNotAllowed { level: 0x01, .. })
    ));
}

/// The host's INITIALIZE UPDATE for key version `kvn` (AES-128, C-MAC, S8)
/// and the host waiting for its answer.
fn s8_initialize_update(kvn: u8) -> (CommandApdu, AwaitingCardResponse) {
    host(16, SecurityLevel::C_MAC)
        .initialize_update(kvn, &host_challenge(Mode::S8, 1))
        .unwrap()
}

#[test]
fn handshake_unknown_key_version_gives_6a88() {
    let mut card = card(16, Mode::S8, 0x00);
    let (iu, _) = s8_initialize_update(0x31);
    let err = card.initialize_update(&iu).unwrap_err();
    assert_eq!(err, Scp03Error::UnknownKeyVersion(0x31));
    assert_eq!(err.card_status_word(), StatusWord::new(0x6A, 0x88));
}

#[test]
fn handshake_key_version_zero_selects_the_first_key_set() {
    let mut card = card(16, Mode::S8, 0x00);
    let (iu, awaiting) = s8_initialize_update(0x00);
    let (resp, _) = card.initialize_update(&iu).unwrap();
    let (_, ea) = awaiting.process_response(&resp).unwrap();
    assert_eq!(ea.card_info().key_version, KVN);
}

/// The host's refusal of a card's INITIALIZE UPDATE answer (AES-128, S8,
/// "i" 00) whose byte `index` was changed to `value`.
fn refusal_of_altered_answer(index: usize, value: u8) -> Scp03Error {
    let mut card = card(16, Mode::S8, 0x00);
    let (awaiting, resp, _) = start(host(16, SecurityLevel::C_MAC), &mut card, Mode::S8);
    let mut data = resp.data().to_vec();
    data[index] = value;
    awaiting
        .process_response(&ResponseApdu::new(data, StatusWord::SUCCESS))
        .unwrap_err()
}

#[test]
fn handshake_key_version_mismatch_is_detected_by_host() {
    assert_eq!(
        refusal_of_altered_answer(10, 0x31),
        Scp03Error::KeyVersionMismatch {
            requested: 0x30,
            returned: 0x31
        }
    );
}

#[test]
fn handshake_non_scp03_identifier_is_rejected() {
    assert_eq!(
        refusal_of_altered_answer(11, 0x02),
        Scp03Error::UnexpectedScpIdentifier(0x02)
    );
}

#[test]
fn handshake_card_error_status_is_reported() {
    let (_, awaiting) = s8_initialize_update(KVN);
    assert_eq!(
        awaiting
            .process_response(&ResponseApdu::status(StatusWord::new(0x6A, 0x88)))
            .unwrap_err(),
        Scp03Error::CardStatus(StatusWord::new(0x6A, 0x88))
    );
    let mut card = card(16, Mode::S8, 0x00);
    let (awaiting, resp, _) = start(host(16, SecurityLevel::C_MAC), &mut card, Mode::S8);
    let (_, awaiting_ea) = awaiting.process_response(&resp).unwrap();
    assert_eq!(
        awaiting_ea
            .complete(&ResponseApdu::status(StatusWord::new(0x69, 0x82)))
            .unwrap_err(),
        Scp03Error::CardStatus(StatusWord::new(0x69, 0x82))
    );
}

#[test]
fn handshake_host_challenge_length_selects_mode_or_fails() {
    for len in [0usize, 7, 9, 15, 17, 32] {
        assert_eq!(
            host(16, SecurityLevel::C_MAC)
                .initialize_update(KVN, &vec![0; len])
                .unwrap_err(),
            Scp03Error::InvalidHostChallengeLength(len)
        );
    }
    // S16 host against an S8 card.
    let mut card = card(16, Mode::S8, 0x00);
    let (iu, _) = host(16, SecurityLevel::C_MAC)
        .initialize_update(KVN, &[0; 16])
        .unwrap();
    assert_eq!(
        card.initialize_update(&iu).unwrap_err(),
        Scp03Error::InvalidHostChallengeLength(16)
    );
}

#[test]
fn handshake_initialize_update_command_layout() {
    let (iu, _) = host(16, SecurityLevel::C_MAC)
        .initialize_update(0x30, &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert_eq!(
        iu.to_bytes(),
        vec![0x80, 0x50, 0x30, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00]
    );
    let mut rng = |b: &mut [u8]| b.fill(0x11);
    let (iu, _) = host(16, SecurityLevel::C_MAC)
        .initialize_update_random(0x30, Mode::S16, &mut rng)
        .unwrap();
    assert_eq!(iu.data(), &[0x11; 16]);
}

#[test]
fn handshake_pseudo_random_sequence_counter_increments_per_session() {
    for mode in MODES {
        let mut card = card(16, mode, 0x70);
        let mut challenges = Vec::new();
        for expected in 1u8..=3 {
            let (awaiting, resp, _) = start(host(16, SecurityLevel::FULL), &mut card, mode);
            let iu = InitializeUpdateResponse::parse(resp.data(), mode).unwrap();
            assert_eq!(iu.sequence_counter, Some([0, 0, expected]));
            assert_eq!(iu.card_challenge.len(), mode.byte_len());
            challenges.push(iu.card_challenge);
            awaiting.process_response(&resp).unwrap();
        }
        assert_ne!(challenges[0], challenges[1]);
        assert_eq!(card.key_set(KVN).unwrap().sequence_counter(), 3);
        card.put_key_set(CardKeySet::new(KVN, static_keys(16, 1)));
        assert_eq!(card.key_set(KVN).unwrap().sequence_counter(), 0);
    }
}

#[test]
fn handshake_random_challenge_has_no_sequence_counter() {
    let mut card = card(16, Mode::S8, 0x20);
    let (_, resp, _) = start(host(16, SecurityLevel::C_MAC), &mut card, Mode::S8);
    assert_eq!(resp.data().len(), 29);
    let iu = InitializeUpdateResponse::parse(resp.data(), Mode::S8).unwrap();
    assert_eq!(iu.sequence_counter, None);
    assert_eq!(iu.key_diversification_data, [0x11; 10]);
}

#[test]
fn handshake_sequence_counter_exhaustion_gives_6985() {
    let cfg = CardConfig::new(ParameterI::new(0x10).unwrap(), Mode::S8, SD_AID.to_vec());
    let mut card = CardSession::new(
        cfg,
        vec![CardKeySet::new(KVN, static_keys(16, 1)).with_sequence_counter(0xFF_FFFE)],
    );
    let (iu, _) = s8_initialize_update(KVN);
    let (resp, _) = card.initialize_update(&iu).unwrap();
    assert_eq!(&resp.data()[29..], &[0xFF, 0xFF, 0xFF]);
    let err = card.initialize_update(&iu).unwrap_err();
    assert_eq!(err, Scp03Error::SequenceCounterExhausted);
    assert_eq!(err.card_status_word(), StatusWord::new(0x69, 0x85));
}

#[test]
fn handshake_malformed_initialize_update_is_rejected_by_card() {
    let mut card = card(16, Mode::S8, 0x00);
    for cmd in [
        CommandApdu::new(0x80, 0x51, 0x30, 0x00).with_data(vec![0; 8]),
        CommandApdu::new(0x80, 0x50, 0x30, 0x01).with_data(vec![0; 8]),
        CommandApdu::new(0x00, 0x50, 0x30, 0x00).with_data(vec![0; 8]),
    ] {
        assert!(matches!(
            card.initialize_update(&cmd),
            Err(Scp03Error::MalformedHandshakeCommand { .. })
        ));
    }
}

#[test]
fn channel_command_limit_terminates_both_sides() {
    let mut cfg = CardConfig::new(ParameterI::new(0x00).unwrap(), Mode::S8, SD_AID.to_vec());
    cfg.command_limit = 2;
    let mut card = CardSession::new(cfg, vec![CardKeySet::new(KVN, static_keys(16, 1))]);
    let host = host(16, SecurityLevel::C_MAC).command_limit(3);
    let (mut host, mut card) = open_with(host, &mut card, Mode::S8);
    let cmd = || CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
    for _ in 0..2 {
        let w = host.wrap(cmd()).unwrap();
        card.unwrap_command(&w.to_bytes()).unwrap();
    }
    let w = host.wrap(cmd()).unwrap();
    let limit = Scp03Error::Terminated(TerminationCause::CommandLimitReached);
    assert_eq!(card.unwrap_command(&w.to_bytes()).unwrap_err(), limit);
    assert_eq!(host.wrap(cmd()).unwrap_err(), limit);
    assert_eq!(host.wrap(cmd()).unwrap_err(), limit);
}

#[test]
fn channel_close_ends_the_session() {
    let (mut host, mut card) = open(SecurityLevel::C_MAC, 16, Mode::S8, 0x00);
    host.close();
    card.terminate();
    let closed = Scp03Error::Terminated(TerminationCause::Closed);
    assert_eq!(
        host.wrap(CommandApdu::new(0x80, 0xCA, 0, 0)).unwrap_err(),
        closed
    );
    assert_eq!(
        card.unwrap_command(&[0x84, 0xCA, 0, 0]).unwrap_err(),
        closed
    );
    assert_eq!(host.termination(), Some(TerminationCause::Closed));
}

#[test]
fn channel_plaintext_class_errors_do_not_terminate() {
    let (mut host, mut card) = open(SecurityLevel::C_MAC, 16, Mode::S8, 0x00);
    // 'DF' is a fuzz finding: it was wrapped into the invalid class 'FF'.
    for cla in [0x84u8, 0x88, 0xFF, 0x60, 0xDF] {
        assert_eq!(
            host.wrap(CommandApdu::new(cla, 0xCA, 0, 0)).unwrap_err(),
            Scp03Error::UnsupportedClass(cla)
        );
    }
    assert!(!host.is_terminated());
    round_trip(
        &mut host,
        &mut card,
        &CommandApdu::new(0x80, 0xCA, 0, 0),
        &ResponseApdu::status(StatusWord::SUCCESS),
        "after rejected plaintext",
    );
}

/// Whatever class byte the host agrees to wrap, the card unwraps to the same
/// plaintext class.
#[test]
fn every_class_the_host_wraps_the_card_unwraps() {
    let (mut host, mut card) = open(SecurityLevel::FULL, 16, Mode::S16, 0x70);
    let mut wrapped = 0;
    for cla in 0..=0xFFu8 {
        let Ok(wire) = host.wrap(CommandApdu::new(cla, 0xCA, 0, 0).with_data(vec![1, 2])) else {
            continue;
        };
        let plain = card
            .unwrap_command(&wire.to_bytes())
            .unwrap_or_else(|e| panic!("CLA {cla:02X}: {e}"));
        assert_eq!(plain.cla(), cla);
        assert_eq!(plain.data(), [1, 2]);
        wrapped += 1;
    }
    // Classes with b7 = 0 and b3-b4 = 00 (32), and the further-interindustry
    // classes without SM, 0x40-0x5F and 0xC0-0xDF, minus 'DF' (63).
    assert_eq!(wrapped, 32 + 63);
}

#[test]
fn channel_wrapping_too_long_data_is_an_error() {
    let (mut host, _) = open(SecurityLevel::C_DEC_C_MAC, 16, Mode::S8, 0x00);
    let big = CommandApdu::new(0x80, 0xE2, 0, 0).with_data(vec![0; 65_530]);
    assert_eq!(
        host.wrap(big).unwrap_err(),
        Scp03Error::CommandTooLong(65_530)
    );
    assert!(!host.is_terminated());
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let (host, card) = open(SecurityLevel::FULL, 16, Mode::S8, 0x70);
    let keys = static_keys(16, 1);
    let secret = hex::encode_upper(keys.mac.expose_secret());
    for text in [
        format!("{host:?}"),
        format!("{card:?}"),
        format!("{keys:?}"),
        format!("{:?}", HostSession::new(static_keys(16, 1))),
    ] {
        assert!(!text.to_uppercase().contains(&secret), "{text}");
        assert!(
            !text.contains(&format!("{:?}", keys.mac.expose_secret())),
            "{text}"
        );
    }
}
