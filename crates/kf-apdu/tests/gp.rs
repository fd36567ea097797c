//! GlobalPlatform builders: argument validation and P1 codings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::gp::{
    self, CardLifeCycle, GetStatusScope, PutKeyParams, StoreDataEncryption, StoreDataP1,
    StoreDataStructure,
};
use kf_apdu::ApduError;

#[test]
fn store_data_p1_bits_follow_table_11_89() {
    let p1 = |last, encryption, structure, expects_response| {
        StoreDataP1 {
            last_block: last,
            encryption,
            structure,
            expects_response,
        }
        .to_byte()
    };
    use StoreDataEncryption as E;
    use StoreDataStructure as S;
    assert_eq!(p1(false, E::None, S::Unspecified, false), 0x00);
    assert_eq!(p1(true, E::None, S::Unspecified, false), 0x80);
    assert_eq!(
        p1(false, E::ApplicationDependent, S::Unspecified, false),
        0x20
    );
    assert_eq!(p1(false, E::Encrypted, S::Unspecified, false), 0x60);
    assert_eq!(p1(false, E::None, S::Dgi, false), 0x08);
    assert_eq!(p1(false, E::None, S::BerTlv, false), 0x10);
    assert_eq!(p1(false, E::None, S::Unspecified, true), 0x01);
    assert_eq!(p1(true, E::Encrypted, S::Dgi, false), 0xE8);
    for b in 0..=u8::MAX {
        match StoreDataP1::from_byte(b) {
            Ok(p) => assert_eq!(p.to_byte(), b & !0x06, "P1 {b:02X}"),
            Err(e) => {
                let reason = if b & 0x60 == 0x40 {
                    "STORE DATA P1 b7-b6 = 10 is RFU"
                } else if b & 0x18 == 0x18 {
                    "STORE DATA P1 b5-b4 = 11 is RFU"
                } else {
                    panic!("P1 {b:02X} rejected: {e:?}")
                };
                assert_eq!(e, ApduError::InvalidArgument(reason), "P1 {b:02X}");
            }
        }
    }
}

#[test]
fn store_data_marks_encrypted_blocks_sensitive() {
    let plain = StoreDataP1 {
        structure: StoreDataStructure::Dgi,
        ..Default::default()
    };
    assert!(!gp::store_data(plain, 0, vec![1]).is_sensitive());
    let enc = StoreDataP1 {
        encryption: StoreDataEncryption::Encrypted,
        ..plain
    };
    let apdu = gp::store_data(enc, 1, vec![0xA0, 0x03, 0x01, 0x42]);
    assert!(apdu.is_sensitive());
    assert!(!format!("{apdu:?}").contains("A0030142"));
    assert_eq!(apdu.le(), None);
    let case4 = StoreDataP1 {
        expects_response: true,
        ..plain
    };
    assert_eq!(gp::store_data(case4, 0, vec![1]).le(), Some(256));
}

#[test]
fn select_validates_aid_length() {
    assert_eq!(
        format!("{:?}", gp::select_by_aid(&[0xA0; 4]).unwrap_err()),
        "InvalidArgument(\"AID must be 5 to 16 bytes\")"
    );
    assert_eq!(
        format!("{:?}", gp::select_by_aid(&[0xA0; 17]).unwrap_err()),
        "InvalidArgument(\"AID must be 5 to 16 bytes\")"
    );
    assert_eq!(gp::select_by_aid(&[0xA0; 16]).unwrap().data().len(), 16);
    assert_eq!(gp::select_by_aid(&[0xA0; 5]).unwrap().to_bytes()[4], 5);
}

#[test]
fn initialize_update_accepts_8_or_16_byte_challenges_only() {
    for len in [0, 7, 9, 15, 17, 32] {
        assert!(matches!(
            gp::initialize_update(0x30, &vec![0; len]),
            Err(ApduError::InvalidArgument(_))
        ));
    }
    assert_eq!(
        gp::initialize_update(0x30, &[0; 16]).unwrap().data().len(),
        16
    );
}

