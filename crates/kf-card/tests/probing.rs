//! Plain (no secure channel) behaviour: ATR, UID, SELECT, and the probing
//! APDUs tools such as opensc-tool and pcsc_scan send. None may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_card::{FobConfig, FobError, IsdLifeCycle, Selected, Uid, VirtualFob};
use proptest::prelude::*;

fn fob() -> VirtualFob {
    let uid = Uid::from_hex("04A1B2C3D4E5F6071829").unwrap();
    let mut fob = VirtualFob::new(FobConfig::dev_sample().with_uid(uid)).unwrap();
    fob.power_on();
    fob
}

fn send(fob: &mut VirtualFob, hex_apdu: &str) -> (Vec<u8>, u16) {
    let apdu = hex::decode(hex_apdu.replace(' ', "")).unwrap();
    let mut resp = fob.process_apdu(&apdu);
    assert!(resp.len() >= 2, "response without status word");
    let sw = resp.split_off(resp.len() - 2);
    (resp, u16::from_be_bytes([sw[0], sw[1]]))
}

#[test]
fn atr_is_a_pcsc_part3_contactless_atr_with_valid_tck() {
    let fob = fob();
    let atr = fob.atr();
    assert_eq!(&atr[..4], &[0x3B, 0x80 | (atr.len() as u8 - 5), 0x80, 0x01]);
    assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0, "TCK");
}

#[test]
fn uid_of_each_size_is_returned_in_any_state() {
    for uid_hex in ["04A1B2C3", "04A1B2C3D4E5F6", "04A1B2C3D4E5F6071829"] {
        let uid = Uid::from_hex(uid_hex).unwrap();
        let mut fob = VirtualFob::new(FobConfig::dev_sample().with_uid(uid.clone())).unwrap();
        fob.power_on();
        assert_eq!(
            send(&mut fob, "FFCA000000"),
            (uid.as_bytes().to_vec(), 0x9000)
        );
        send(&mut fob, "00A4040005A000000857");
        assert_eq!(
            send(&mut fob, "FFCA000000"),
            (uid.as_bytes().to_vec(), 0x9000)
        );
        // Le shorter than the UID: 6Cxx with the exact length.
        let (_, sw) = send(&mut fob, "FFCA000002");
        assert_eq!(sw, 0x6C00 | uid.as_bytes().len() as u16);
    }
}

#[test]
fn default_uid_is_ten_random_bytes() {
    let a = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let b = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    assert_eq!(a.uid().as_bytes().len(), 10);
    assert_ne!(a.uid(), b.uid());
}

#[test]
fn invalid_uid_lengths_are_rejected() {
    for len in [0usize, 3, 5, 8, 11] {
        assert!(
            matches!(Uid::new(&vec![1u8; len]), Err(FobError::InvalidUid { len: l }) if l == len),
            "{len}"
        );
    }
}

#[test]
fn select_isd_and_applet_return_fci_and_unknown_aids_6a82() {
    let mut fob = fob();
    let (fci, sw) = send(&mut fob, "00A4040008A000000151000000 00");
    assert_eq!(sw, 0x9000);
    assert_eq!(&fci[..4], &[0x6F, 0x10, 0x84, 0x08]);
    assert_eq!(fob.selected(), Selected::Isd);
    let (_, sw) = send(&mut fob, "00A4040005A000000857");
    assert_eq!(sw, 0x9000);
    assert_eq!(fob.selected(), Selected::Applet);
    // Unknown AIDs (e.g. PIV, OpenPGP probes) → 6A82, selection unchanged.
    assert_eq!(send(&mut fob, "00A4040009A00000030800001000").1, 0x6A82);
    assert_eq!(send(&mut fob, "00A4040006D27600012401").1, 0x6A82);
    assert_eq!(fob.selected(), Selected::Applet);
    // No data selects the ISD (GPC §6.4.2.1.2); partial AID (RID) matches the ISD.
    assert_eq!(send(&mut fob, "00A4040000").1, 0x9000);
    assert_eq!(fob.selected(), Selected::Isd);
    assert_eq!(send(&mut fob, "00A4040005A000000151").1, 0x9000);
    // P2 0C: no FCI.
    assert_eq!(send(&mut fob, "00A4040C05A000000857"), (vec![], 0x9000));
}

