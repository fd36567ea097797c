//! Deterministic SCP03 sessions and APDUs for the benchmarks.
//!
//! Every session uses the same public benchmark keys (AES-128, not secrets of
//! any device), host challenge and card challenge, so two sessions opened
//! with [`open_pair`] are bit-for-bit identical (GPC Amd D §6.2.1: the session
//! keys depend only on the static keys and the two challenges). The card
//! announces "i" = '60' (R-MAC and R-ENCRYPTION, random card challenge, here
//! drawn from a fixed source), S8 mode, no sequence counter in the
//! INITIALIZE UPDATE response: the layout yubikit parses.

use kf_apdu::{gp, CommandApdu, ResponseApdu, StatusWord};
use kf_crypto::StaticKeys;
use kf_scp03::{
    data_bytes_per_apdu, CardChannel, CardConfig, CardKeySet, CardSession, HostSession, LengthForm,
    Mode, ParameterI, SecureChannel, SecurityLevel,
};

use crate::BenchError;

/// Static Key-ENC of the benchmark key set (hex, AES-128).
pub const STATIC_ENC_HEX: &str = "404142434445464748494A4B4C4D4E4F";
/// Static Key-MAC of the benchmark key set (hex, AES-128).
pub const STATIC_MAC_HEX: &str = "505152535455565758595A5B5C5D5E5F";
/// Static Key-DEK of the benchmark key set (hex, AES-128).
pub const STATIC_DEK_HEX: &str = "606162636465666768696A6B6C6D6E6F";
/// Key version number of the benchmark key set.
pub const KEY_VERSION: u8 = 0x30;
/// Host challenge of every benchmark session (S8).
pub const HOST_CHALLENGE: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
/// Card challenge of every benchmark session (S8).
pub const CARD_CHALLENGE: [u8; 8] = [0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8];
/// The "i" parameter the benchmark card announces: R-MAC and R-ENC supported.
pub const PARAMETER_I: u8 = 0x60;

/// Command payload sizes measured: small, medium and the largest STORE DATA
/// payload that still fits a short APDU at level '33' in S8 mode after
/// padding and C-MAC (239 bytes).
pub const PAYLOAD_SIZES: [usize; 3] = [
    16,
    64,
    data_bytes_per_apdu(SecurityLevel::FULL, Mode::S8, LengthForm::Short),
];

/// Security levels measured: '01' (C-MAC), '03' (C-DEC + C-MAC), '33'
/// (C-DEC, C-MAC, R-MAC, R-ENC) (Amd D Table 7-3).
pub const LEVELS: [SecurityLevel; 3] = [
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
    SecurityLevel::FULL,
];

/// Byte of every command payload.
pub const COMMAND_FILL: u8 = 0x5A;
/// Byte of every response payload.
pub const RESPONSE_FILL: u8 = 0xA5;

/// The benchmark static keys.
pub fn static_keys() -> Result<StaticKeys, BenchError> {
    Ok(StaticKeys::from_hex(
        STATIC_ENC_HEX,
        STATIC_MAC_HEX,
        STATIC_DEK_HEX,
    )?)
}

/// A card holding the benchmark key set, with a fixed card challenge and no
/// command limit (benchmarks send millions of commands in one session).
pub fn card_session() -> Result<CardSession, BenchError> {
    let config = CardConfig {
        command_limit: u64::MAX,
        minimum_level: SecurityLevel::C_MAC,
        ..CardConfig::new(
            ParameterI::new(PARAMETER_I)?,
            Mode::S8,
            kf_profile::ISD_AID.to_vec(),
        )
    };
    Ok(
        CardSession::new(config, vec![CardKeySet::new(KEY_VERSION, static_keys()?)])
            .with_challenge_source(|buf: &mut [u8]| {
                for (b, c) in buf.iter_mut().zip(CARD_CHALLENGE.iter().cycle()) {
                    *b = *c;
                }
            }),
    )
}

/// A host requesting `level`, with no command limit.
pub fn host_session(level: SecurityLevel) -> Result<HostSession, BenchError> {
    Ok(HostSession::new(static_keys()?)
        .security_level(level)
        .command_limit(u64::MAX))
}

