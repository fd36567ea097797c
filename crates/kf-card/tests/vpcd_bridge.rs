//! The fob served by kf-transport's vpcd bridge to a stand-in for vpcd (a
//! local TCP listener speaking vpcd's framing): ATR, UID, full personalization
//! over the socket, and a connection drop mid STORE DATA (a tear).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use kf_card::{FobConfig, Uid, VirtualFob};
use kf_profile::{AppletLifeCycle, P1Style, DEV_SAMPLE_KVN};
use kf_transport::vpcd::{BridgeHandle, VpcdConfig, VpcdPeer, CTRL_GET_ATR, CTRL_POWER_ON};

fn accept(listener: &TcpListener) -> VpcdPeer {
    VpcdPeer::accept(listener, Duration::from_secs(10)).unwrap()
}

impl Link for VpcdPeer {
    fn send(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.exchange(apdu).unwrap()
    }
}

#[test]
fn fob_personalizes_through_the_vpcd_bridge_and_survives_a_dropped_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let uid = Uid::from_hex("04010203040506070809").unwrap();
    let fob = VirtualFob::new(FobConfig::dev_sample().with_uid(uid.clone())).unwrap();
    let bridge = BridgeHandle::spawn(fob, VpcdConfig::new(addr)).unwrap();
    let keys = kf_card::dev_sample_keys().unwrap();
    let data = PersoData::new(&keys.dek);
    let all = blocks(&data.encoded(), 200, P1Style::JcShell, true);

    // First connection: ATR, UID, then a tear after two blocks.
    let mut vpcd = accept(&listener);
    VpcdPeer::send(&mut vpcd, &[CTRL_POWER_ON]).unwrap();
    let atr = vpcd.exchange(&[CTRL_GET_ATR]).unwrap();
    assert_eq!(&atr[..4], &[0x3B, 0x8A, 0x80, 0x01]);
    assert_eq!(
        send_hex(&mut vpcd, "FFCA000000"),
        (uid.as_bytes().to_vec(), 0x9000)
    );
    let mut ch = applet_channel(&mut vpcd, DEV_SAMPLE_KVN, &keys);
    assert_eq!(send_blocks(&mut vpcd, &mut ch, &all[..2]), vec![0x9000; 2]);
    drop(vpcd);

    // The bridge reconnects (pcscd restarted); the staged blocks are gone.
    let mut vpcd = accept(&listener);
    VpcdPeer::send(&mut vpcd, &[CTRL_POWER_ON]).unwrap();
    let mut ch = applet_channel(&mut vpcd, DEV_SAMPLE_KVN, &keys);
    let gap = "block 2 without blocks 0 and 1";
    assert_block_2_refused_then_personalized(&mut vpcd, &mut ch, &all, &data, gap);

    let fob = bridge.stop_and_join().unwrap();
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    assert_eq!(fob.public_key().unwrap(), *data.signing_key.verifying_key());
}