#[test]
fn opensc_and_pcsc_scan_probes_get_sensible_status_words() {
    let mut fob = fob();
    let cases = [
        ("00A40000023F00", 0x6A82),     // SELECT MF by FID
        ("00A4000C023F00", 0x6A82),     // SELECT MF, no response data
        ("00A40804043F002F00", 0x6A82), // SELECT by path
        ("00CA9F7F00", 0x9000),         // GET DATA CPLC (ISD)
        ("80CA006600", 0x6A88),         // GET DATA card data
        ("00C0000000", 0x6D00),         // GET RESPONSE
        ("0084000008", 0x6D00),         // GET CHALLENGE
        ("00B0000000", 0x6D00),         // READ BINARY
        ("B0A4040000", 0x6E00),         // unknown CLA
        ("A0A4000002", 0x6E00),         // GSM class
        ("01A4040000", 0x6881),         // logical channel 1
        ("10A4040000", 0x6884),         // chaining
        ("0CA4040000", 0x6882),         // ISO secure messaging
        ("84E2000000", 0x6982),         // SCP03 CLA without channel
        ("FFCA050000", 0x6A81),         // unsupported pseudo-APDU P1
        ("FF00000000", 0x6D00),         // other reader pseudo-APDU
        ("00", 0x6700),                 // truncated header
        ("00A404", 0x6700),
        ("00A4040005A0", 0x6700), // Lc disagrees with body
    ];
    for (apdu, want) in cases {
        let (_, sw) = send(&mut fob, apdu);
        assert_eq!(sw, want, "{apdu}: got {sw:04X}");
    }
    // ISD key information template for GP tools.
    let (kit, sw) = send(&mut fob, "80CA00E000");
    assert_eq!(sw, 0x9000);
    assert_eq!(&kit[..2], &[0xE0, 0x12]);
    assert_eq!(&kit[2..8], &[0xC0, 0x04, 0x01, 0xFF, 0x88, 0x10]);
}

#[test]
fn applet_commands_need_personalization_or_a_channel() {
    let mut fob = fob();
    send(&mut fob, "00A4040005A000000857");
    // STORE DATA without a secure channel.
    assert_eq!(send(&mut fob, "80E2000003A00101").1, 0x6982);
    // Post-perso configuration before personalization.
    assert_eq!(send(&mut fob, "00DB0000030A0101").1, 0x6985);
    // Verification before personalization.
    let challenge = "00".repeat(32);
    assert_eq!(
        send(&mut fob, &format!("0088000020{challenge}00")).1,
        0x6985
    );
    // ISD commands are not the applet's.
    assert_eq!(send(&mut fob, "80F0800F").1, 0x6D00);
    assert!(fob.stored_dgi_tags().is_empty());
}

#[test]
fn isd_commands_need_the_secure_channel() {
    let mut fob = fob();
    assert_eq!(send(&mut fob, "80F0800F").1, 0x6982);
    assert_eq!(send(&mut fob, "80F28000024F0000").1, 0x6982);
    assert_eq!(
        send(&mut fob, "80E2800000").1,
        0x6D00,
        "STORE DATA is the applet's"
    );
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::OpReady);
}

#[test]
fn initialize_update_with_unknown_key_version_is_6a88() {
    let mut fob = fob();
    assert_eq!(send(&mut fob, "8050300008000102030405060700").1, 0x6A88);
    assert_eq!(fob.auth_failures(), 0);
}

#[test]
fn external_authenticate_without_initialize_update_is_refused() {
    let mut fob = fob();
    let (_, sw) = send(&mut fob, &format!("8482010010{}", "00".repeat(16)));
    assert!(sw == 0x6985 || sw == 0x6982, "{sw:04X}");
    assert!(!fob.is_channel_open());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_apdus_never_panic(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)
    ) {
        let mut fob = fob();
        for apdu in apdus {
            let resp = fob.process_apdu(&apdu);
            prop_assert!(resp.len() >= 2);
        }
    }

    #[test]
    fn arbitrary_bodies_for_known_headers_never_panic(
        header in prop::sample::select(vec![
            [0x00u8, 0xA4, 0x04, 0x00], [0x80, 0x50, 0xFF, 0x00], [0x84, 0x82, 0x33, 0x00],
            [0x84, 0xE2, 0x00, 0x00], [0x80, 0xE2, 0x80, 0x00], [0x00, 0xDB, 0x00, 0x00],
            [0x00, 0x88, 0x00, 0x00], [0x84, 0xF0, 0x80, 0x7F], [0x84, 0xF2, 0x80, 0x02],
            [0xFF, 0xCA, 0x00, 0x00],
        ]),
        body in proptest::collection::vec(any::<u8>(), 0..270),
        select_applet in any::<bool>(),
    ) {
        let mut fob = fob();
        if select_applet {
            fob.process_apdu(&hex::decode("00A4040005A000000857").unwrap());
        }
        let mut apdu = header.to_vec();
        apdu.extend_from_slice(&body);
        let resp = fob.process_apdu(&apdu);
        prop_assert!(resp.len() >= 2);
    }
}