/// Runs INITIALIZE UPDATE and EXTERNAL AUTHENTICATE between `host` and `card`
/// in memory (GPC Amd D §6.2, §7.1.1, §7.1.2).
pub fn handshake(
    host: HostSession,
    card: &mut CardSession,
) -> Result<(SecureChannel, CardChannel), BenchError> {
    let (initialize_update, awaiting) = host.initialize_update(KEY_VERSION, &HOST_CHALLENGE)?;
    let (iu_response, card_awaiting) = card.initialize_update(&initialize_update)?;
    let (external_authenticate, awaiting) = awaiting.process_response(&iu_response)?;
    let (ea_response, card_channel) =
        card_awaiting.external_authenticate(&external_authenticate.to_bytes())?;
    Ok((awaiting.complete(&ea_response)?, card_channel))
}

/// Opens a fresh, deterministic host + card channel pair at `level`.
pub fn open_pair(level: SecurityLevel) -> Result<(SecureChannel, CardChannel), BenchError> {
    let mut card = card_session()?;
    handshake(host_session(level)?, &mut card)
}

/// The data field of the card's INITIALIZE UPDATE response for the benchmark
/// session (KDD ‖ KVN ‖ '03' ‖ i ‖ card challenge ‖ card cryptogram), which
/// the yubikit peer consumes so both sides derive the same session keys.
pub fn initialize_update_response_data() -> Result<Vec<u8>, BenchError> {
    let mut card = card_session()?;
    let (command, _awaiting) =
        host_session(SecurityLevel::FULL)?.initialize_update(KEY_VERSION, &HOST_CHALLENGE)?;
    let (response, _card) = card.initialize_update(&command)?;
    Ok(response.into_data())
}

/// The plaintext command of every benchmark APDU: STORE DATA (`80 E2 90 00`)
/// with `payload_len` bytes, no Le (GPC §11.11).
pub fn store_data(payload_len: usize) -> CommandApdu {
    CommandApdu::new(gp::CLA_GP, gp::ins::STORE_DATA, 0x90, 0x00)
        .with_data(vec![COMMAND_FILL; payload_len])
}

/// The plaintext response of every benchmark APDU: `payload_len` bytes and '9000'.
pub fn plain_response(payload_len: usize) -> ResponseApdu {
    ResponseApdu::new(vec![RESPONSE_FILL; payload_len], StatusWord::SUCCESS)
}

/// Wire bytes of the first wrapped STORE DATA of a fresh session at `level`,
/// for checking that a peer does the same work on the same bytes.
pub fn first_wrapped_command(
    level: SecurityLevel,
    payload_len: usize,
) -> Result<Vec<u8>, BenchError> {
    let (mut host, _card) = open_pair(level)?;
    Ok(host.wrap(store_data(payload_len))?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_deterministic() {
        for level in LEVELS {
            let a = first_wrapped_command(level, 64).unwrap();
            let b = first_wrapped_command(level, 64).unwrap();
            assert_eq!(a, b);
            assert_eq!(a[0], 0x84, "secure messaging CLA");
        }
    }

    #[test]
    fn initialize_update_response_has_the_s8_layout_without_counter() {
        let data = initialize_update_response_data().unwrap();
        assert_eq!(data.len(), 10 + 3 + 8 + 8);
        assert_eq!(data[10], KEY_VERSION);
        assert_eq!(data[11], 0x03);
        assert_eq!(data[12], PARAMETER_I);
        assert_eq!(&data[13..21], &CARD_CHALLENGE);
    }

    #[test]
    fn largest_payload_fits_a_short_apdu_at_level_33() {
        assert_eq!(PAYLOAD_SIZES[2], 239);
        let wire = first_wrapped_command(SecurityLevel::FULL, PAYLOAD_SIZES[2]).unwrap();
        // header (4) + Lc (1) + 240 encrypted + 8 C-MAC
        assert_eq!(wire.len(), 4 + 1 + 240 + 8);
        assert_eq!(wire[4] as usize, 248);
    }
}