#[test]
fn external_authenticate_checks_level_and_cryptogram() {
    for level in [0x00, 0x01, 0x03, 0x11, 0x13, 0x33] {
        let apdu = gp::external_authenticate(level, &[0; 8]).unwrap();
        assert_eq!(apdu.to_bytes()[..5], [0x80, 0x82, level, 0x00, 0x08]);
        assert_eq!(apdu.le(), None);
    }
    assert_eq!(format!("{:?}", gp::external_authenticate(0x02, &[0; 8]).unwrap_err()), "InvalidArgument(\"security level must be one of 00, 01, 03, 11, 13, 33 (Amd D Table 7-3)\")");
    assert_eq!(format!("{:?}", gp::external_authenticate(0x31, &[0; 8]).unwrap_err()), "InvalidArgument(\"security level must be one of 00, 01, 03, 11, 13, 33 (Amd D Table 7-3)\")");
    assert_eq!(
        format!(
            "{:?}",
            gp::external_authenticate(0x01, &[0; 12]).unwrap_err()
        ),
        "InvalidArgument(\"host cryptogram must be 8 (S8) or 16 (S16) bytes\")"
    );
    assert!(gp::external_authenticate(0x33, &[0; 16]).is_ok());
}

#[test]
fn set_status_encodings() {
    assert_eq!(
        gp::set_card_status(CardLifeCycle::Secured).to_bytes(),
        [0x80, 0xF0, 0x80, 0x0F]
    );
    assert_eq!(
        CardLifeCycle::from_byte(0x7F),
        Some(CardLifeCycle::CardLocked)
    );
    assert_eq!(CardLifeCycle::from_byte(0x10), None);
    assert_eq!(
        format!(
            "{:?}",
            gp::set_application_status(&[0xA0; 3], 0x83).unwrap_err()
        ),
        "InvalidArgument(\"AID must be 5 to 16 bytes\")"
    );
    let lock = gp::set_domain_and_applications_locked(&[0xA0, 0, 0, 1, 0x51], true).unwrap();
    assert_eq!(
        lock.to_bytes(),
        [0x80, 0xF0, 0x60, 0x80, 5, 0xA0, 0, 0, 1, 0x51]
    );
    let unlock = gp::set_domain_and_applications_locked(&[0xA0, 0, 0, 1, 0x51], false).unwrap();
    assert_eq!(unlock.p2(), 0x00);
}

#[test]
fn get_status_rules() {
    let by_prefix = gp::get_status(GetStatusScope::Applications, &[0xA0, 0, 0, 5], false).unwrap();
    assert_eq!(
        by_prefix.to_bytes(),
        [0x80, 0xF2, 0x40, 0x02, 6, 0x4F, 4, 0xA0, 0, 0, 5, 0x00]
    );
    assert_eq!(format!("{:?}", gp::get_status(GetStatusScope::IssuerSecurityDomain, &[], true).unwrap_err()), "InvalidArgument(\"get next occurrence is rejected for the ISD scope (GPC 2.3.1 §11.4.2.2)\")");
    assert_eq!(
        format!(
            "{:?}",
            gp::get_status(GetStatusScope::LoadFiles, &[0; 17], false).unwrap_err()
        ),
        "InvalidArgument(\"AID search criterion is at most 16 bytes\")"
    );
    assert_eq!(
        gp::get_status(GetStatusScope::LoadFilesAndModules, &[], false)
            .unwrap()
            .p1(),
        0x10
    );
}

#[test]
fn put_key_is_sensitive_and_checks_ranges() {
    let params = PutKeyParams {
        current_key_version: 0x00,
        first_key_id: 0x01,
        multiple_keys: true,
        more_commands: true,
    };
    let apdu = gp::put_key(params, vec![0x30, 0x88, 0x10, 0xDE, 0xAD]).unwrap();
    assert!(apdu.is_sensitive());
    assert_eq!((apdu.p1(), apdu.p2()), (0x80, 0x81));
    assert!(!apdu.to_string().contains("DEAD"));
    assert_eq!(
        gp::put_key(
            PutKeyParams {
                current_key_version: 0x80,
                ..params
            },
            vec![1]
        )
        .unwrap_err(),
        ApduError::InvalidArgument("key version must be 00..7F")
    );
    assert_eq!(
        gp::put_key(
            PutKeyParams {
                first_key_id: 0x80,
                ..params
            },
            vec![1]
        )
        .unwrap_err(),
        ApduError::InvalidArgument("key identifier must be 00..7F")
    );
    assert_eq!(
        format!("{:?}", gp::put_key(params, vec![]).unwrap_err()),
        "InvalidArgument(\"PUT KEY needs key data\")"
    );
}

