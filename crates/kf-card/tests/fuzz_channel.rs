//! Property tests through an open secure channel: corrupted and arbitrarily
//! split DGI streams never panic the fob and never leave a half-stored set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_card::{FobConfig, VirtualFob};
use kf_profile::{AppletLifeCycle, P1Style, DEV_SAMPLE_KVN};
use proptest::prelude::*;

fn all_or_nothing(fob: &VirtualFob) -> bool {
    match fob.applet_life_cycle() {
        AppletLifeCycle::Personalized => fob.stored_dgi_tags().len() == 6,
        _ => fob.stored_dgi_tags().is_empty(),
    }
}

#[test]
fn virtual_fob_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<VirtualFob>();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_dgi_streams_store_all_or_nothing(
        flip_at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        block_len in 1usize..=240,
        gp_style in any::<bool>(),
    ) {
        let keys = kf_card::dev_sample_keys().unwrap();
        let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
        let data = PersoData::new(&keys.dek);
        let mut stream = data.encoded();
        let i = flip_at.index(stream.len());
        stream[i] ^= mask;
        let style = if gp_style { P1Style::GpDgi } else { P1Style::JcShell };
        let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
        let sws = send_blocks(&mut fob, &mut ch, &blocks(&stream, block_len, style, true));
        prop_assert!(all_or_nothing(&fob));
        let ok = sws.iter().all(|sw| *sw == 0x9000);
        prop_assert_eq!(ok, fob.applet_life_cycle() == AppletLifeCycle::Personalized);
    }

    #[test]
    fn arbitrary_store_data_commands_in_a_channel_never_panic(
        cmds in proptest::collection::vec(
            (prop::sample::select(vec![0x00u8, 0x80, 0x08, 0x88, 0x28, 0x10, 0xFF]),
             0u8..4,
             proptest::collection::vec(any::<u8>(), 0..200)),
            1..6),
    ) {
        let keys = kf_card::dev_sample_keys().unwrap();
        let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
        let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
        for (p1, p2, data) in cmds {
            let (_, sw) = send_secured(&mut fob, &mut ch, store_data_cmd(p1, p2, &data));
            prop_assert!(sw != 0x6F00);
            prop_assert!(all_or_nothing(&fob));
        }
    }
}
