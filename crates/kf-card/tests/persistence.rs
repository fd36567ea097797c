//! State file and tears: a fob survives a restart, a tear in the middle of
//! STORE DATA leaves a state from which a new session personalizes, and an
//! interrupted write never corrupts the state file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_card::{FobConfig, FobError, IsdLifeCycle, TransportFlags, Uid, VirtualFob};
use kf_profile::{AppletLifeCycle, P1Style, TransportConfig, DEV_SAMPLE_KVN, ISD_AID};
use kf_scp03::{Mode, SecurityLevel};
use kf_transport::loopback::LoopbackTransport;
use p256::ecdsa::{signature::Verifier, Signature};

fn keys() -> kf_crypto::StaticKeys {
    kf_card::dev_sample_keys().unwrap()
}

fn config(path: &std::path::Path) -> FobConfig {
    FobConfig::dev_sample()
        .with_uid(Uid::from_hex("04112233445566778899").unwrap())
        .with_state_file(path)
}

/// Opens a channel with the ISD and sets the card SECURED; the status word.
fn set_isd_secured(fob: &mut VirtualFob) -> u16 {
    let mut isd = open_channel(
        fob,
        ISD_AID,
        DEV_SAMPLE_KVN,
        &keys(),
        SecurityLevel::C_MAC,
        Mode::S8,
    );
    assert!(fob.is_channel_open());
    send_secured(
        fob,
        &mut isd,
        kf_apdu::CommandApdu::new(0x80, 0xF0, 0x80, 0x0F),
    )
    .1
}

/// A fob keeping its state in `path`, personalized with `data`.
fn personalized_fob(path: &std::path::Path, data: &PersoData) -> VirtualFob {
    let mut fob = VirtualFob::new(config(path)).unwrap();
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys());
    personalize(&mut fob, &mut ch, data);
    fob
}

#[test]
fn tear_mid_store_data_then_repersonalize() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fob.json");
    let mut link = LoopbackTransport::new(VirtualFob::new(config(&path)).unwrap());
    let data = PersoData::new(&keys().dek);
    let all = blocks(&data.encoded(), 200, P1Style::JcShell, true);
    let mut ch = applet_channel(&mut link, DEV_SAMPLE_KVN, &keys());
    assert_eq!(send_blocks(&mut link, &mut ch, &all[..3]), vec![0x9000; 3]);
    assert!(link.card().personalization_in_progress());
    // The fob leaves the field.
    link.remove_card();
    assert!(!link.card().personalization_in_progress());
    assert_eq!(
        link.card().applet_life_cycle(),
        AppletLifeCycle::Unpersonalized
    );
    assert!(link.card().stored_dgi_tags().is_empty());
    // The file holds the unpersonalized card too.
    let reloaded = VirtualFob::new(config(&path)).unwrap();
    assert_eq!(
        reloaded.applet_life_cycle(),
        AppletLifeCycle::Unpersonalized
    );
    // Back in the field: a new session personalizes from P2 = 00.
    kf_transport::transport::Transport::reset(&mut link).unwrap();
    let mut ch = applet_channel(&mut link, DEV_SAMPLE_KVN, &keys());
    let sws = personalize(&mut link, &mut ch, &data);
    assert!(sws.iter().all(|sw| *sw == 0x9000), "{sws:04X?}");
    assert_eq!(
        link.card().applet_life_cycle(),
        AppletLifeCycle::Personalized
    );
}

#[test]
fn tear_right_before_the_last_block_stores_nothing() {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let data = PersoData::new(&keys().dek);
    let all = blocks(&data.encoded(), 200, P1Style::JcShell, true);
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys());
    let n = all.len() - 1;
    assert_eq!(send_blocks(&mut fob, &mut ch, &all[..n]), vec![0x9000; n]);
    fob.reset();
    assert!(fob.stored_dgi_tags().is_empty());
    // The last block alone, in the old channel's numbering, is refused: no channel.
    let (_, sw) = send_plain(&mut fob, &store_data_cmd(0x80, n as u8, &[]).to_bytes());
    assert_eq!(sw, 0x6D00, "ISD is selected after reset");
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
}

#[test]
fn state_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fob.json");
    let data = PersoData::new(&keys().dek);
    {
        let mut fob = personalized_fob(&path, &data);
        send_plain(&mut fob, &TransportConfig::Ble.enable_command());
        // One failed authentication, counted and persisted.
        select(&mut fob, ISD_AID);
        send_hex(&mut fob, "8050FF00080102030405060708");
        send_hex(&mut fob, &format!("8482010010{}", "00".repeat(16)));
        assert_eq!(fob.auth_failures(), 1);
        assert_eq!(set_isd_secured(&mut fob), 0x9000);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("TEST ARTIFACT"));
    // Restart with a different configured UID: the file wins.
    let other = FobConfig::dev_sample()
        .with_uid(Uid::from_hex("04AABBCCDDEEFF001122").unwrap())
        .with_state_file(&path);
    let mut fob = VirtualFob::new(other).unwrap();
    assert_eq!(fob.uid().to_string(), "04112233445566778899");
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    assert_eq!(
        fob.transport_flags(),
        TransportFlags {
            uicc: false,
            ble: true
        }
    );
    assert_eq!(fob.auth_failures(), 1);
    assert_eq!(fob.isd_life_cycle(), IsdLifeCycle::Secured);
    for dgi in &data.dgis {
        assert_eq!(fob.stored_dgi(dgi.tag), Some(dgi.data.as_slice()));
    }
    // The key pair survived: the signature verifies with the provisioned public key.
    select(&mut fob, kf_profile::APPLET_AID);
    let (der, sw) = send_hex(&mut fob, &format!("0088000020{}00", "AB".repeat(32)));
    assert_eq!(sw, 0x9000);
    data.signing_key
        .verifying_key()
        .verify(&[0xAB; 32], &Signature::from_der(&der).unwrap())
        .unwrap();
    // And personalization is still refused.
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys());
    assert_eq!(
        personalize(&mut fob, &mut ch, &PersoData::new(&keys().dek)),
        vec![0x6985]
    );
}