#[test]
fn get_response_and_get_data_shapes() {
    assert_eq!(gp::get_response(0).le(), Some(256));
    assert_eq!(
        gp::get_response(300).to_bytes(),
        [0x00, 0xC0, 0, 0, 0x00, 0x01, 0x2C]
    );
    assert_eq!(
        gp::get_data(0x00E0).to_bytes(),
        [0x80, 0xCA, 0x00, 0xE0, 0x00]
    );
    assert_eq!(
        format!("{:?}", gp::put_data_odd(0, 0, vec![]).unwrap_err()),
        "InvalidArgument(\"PUT DATA needs data\")"
    );
}

#[test]
fn block_ranges_cover_the_data_in_order() {
    assert_eq!(
        gp::block_ranges(600, 245).unwrap(),
        [0..245, 245..490, 490..600]
    );
    assert_eq!(gp::block_ranges(490, 245).unwrap(), [0..245, 245..490]);
    assert_eq!(gp::block_ranges(3000, 1016).unwrap().len(), 3);
    assert!(gp::block_ranges(0, 245).unwrap().is_empty());
    assert_eq!(
        format!("{:?}", gp::block_ranges(10, 0).unwrap_err()),
        "InvalidArgument(\"STORE DATA block length must not be 0\")"
    );
}

#[test]
fn card_life_cycle_codes_round_trip() {
    use CardLifeCycle::*;
    for s in [OpReady, Initialized, Secured, CardLocked, Terminated] {
        assert_eq!(CardLifeCycle::from_byte(s.as_byte()), Some(s));
    }
    assert_eq!(CardLifeCycle::from_byte(0x03), None);
}

#[test]
fn card_life_cycle_transitions_follow_figure_5_1() {
    use CardLifeCycle::*;
    assert!(OpReady.may_transition_to(Secured));
    assert!(Secured.may_transition_to(CardLocked));
    assert!(CardLocked.may_transition_to(Secured));
    assert!(!Secured.may_transition_to(Secured));
    assert!(!Secured.may_transition_to(OpReady));
    assert!(!OpReady.may_transition_to(CardLocked));
    assert!(!Terminated.may_transition_to(Secured));
    assert!(!Terminated.may_transition_to(Terminated));
    assert!(CardLocked.may_transition_to(Terminated));
}

#[test]
fn select_and_status_p1_p2_codings() {
    use gp::{GetStatusFormat, SelectP1, SelectP2, SetStatusScope};
    assert_eq!(
        gp::select_by_aid(&[0xA0; 5]).unwrap().to_bytes()[..4],
        [
            0x00,
            0xA4,
            SelectP1::ByName.as_byte(),
            SelectP2::FirstOccurrence.as_byte()
        ]
    );
    assert_eq!(SelectP1::from_byte(0x04), Some(SelectP1::ByName));
    assert_eq!(SelectP1::from_byte(0x03), Some(SelectP1::ParentDf));
    assert_eq!(SelectP1::from_byte(0x05), None);
    assert_eq!(
        SelectP2::from_byte(0x0C),
        Some(SelectP2::FirstOccurrenceNoData)
    );
    assert_eq!(SelectP2::from_byte(0x01), None);
    assert_eq!(
        SetStatusScope::from_byte(0x60),
        Some(SetStatusScope::DomainAndApplications)
    );
    assert_eq!(SetStatusScope::from_byte(0x20), None);
    assert_eq!(
        GetStatusFormat::from_byte(0x02),
        Some(GetStatusFormat::Tagged)
    );
    assert_eq!(
        GetStatusFormat::from_byte(0x02 | gp::GET_STATUS_NEXT_OCCURRENCE),
        None
    );
    let next = gp::get_status(GetStatusScope::Applications, &[], true).unwrap();
    assert_eq!(next.p2(), 0x03);
    assert_eq!(next.data(), [0x4F, 0x00]);
}

#[test]
fn registry_and_fci_tags_have_their_ber_form() {
    use gp::tag;
    use kf_apdu::Tag;
    for t in tag::ALL {
        assert_eq!(Tag::new(t.as_u32()).ok(), Some(t), "{t} is a valid tag");
    }
    let constructed: Vec<u32> = tag::ALL
        .iter()
        .filter(|t| t.is_constructed())
        .map(|t| t.as_u32())
        .collect();
    assert_eq!(constructed, [0xE3, 0x6F, 0xA5, 0xE0]);
    assert_eq!(
        gp::get_data(gp::KEY_INFORMATION_TAG).to_bytes(),
        [0x80, 0xCA, 0x00, 0xE0, 0x00]
    );
}
