//! Shared helpers for the host↔card loopback tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_crypto::StaticKeys;
use kf_scp03::{
    AwaitingCardResponse, CardAwaitingAuthentication, CardChannel, CardConfig, CardKeySet,
    CardSession, HostSession, Mode, ParameterI, SecureChannel, SecurityLevel,
};

pub const SD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
pub const KVN: u8 = 0x30;
pub const KEY_LENS: [usize; 3] = [16, 24, 32];
pub const MODES: [Mode; 2] = [Mode::S8, Mode::S16];

/// A deterministic static key set of `len`-byte keys.
pub fn static_keys(len: usize, seed: u8) -> StaticKeys {
    let k = |c: u8| {
        (0..len)
            .map(|i| seed.wrapping_mul(31).wrapping_add(c).wrapping_add(i as u8))
            .collect::<Vec<u8>>()
    };
    StaticKeys::new(
        kf_crypto::AesKey::from_slice(&k(0x40)).unwrap(),
        kf_crypto::AesKey::from_slice(&k(0x80)).unwrap(),
        kf_crypto::AesKey::from_slice(&k(0xC0)).unwrap(),
    )
    .unwrap()
}

pub fn host_challenge(mode: Mode, seed: u8) -> Vec<u8> {
    (0..mode.byte_len() as u8).map(|i| i ^ seed).collect()
}

pub fn card(key_len: usize, mode: Mode, i: u8) -> CardSession {
    let mut cfg = CardConfig::new(ParameterI::new(i).unwrap(), mode, SD_AID.to_vec());
    cfg.minimum_level = SecurityLevel::NONE;
    cfg.key_diversification_data = [0x11; 10];
    let mut next = 0u8;
    CardSession::new(cfg, vec![CardKeySet::new(KVN, static_keys(key_len, 1))])
        .with_challenge_source(move |b: &mut [u8]| {
            for x in b.iter_mut() {
                next = next.wrapping_add(0x3B);
                *x = next;
            }
        })
}

pub fn host(key_len: usize, level: SecurityLevel) -> HostSession {
    HostSession::new(static_keys(key_len, 1))
        .security_level(level)
        .sd_aid(SD_AID.to_vec())
}

/// Runs INITIALIZE UPDATE on both sides.
pub fn start(
    host: HostSession,
    card: &mut CardSession,
    mode: Mode,
) -> (
    AwaitingCardResponse,
    ResponseApdu,
    CardAwaitingAuthentication,
) {
    let (iu, awaiting) = host
        .initialize_update(KVN, &host_challenge(mode, 0x5A))
        .unwrap();
    let (resp, auth) = card.initialize_update(&iu).unwrap();
    (awaiting, resp, auth)
}

/// Opens a channel pair.
pub fn open_with(
    host: HostSession,
    card: &mut CardSession,
    mode: Mode,
) -> (SecureChannel, CardChannel) {
    let (awaiting, resp, auth) = start(host, card, mode);
    let (ea, awaiting_ea) = awaiting.process_response(&resp).unwrap();
    let (ea_resp, card_channel) = auth.external_authenticate(&ea.to_bytes()).unwrap();
    assert_eq!(ea_resp.sw(), StatusWord::SUCCESS);
    (awaiting_ea.complete(&ea_resp).unwrap(), card_channel)
}

pub fn open(
    level: SecurityLevel,
    key_len: usize,
    mode: Mode,
    i: u8,
) -> (SecureChannel, CardChannel) {
    let mut c = card(key_len, mode, i);
    open_with(host(key_len, level), &mut c, mode)
}

/// Every (level, i) pair that Amd D allows.
pub fn allowed_i(level: SecurityLevel) -> Vec<u8> {
    ParameterI::ALL
        .iter()
        .copied()
        .filter(|&i| ParameterI::new(i).unwrap().allows(level))
        .collect()
}