#[test]
fn pseudo_random_sequence_counter_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fob.json");
    let counter = |fob: &mut VirtualFob| {
        select(fob, ISD_AID);
        let (iu, awaiting) = kf_scp03::HostSession::new(keys())
            .initialize_update(DEV_SAMPLE_KVN, &[1; 8])
            .unwrap();
        let resp = kf_apdu::ResponseApdu::parse(&fob.process_apdu(&iu.to_bytes())).unwrap();
        let (_, awaiting) = awaiting.process_response(&resp).unwrap();
        awaiting.card_info().sequence_counter.unwrap()
    };
    let mut fob = VirtualFob::new(config(&path)).unwrap();
    assert_eq!(counter(&mut fob), [0, 0, 1]);
    assert_eq!(counter(&mut fob), [0, 0, 2]);
    drop(fob);
    let mut fob = VirtualFob::new(config(&path)).unwrap();
    assert_eq!(counter(&mut fob), [0, 0, 3]);
}

#[test]
fn interrupted_write_never_corrupts_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fob.json");
    let data = PersoData::new(&keys().dek);
    drop(personalized_fob(&path, &data));
    let good = std::fs::read(&path).unwrap();
    // A crash while writing leaves a truncated temporary file; the state file is intact.
    let tmp = dir.path().join(".fob.json.00112233aabbccdd.tmp");
    std::fs::write(&tmp, &good[..good.len() / 2]).unwrap();
    let mut fob = VirtualFob::new(config(&path)).unwrap();
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    // The next committed change replaces the file whole, beside the leftover.
    assert_eq!(
        send_plain(&mut fob, &TransportConfig::Uicc.enable_command()).1,
        0x6D00,
        "ISD selected"
    );
    select(&mut fob, kf_profile::APPLET_AID);
    assert_eq!(
        send_plain(&mut fob, &TransportConfig::Uicc.enable_command()).1,
        0x9000
    );
    let fob = VirtualFob::new(config(&path)).unwrap();
    assert!(fob.transport_flags().uicc);
    // A state file that is itself damaged is reported, never silently replaced.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    match VirtualFob::new(config(&path)) {
        Err(FobError::CorruptState { reason, .. }) => assert!(!reason.contains("3082"), "{reason}"),
        other => panic!("expected CorruptState, got {other:?}"),
    }
}

/// A fob whose state file sits in a directory the test can remove (every
/// later write then fails) and create again: (guard, directory, state file, fob).
fn fob_in_removable_dir() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    VirtualFob,
) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("gone");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("fob.json");
    let fob = VirtualFob::new(config(&path)).unwrap();
    (dir, sub, path, fob)
}

#[test]
fn a_failed_state_write_rolls_the_change_back_with_6581() {
    let (_dir, sub, _path, mut fob) = fob_in_removable_dir();
    let data = PersoData::new(&keys().dek);
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys());
    std::fs::remove_dir_all(&sub).unwrap();
    let sws = personalize(&mut fob, &mut ch, &data);
    assert_eq!(*sws.last().unwrap(), 0x6581, "{sws:04X?}");
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
}

#[test]
fn a_fresh_fob_with_a_state_file_writes_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fob.json");
    let fob = VirtualFob::new(config(&path)).unwrap();
    assert!(path.exists());
    assert_eq!(fob.state_file(), Some(path.as_path()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "state file holds keys: owner-only");
    }
}

#[test]
fn an_unsaved_authentication_failure_stops_authentication_until_it_is_saved() {
    let (_dir, sub, path, mut fob) = fob_in_removable_dir();
    select(&mut fob, ISD_AID);
    assert_eq!(send_hex(&mut fob, "8050FF00080102030405060708").1, 0x9000);
    std::fs::remove_dir_all(&sub).unwrap();
    // A wrong cryptogram whose count cannot be written: not a plain 6982.
    let (_, sw) = send_hex(&mut fob, &format!("8482010010{}", "00".repeat(16)));
    assert_eq!(sw, 0x6581);
    assert_eq!(fob.auth_failures(), 1, "the count is kept in RAM");
    assert!(!fob.is_channel_open());
    // No new authentication while the count is not durable.
    for _ in 0..2 {
        let (_, sw) = send_hex(&mut fob, "8050FF00080102030405060708");
        assert_eq!(sw, 0x6581);
        let (_, sw) = send_hex(&mut fob, &format!("8482010010{}", "00".repeat(16)));
        assert_eq!(sw, 0x6985, "no INITIALIZE UPDATE was accepted");
    }
    assert_eq!(fob.auth_failures(), 1);
    // Once the file can be written again, the count is saved first and the
    // card authenticates as before.
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(set_isd_secured(&mut fob), 0x9000);
    drop(fob);
    assert_eq!(VirtualFob::new(config(&path)).unwrap().auth_failures(), 1);
}
