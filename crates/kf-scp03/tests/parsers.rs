//! The parsers never panic on arbitrary input (proptest): INITIALIZE UPDATE
//! responses, INITIALIZE UPDATE and EXTERNAL AUTHENTICATE on the card, wrapped
//! commands, protected responses, and replay scripts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_scp03::{InitializeUpdateResponse, Mode, Scp03Error, SecurityLevel};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_initialize_update_response_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
        for mode in MODES {
            if let Ok(r) = InitializeUpdateResponse::parse(&data, mode) {
                prop_assert_eq!(r.to_bytes(), data.clone());
            }
        }
    }

    #[test]
    fn parsers_host_rejects_arbitrary_initialize_update_responses(
        data in prop::collection::vec(any::<u8>(), 0..64),
        sw in any::<u16>(),
    ) {
        for mode in MODES {
            let (_, awaiting) = host(16, SecurityLevel::C_MAC)
                .initialize_update(KVN, &host_challenge(mode, 3))
                .unwrap();
            // A random response cannot carry a valid card cryptogram.
            let r = awaiting.process_response(&ResponseApdu::new(data.clone(), StatusWord::from_u16(sw)));
            // Refused as an error status, a malformed response, or a card cryptogram that
            // does not verify; never accepted.
            prop_assert!(
                matches!(
                    r,
                    Err(Scp03Error::CardStatus(_)
                        | Scp03Error::InvalidInitializeUpdateResponse { .. }
                        | Scp03Error::UnexpectedScpIdentifier(_)
                        | Scp03Error::KeyVersionMismatch { .. }
                        | Scp03Error::UnsupportedParameterI(_)
                        | Scp03Error::CardCryptogramMismatch)
                ),
                "{:?}",
                r.err()
            );
        }
    }

    #[test]
    fn parsers_card_initialize_update_never_panics(raw in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut card = card(16, Mode::S8, 0x10);
        if let Ok(cmd) = CommandApdu::parse(&raw) {
            // Only the absence of a panic is under test; errors are expected.
            let _ = card.initialize_update(&cmd);
        }
    }

    #[test]
    fn parsers_card_external_authenticate_rejects_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..48)) {
        for mode in MODES {
            let mut card = card(16, mode, 0x00);
            let (_, _, auth) = start(host(16, SecurityLevel::C_MAC), &mut card, mode);
            let r = auth.external_authenticate(&raw);
            prop_assert!(
                matches!(
                    r,
                    Err(Scp03Error::MalformedHandshakeCommand { .. }
                        | Scp03Error::ExternalAuthenticateMacMismatch
                        | Scp03Error::HostCryptogramMismatch)
                ),
                "{:?}",
                r.err()
            );
        }
    }

    #[test]
    fn parsers_card_rejects_arbitrary_wrapped_commands(
        raw in prop::collection::vec(any::<u8>(), 0..300),
        level_idx in 1usize..6,
    ) {
        let level = SecurityLevel::ALL[level_idx];
        let (_, mut card) = open(level, 16, Mode::S8, 0x70);
        let err = card.unwrap_command(&raw).unwrap_err();
        prop_assert!(matches!(err, Scp03Error::Terminated(_)));
        prop_assert!(card.is_terminated());
    }

    #[test]
    fn parsers_host_response_unwrap_never_panics(
        raw in prop::collection::vec(any::<u8>(), 0..300),
        level_idx in 0usize..6,
    ) {
        let level = SecurityLevel::ALL[level_idx];
        let (mut host, _) = open(level, 16, Mode::S16, 0x70);
        host.wrap(CommandApdu::new(0x80, 0xCA, 0, 0).with_le(256)).unwrap();
        let r = host.unwrap_bytes(&raw);
        if level.r_mac() {
            // Success/warning responses need a valid R-MAC; bare error SWs pass.
            if let Ok(resp) = r {
                prop_assert!(resp.data().is_empty());
                prop_assert!(!(resp.sw().is_success() || resp.sw().is_warning()));
            }
        }
    }

    #[test]
    fn parsers_replay_never_panics(text in ".{0,200}") {
        let r = kf_scp03::replay::replay(&text, false);
        prop_assert!(
            matches!(r, Err(kf_scp03::replay::ReplayError::InvalidJson(_))),
            "{:?}",
            r.err()
        );
    }
}
