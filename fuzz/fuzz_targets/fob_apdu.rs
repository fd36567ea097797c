//! The virtual JCOP 4 fob as the card side of the wire: a sequence of C-APDUs,
//! either sent in the clear (SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE,
//! GET DATA, ...) or through an SCP03 channel opened with the development keys
//! (STORE DATA, DGI reassembly and personalization). Each answer is a
//! well-formed R-APDU and the fob never panics.
//!
//! Input: one flag byte (bit 0: secured, bit 1: applet instead of ISD), then
//! APDUs, each prefixed with its length byte.
#![no_main]
use kf_apdu::{CommandApdu, ResponseApdu};
use kf_card::{dev_sample_keys, FobConfig, VirtualFob};
use kf_profile::{APPLET_AID, DEV_SAMPLE_KVN, ISD_AID};
use kf_scp03::{HostSession, SecurityLevel};
use libfuzzer_sys::fuzz_target;

fn send(fob: &mut VirtualFob, apdu: &[u8]) -> ResponseApdu {
    let raw = fob.process_apdu(apdu);
    ResponseApdu::parse(&raw).expect("the fob answers a well-formed R-APDU")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).expect("fob");
    fob.power_on();
    let aid: &[u8] = if flags & 2 != 0 { APPLET_AID } else { ISD_AID };
    let mut channel = None;
    if flags & 1 != 0 {
        let keys = dev_sample_keys().expect("dev keys");
        let select = CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(aid.to_vec())
            .with_le(256);
        send(&mut fob, &select.to_bytes());
        let (iu, awaiting) = HostSession::new(keys)
            .security_level(SecurityLevel::C_MAC)
            .sd_aid(aid.to_vec())
            .initialize_update(DEV_SAMPLE_KVN, &[0x5A; 8])
            .expect("IU");
        let resp = send(&mut fob, &iu.to_bytes());
        let (ea, awaiting) = awaiting.process_response(&resp).expect("IU response");
        let resp = send(&mut fob, &ea.to_bytes());
        channel = Some(awaiting.complete(&resp).expect("channel"));
    }
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (apdu, next) = tail.split_at(take);
        rest = next;
        match channel.as_mut() {
            Some(ch) => {
                let Ok(cmd) = CommandApdu::parse(apdu) else {
                    continue;
                };
                let Ok(wrapped) = ch.wrap(cmd) else {
                    continue;
                };
                let raw = fob.process_apdu(&wrapped.to_bytes());
                if ch.unwrap_bytes(&raw).is_err() {
                    break;
                }
            }
            None => {
                send(&mut fob, apdu);
            }
        }
    }
});
