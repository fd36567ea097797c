//! ISD life cycle through SET STATUS inside the secure channel (GPC 2.3.1
//! §5.1.1, §11.10), its effect on SELECT, and GET STATUS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::CommandApdu;
use kf_card::{FobConfig, IsdLifeCycle, VirtualFob};
use kf_profile::{APPLET_AID, DEV_SAMPLE_KVN, ISD_AID};
use kf_scp03::{Mode, SecureChannel, SecurityLevel};

fn isd_channel(fob: &mut VirtualFob) -> SecureChannel {
    let keys = kf_card::dev_sample_keys().unwrap();
    open_channel(
        fob,
        ISD_AID,
        DEV_SAMPLE_KVN,
        &keys,
        SecurityLevel::FULL,
        Mode::S8,
    )
}

fn set_status(fob: &mut VirtualFob, ch: &mut SecureChannel, state: u8) -> u16 {
    send_secured(fob, ch, CommandApdu::new(0x80, 0xF0, 0x80, state)).1
}

#[test]
fn set_status_secures_and_locks_the_card_per_figure_5_1() {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::OpReady);
    let mut ch = isd_channel(&mut fob);
    assert_eq!(
        set_status(&mut fob, &mut ch, 0x7F),
        0x6985,
        "OP_READY → CARD_LOCKED"
    );
    assert_eq!(set_status(&mut fob, &mut ch, 0x0F), 0x9000);
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::Secured);
    assert_eq!(
        set_status(&mut fob, &mut ch, 0x0F),
        0x6985,
        "to the current state"
    );
    assert_eq!(
        set_status(&mut fob, &mut ch, 0x07),
        0x6985,
        "back to INITIALIZED"
    );
    assert_eq!(
        set_status(&mut fob, &mut ch, 0x03),
        0x6A80,
        "not a card state"
    );
    let (_, sw) = send_secured(&mut fob, &mut ch, CommandApdu::new(0x80, 0xF0, 0x20, 0x7F));
    assert_eq!(sw, 0x6A86);
    let (_, sw) = send_secured(
        &mut fob,
        &mut ch,
        CommandApdu::new(0x80, 0xF0, 0x40, 0x83).with_data(APPLET_AID.to_vec()),
    );
    assert_eq!(sw, 0x6A88);
    assert_eq!(set_status(&mut fob, &mut ch, 0x7F), 0x9000);
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::CardLocked);

    // CARD_LOCKED: only the ISD is selectable (warning 6283); the applet gets 6A81.
    assert_eq!(select(&mut fob, APPLET_AID), 0x6A81);
    assert_eq!(select(&mut fob, ISD_AID), 0x6283);
    assert_eq!(
        send_hex(&mut fob, "FFCA000000").1,
        0x9000,
        "UID still readable"
    );
    // The ISD can unlock inside a new channel.
    let mut ch = isd_channel(&mut fob);
    assert_eq!(set_status(&mut fob, &mut ch, 0x0F), 0x9000);
    assert_eq!(select(&mut fob, APPLET_AID), 0x9000);
}

#[test]
fn set_status_without_protection_is_refused() {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let _ch = isd_channel(&mut fob);
    // Plain SET STATUS while a channel is open.
    assert_eq!(send_hex(&mut fob, "80F0800F").1, 0x6982);
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::OpReady);
}

#[test]
fn terminated_card_answers_only_get_data() {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let mut ch = isd_channel(&mut fob);
    assert_eq!(set_status(&mut fob, &mut ch, 0xFF), 0x9000);
    assert_eq!(select(&mut fob, ISD_AID), 0x6985);
    assert_eq!(send_hex(&mut fob, "80CA00E000").1, 0x9000);
    assert_eq!(send_hex(&mut fob, "FFCA000000").1, 0x9000);
}

#[test]
fn get_status_reports_the_isd_life_cycle() {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let mut ch = isd_channel(&mut fob);
    assert_eq!(set_status(&mut fob, &mut ch, 0x0F), 0x9000);
    let get = |p1, p2| {
        CommandApdu::new(0x80, 0xF2, p1, p2)
            .with_data(vec![0x4F, 0x00])
            .with_le(256)
    };
    let (data, sw) = send_secured(&mut fob, &mut ch, get(0x80, 0x02));
    assert_eq!(sw, 0x9000);
    let mut want = vec![0xE3, 0x13, 0x4F, 0x08];
    want.extend_from_slice(ISD_AID);
    want.extend_from_slice(&[0x9F, 0x70, 0x01, 0x0F, 0xC5, 0x03, 0x9E, 0xFE, 0x80]);
    assert_eq!(data, want);
    let (data, sw) = send_secured(&mut fob, &mut ch, get(0x80, 0x00));
    assert_eq!(sw, 0x9000);
    assert_eq!(data[0], 8);
    assert_eq!(data[9], 0x0F);
    let (data, sw) = send_secured(&mut fob, &mut ch, get(0x40, 0x02));
    assert_eq!(sw, 0x9000);
    assert_eq!(&data[2..4], &[0x4F, 0x05]);
    assert_eq!(send_secured(&mut fob, &mut ch, get(0x20, 0x02)).1, 0x6A88);
    assert_eq!(send_secured(&mut fob, &mut ch, get(0x80, 0x04)).1, 0x6A86);
}
