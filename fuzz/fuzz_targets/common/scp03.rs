//! An open SCP03 host/card channel pair with fixed keys, for the channel targets.
#![allow(dead_code)]

use kf_crypto::{AesKey, StaticKeys};
use kf_scp03::{
    CardChannel, CardConfig, CardKeySet, CardSession, HostSession, Mode, ParameterI, SecureChannel,
    SecurityLevel,
};

const SD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
const KVN: u8 = 0x30;

fn keys(len: usize) -> StaticKeys {
    let k = |c: u8| -> AesKey {
        let bytes: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(7) ^ c).collect();
        AesKey::from_slice(&bytes).expect("key length")
    };
    StaticKeys::new(k(0x40), k(0x80), k(0xC0)).expect("key set")
}

/// The security levels a channel is opened with, picked by one input byte.
pub const LEVELS: [SecurityLevel; 4] = [
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
    SecurityLevel::C_MAC_R_MAC,
    SecurityLevel::FULL,
];

/// Opens a channel pair at `level` (S8 or S16 by `s16`, AES-128 or AES-256 by `aes256`).
pub fn open(level: SecurityLevel, s16: bool, aes256: bool) -> (SecureChannel, CardChannel) {
    let mode = if s16 { Mode::S16 } else { Mode::S8 };
    let len = if aes256 { 32 } else { 16 };
    let i = 0x70;
    let mut cfg = CardConfig::new(ParameterI::new(i).expect("i"), mode, SD_AID.to_vec());
    cfg.minimum_level = SecurityLevel::NONE;
    cfg.key_diversification_data = [0x11; 10];
    let mut next = 0u8;
    let mut card = CardSession::new(cfg, vec![CardKeySet::new(KVN, keys(len))])
        .with_challenge_source(move |b: &mut [u8]| {
            for x in b.iter_mut() {
                next = next.wrapping_add(0x3B);
                *x = next;
            }
        });
    let host = HostSession::new(keys(len))
        .security_level(level)
        .sd_aid(SD_AID.to_vec());
    let challenge: Vec<u8> = (0..mode.byte_len() as u8).collect();
    let (iu, awaiting) = host.initialize_update(KVN, &challenge).expect("IU");
    let (resp, auth) = card.initialize_update(&iu).expect("card IU");
    let (ea, awaiting_ea) = awaiting.process_response(&resp).expect("IU response");
    let (ea_resp, card_channel) = auth.external_authenticate(&ea.to_bytes()).expect("card EA");
    (awaiting_ea.complete(&ea_resp).expect("EA"), card_channel)
}

/// Splits the first byte of `data` into channel parameters.
pub fn params(first: u8) -> (SecurityLevel, bool, bool) {
    (
        LEVELS[usize::from(first & 3)],
        first & 4 != 0,
        first & 8 != 0,
    )
}

/// A channel target's input: the first byte picks the channel parameters
/// (bits 0-3) and whether the rest goes in as raw hostile bytes (bit 4
/// clear) or as a well-formed message sent through the channel pair.
pub struct Input<'a> {
    pub host: SecureChannel,
    pub card: CardChannel,
    pub level: SecurityLevel,
    pub raw: bool,
    pub rest: &'a [u8],
}

/// Opens the channel pair that `data`'s first byte asks for; `None` when empty.
pub fn input(data: &[u8]) -> Option<Input<'_>> {
    let (&first, rest) = data.split_first()?;
    let (level, s16, aes256) = params(first);
    let (host, card) = open(level, s16, aes256);
    Some(Input {
        host,
        card,
        level,
        raw: first & 0x10 == 0,
        rest,
    })
}