/// Commands of cases 1–4, short and extended, several class bytes.
pub fn sample_commands() -> Vec<CommandApdu> {
    let mut v = vec![
        CommandApdu::new(0x80, 0xF2, 0x80, 0x02),
        CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256),
        CommandApdu::new(0x00, 0xB0, 0x00, 0x00).with_le(1),
        CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(65536),
        CommandApdu::new(0x81, 0xE2, 0x90, 0x00).with_data(vec![0x31; 5]),
        CommandApdu::new(0x43, 0xE2, 0x90, 0x00)
            .with_data(vec![0x32; 7])
            .with_le(4),
        CommandApdu::new(0x80, 0xE2, 0x90, 0x00)
            .with_data(vec![0x33; 16])
            .with_le(256),
        CommandApdu::new(0x80, 0xE2, 0x90, 0x00)
            .with_data(vec![0x34; 100])
            .with_le(300),
        CommandApdu::new(0x80, 0xE2, 0x90, 0x00)
            .with_data(vec![0x35; 255])
            .with_le(65536),
    ];
    for len in [1usize, 15, 16, 17, 200, 223, 224, 239, 240, 247, 248, 255] {
        v.push(CommandApdu::new(0x80, 0xE2, 0x80, 0x01).with_data(vec![len as u8; len]));
    }
    v.push(
        CommandApdu::new(0x80, 0xD8, 0x00, 0x81)
            .with_data(vec![0x77; 48])
            .sensitive(),
    );
    v
}

/// Responses: empty, short, block-aligned and long data; success, warning, error SWs.
pub fn sample_responses() -> Vec<ResponseApdu> {
    let mut v = Vec::new();
    for len in [0usize, 1, 15, 16, 17, 255, 256] {
        v.push(ResponseApdu::new(vec![len as u8; len], StatusWord::SUCCESS));
    }
    v.push(ResponseApdu::new(
        vec![1, 2, 3],
        StatusWord::new(0x63, 0x10),
    ));
    v.push(ResponseApdu::new(vec![], StatusWord::new(0x62, 0x83)));
    v.push(ResponseApdu::status(StatusWord::new(0x6A, 0x82)));
    v
}

/// What the host should get back for `response` at `level`.
pub fn expected_response(level: SecurityLevel, response: &ResponseApdu) -> ResponseApdu {
    let sw = response.sw();
    if level.r_mac() && !(sw.is_success() || sw.is_warning()) {
        ResponseApdu::status(sw)
    } else {
        response.clone()
    }
}

/// Sends `command` through both channels and checks the round trip; returns the wire bytes.
pub fn round_trip(
    host: &mut SecureChannel,
    card: &mut CardChannel,
    command: &CommandApdu,
    response: &ResponseApdu,
    what: &str,
) -> (Vec<u8>, Vec<u8>) {
    let level = host.security_level();
    let wrapped = host
        .wrap(command.clone())
        .unwrap_or_else(|e| panic!("{what}: wrap: {e}"));
    let wire = wrapped.to_bytes();
    if level.c_mac() {
        assert_eq!(wrapped.le(), command.le(), "{what}: Le kept");
        assert_eq!(wrapped.ins(), command.ins(), "{what}");
    }
    let plain = card
        .unwrap_command(&wire)
        .unwrap_or_else(|e| panic!("{what}: card unwrap: {e}"));
    // The sensitivity flag is local to the host; compare what is on the wire.
    assert_eq!(
        plain.to_bytes(),
        command.to_bytes(),
        "{what}: card sees the plaintext"
    );
    let protected = card.wrap_response(response.clone()).unwrap();
    let resp_wire = protected.to_bytes();
    let opened = host
        .unwrap_bytes(&resp_wire)
        .unwrap_or_else(|e| panic!("{what}: host unwrap: {e}"));
    assert_eq!(
        opened,
        expected_response(level, response),
        "{what}: response"
    );
    (wire, resp_wire)
}
