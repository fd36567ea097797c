//! Personalization of the applet through the host side of kf-scp03: every
//! level/mode/key length, each validation failure, sequencing, refusal after
//! personalization, post-perso flags, and the key-pair verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kf_apdu::{CommandApdu, Dgi};
use kf_card::{FobConfig, TransportFlags, VirtualFob};
use kf_crypto::AesKey;
use kf_profile::{AppletLifeCycle, FobDgi, P1Style, TransportConfig, APPLET_AID, DEV_SAMPLE_KVN};
use kf_scp03::{Mode, SecurityLevel};
use p256::ecdsa::{signature::Verifier, Signature};

fn dev_fob() -> VirtualFob {
    let mut fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    fob.power_on();
    fob
}

fn dev_keys() -> kf_crypto::StaticKeys {
    kf_card::dev_sample_keys().unwrap()
}

/// A dev-sample fob personalized with a fresh set over the applet channel.
struct Personalized {
    fob: VirtualFob,
    keys: kf_crypto::StaticKeys,
    data: PersoData,
    /// The channel the set went through, still open.
    ch: kf_scp03::SecureChannel,
}

fn personalized_fob() -> Personalized {
    let mut fob = dev_fob();
    let keys = dev_keys();
    let data = PersoData::new(&keys.dek);
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    personalize(&mut fob, &mut ch, &data);
    Personalized {
        fob,
        keys,
        data,
        ch,
    }
}

fn assert_nothing_stored(fob: &VirtualFob) {
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
    assert!(fob.stored_dgi_tags().is_empty());
    assert!(fob.public_key().is_none());
    assert!(!fob.personalization_in_progress());
}

fn assert_personalized_with(fob: &VirtualFob, data: &PersoData) {
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    let mut tags: Vec<u16> = FobDgi::ALL.iter().map(|d| d.tag()).collect();
    tags.sort_unstable();
    assert_eq!(fob.stored_dgi_tags(), tags);
    for dgi in &data.dgis {
        assert_eq!(
            fob.stored_dgi(dgi.tag),
            Some(dgi.data.as_slice()),
            "{:04X}",
            dgi.tag
        );
    }
    assert_eq!(fob.public_key().unwrap(), *data.signing_key.verifying_key());
}

#[test]
fn full_personalization_at_levels_01_03_33_with_aes128_aes256_s8_s16() {
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::FULL,
    ] {
        for key_len in [16usize, 32] {
            for mode in [Mode::S8, Mode::S16] {
                for (style, empty_last) in [(P1Style::JcShell, true), (P1Style::GpDgi, false)] {
                    let keys = random_keys(key_len);
                    let config = FobConfig::dev_sample()
                        .with_only_key_set(0x30, keys.duplicate())
                        .with_mode(mode);
                    let mut fob = VirtualFob::new(config).unwrap();
                    fob.power_on();
                    let data = PersoData::new(&keys.dek);
                    let mut ch = open_channel(&mut fob, APPLET_AID, 0x30, &keys, level, mode);
                    let blocks = blocks(&data.encoded(), 200, style, empty_last);
                    let sws = send_blocks(&mut fob, &mut ch, &blocks);
                    let what = format!(
                        "level {:02X}, AES-{}, {mode:?}, {style:?}",
                        level.value(),
                        key_len * 8
                    );
                    assert!(sws.iter().all(|sw| *sw == 0x9000), "{what}: {sws:04X?}");
                    assert_eq!(sws.len(), blocks.len(), "{what}");
                    assert_personalized_with(&fob, &data);
                }
            }
        }
    }
}

#[test]
fn seed_flow_with_dev_sample_keys_at_kvn_ff_and_kvn_00() {
    for kvn in [DEV_SAMPLE_KVN, 0x00] {
        let mut fob = dev_fob();
        let keys = dev_keys();
        let data = PersoData::new(&keys.dek);
        let mut ch = applet_channel(&mut fob, kvn, &keys);
        let sws = personalize(&mut fob, &mut ch, &data);
        assert!(sws.iter().all(|sw| *sw == 0x9000), "{sws:04X?}");
        assert_personalized_with(&fob, &data);
    }
}

/// Sends the set with one DGI broken, expects `want` at some block, then
/// checks nothing was stored and a correct set still goes through.
fn expect_failure(name: &str, data: &PersoData, style: P1Style, want: u16) {
    let mut fob = dev_fob();
    let keys = dev_keys();
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    let sws = send_blocks(
        &mut fob,
        &mut ch,
        &blocks(&data.encoded(), 200, style, true),
    );
    assert_eq!(*sws.last().unwrap(), want, "{name}: {sws:04X?}");
    assert_nothing_stored(&fob);
    // The same channel can start over from P2 = 00 with good data.
    let good = PersoData::new(&keys.dek);
    let sws = personalize(&mut fob, &mut ch, &good);
    assert!(
        sws.iter().all(|sw| *sw == 0x9000),
        "{name} retry: {sws:04X?}"
    );
    assert_personalized_with(&fob, &good);
}

#[test]
fn each_dgi_validation_failure_gives_its_status_word_and_stores_nothing() {
    let dek = dev_keys().dek;
    let a003 = FobDgi::PrivateKey.tag();
    let enc = |plain: &[u8]| kf_crypto::cbc::encrypt_m2(&dek, &[0u8; 16], plain);
    let (short_scalar, zero_scalar) = (enc(&[0x11; 31]), enc(&[0u8; 32]));
    let order_n = enc(&hex::decode(
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
    )
    .unwrap());
    let mut bad_padding_plain = vec![0x11u8; 32];
    bad_padding_plain.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
    let bad_padding = kf_crypto::cbc::encrypt_no_pad(&dek, &[0u8; 16], &bad_padding_plain).unwrap();
    let mut not_minimal = Vec::new();
    not_minimal.extend_from_slice(&[0xA0, 0x06, 0xFF, 0x00, 0x10]);
    not_minimal.extend_from_slice(&[0x5A; 16]);

    let mut cert_not_sequence = fake_cert(424, 1);
    cert_not_sequence[0] = 0x31;
    // One DGI given a bad value: its tag, the value and the status word.
    let bad_values: Vec<(&str, u16, Vec<u8>, u16)> = vec![
        ("unknown DGI A007", 0xA007, vec![1, 2, 3], 0x6A88),
        ("unknown DGI 0101", 0x0101, vec![0; 8], 0x6A88),
        ("IRK 17 bytes", 0xA006, vec![0x5A; 17], 0x6A80),
        ("IRK 15 bytes", 0xA006, vec![0x5A; 15], 0x6A80),
        (
            "SPID not hex",
            0xA001,
            b"59918C0096F859EC8BF6DA454E2E554A14DD4BDZ".to_vec(),
            0x6A80,
        ),
        (
            "SPID 39 chars",
            0xA001,
            b"59918C0096F859EC8BF6DA454E2E554A14DD4BD".to_vec(),
            0x6A80,
        ),
        ("cert not DER SEQUENCE", 0xA002, cert_not_sequence, 0x6A80),
        ("cert too long", 0xA005, fake_cert(2049, 1), 0x6A80),
        ("A003 plain 32 bytes", a003, vec![0x11; 32], 0x6A80),
        ("A003 bad M2 padding", a003, bad_padding, 0x6A80),
        ("A003 31-byte scalar", a003, short_scalar, 0x6A80),
        ("A003 zero scalar", a003, zero_scalar, 0x6A80),
        ("A003 scalar = n", a003, order_n, 0x6A80),
    ];
    for (name, tag, value, want) in bad_values {
        let mut data = PersoData::new(&dek);
        data.set(tag, value);
        expect_failure(name, &data, P1Style::JcShell, want);
    }
    // The set itself broken.
    let mut duplicate = PersoData::new(&dek);
    duplicate.dgis.push(Dgi::new(0xA006, vec![0x5A; 16]));
    expect_failure("duplicate DGI", &duplicate, P1Style::JcShell, 0x6A80);
    let mut missing = PersoData::new(&dek);
    missing.remove(0xA004);
    expect_failure("missing DGI", &missing, P1Style::JcShell, 0x6985);

    // Non-minimal DGI length encoding (FF 0010 for 16 bytes).
    let mut fob = dev_fob();
    let keys = dev_keys();
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    let (_, sw) = send_secured(&mut fob, &mut ch, store_data_cmd(0x00, 0x00, &not_minimal));
    assert_eq!(sw, 0x6A80);
    assert_nothing_stored(&fob);

    // Last block ending inside a DGI.
    let mut fob = dev_fob();
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    let (_, sw) = send_secured(
        &mut fob,
        &mut ch,
        store_data_cmd(0x80, 0x00, &[0xA0, 0x06, 0x10, 1, 2]),
    );
    assert_eq!(sw, 0x6A80);
    assert_nothing_stored(&fob);

    // P1 with BER-TLV structure or RFU bits.
    for p1 in [0x10u8, 0x01, 0x90] {
        let mut fob = dev_fob();
        let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
        let (_, sw) = send_secured(
            &mut fob,
            &mut ch,
            store_data_cmd(p1, 0x00, &[0xA0, 0x06, 0x10]),
        );
        assert_eq!(sw, 0x6A86, "P1 {p1:02X}");
        assert_nothing_stored(&fob);
    }
}

#[test]
fn out_of_order_block_numbers_are_6a86_and_discard_the_sequence() {
    let keys = dev_keys();
    let data = PersoData::new(&keys.dek);
    let all = blocks(&data.encoded(), 200, P1Style::JcShell, true);
    let orders: Vec<(&str, Vec<usize>)> = vec![
        ("skip", vec![0, 2]),
        ("repeat", vec![0, 1, 1]),
        ("start at 1", vec![1]),
        ("swap", vec![0, 2, 1]),
    ];
    for (name, order) in orders {
        let mut fob = dev_fob();
        let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
        let sent: Vec<_> = order.iter().map(|i| all[*i].clone()).collect();
        let sws = send_blocks(&mut fob, &mut ch, &sent);
        assert_eq!(*sws.last().unwrap(), 0x6A86, "{name}: {sws:04X?}");
        assert_nothing_stored(&fob);
        // Continuing with the next expected block is refused too: the sequence is gone.
        let continuation = format!("{name}: continuation");
        assert_block_2_refused_then_personalized(&mut fob, &mut ch, &all, &data, &continuation);
    }
}

#[test]
fn personalization_is_refused_once_personalized() {
    let Personalized {
        mut fob,
        keys,
        data,
        mut ch,
    } = personalized_fob();
    let other = PersoData::new(&keys.dek);
    let (_, sw) = send_secured(
        &mut fob,
        &mut ch,
        store_data_cmd(0x00, 0x00, &other.encoded()[..100]),
    );
    assert_eq!(sw, 0x6985);
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    let sws = personalize(&mut fob, &mut ch, &other);
    assert_eq!(sws, vec![0x6985]);
    assert_personalized_with(&fob, &data);
}

#[test]
fn store_data_needs_the_secure_channel_of_the_applet() {
    let mut fob = dev_fob();
    let keys = dev_keys();
    let data = PersoData::new(&keys.dek);
    let _ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    // Plain STORE DATA while a C-MAC channel is open.
    let (_, sw) = send_plain(
        &mut fob,
        &store_data_cmd(0x00, 0x00, &data.encoded()[..50]).to_bytes(),
    );
    assert_eq!(sw, 0x6982);
    // A forged C-MAC closes the channel.
    let mut ch = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    let mut wrapped = ch
        .wrap(store_data_cmd(0x00, 0x00, &data.encoded()[..50]))
        .unwrap()
        .to_bytes();
    let last = wrapped.len() - 1;
    wrapped[last] ^= 0x01;
    assert_eq!(send_plain(&mut fob, &wrapped).1, 0x6982);
    assert!(!fob.is_channel_open());
    assert_nothing_stored(&fob);
    // A channel with the ISD does not reach the applet: STORE DATA is not an ISD command.
    let mut ch = open_channel(
        &mut fob,
        kf_profile::ISD_AID,
        DEV_SAMPLE_KVN,
        &keys,
        SecurityLevel::C_MAC,
        Mode::S8,
    );
    let (_, sw) = send_secured(
        &mut fob,
        &mut ch,
        store_data_cmd(0x00, 0x00, &data.encoded()[..50]),
    );
    assert_eq!(sw, 0x6D00);
}

#[test]
fn wrong_host_cryptogram_is_6982_and_counted() {
    let mut fob = dev_fob();
    let keys = dev_keys();
    assert_eq!(select(&mut fob, APPLET_AID), 0x9000);
    for attempt in 1..=3u32 {
        let (iu, awaiting) = kf_scp03::HostSession::new(keys.duplicate())
            .security_level(SecurityLevel::C_MAC)
            .initialize_update(DEV_SAMPLE_KVN, &[attempt as u8; 8])
            .unwrap();
        let resp = kf_apdu::ResponseApdu::parse(&fob.process_apdu(&iu.to_bytes())).unwrap();
        let (ea, _) = awaiting.process_response(&resp).unwrap();
        let mut ea = ea.to_bytes();
        ea[5] ^= 0xFF; // first byte of the host cryptogram
        assert_eq!(send_plain(&mut fob, &ea).1, 0x6982);
        assert_eq!(fob.auth_failures(), attempt);
        assert!(!fob.is_channel_open());
    }
    // A host with the wrong keys never gets that far: the card cryptogram fails on the host.
    let wrong = random_keys(16);
    let (iu, awaiting) = kf_scp03::HostSession::new(wrong)
        .initialize_update(DEV_SAMPLE_KVN, &[9; 8])
        .unwrap();
    let resp = kf_apdu::ResponseApdu::parse(&fob.process_apdu(&iu.to_bytes())).unwrap();
    assert!(matches!(
        awaiting.process_response(&resp),
        Err(kf_scp03::Scp03Error::CardCryptogramMismatch)
    ));
    // The right keys still work.
    let _ = applet_channel(&mut fob, DEV_SAMPLE_KVN, &keys);
    assert!(fob.is_channel_open());
}

#[test]
fn post_perso_commands_set_transport_flags() {
    let Personalized { mut fob, .. } = personalized_fob();
    assert_eq!(fob.transport_flags(), TransportFlags::default());
    assert_eq!(
        send_plain(&mut fob, &TransportConfig::Uicc.enable_command()).1,
        0x9000
    );
    assert_eq!(
        fob.transport_flags(),
        TransportFlags {
            uicc: true,
            ble: false
        }
    );
    assert_eq!(
        send_plain(&mut fob, &TransportConfig::Ble.enable_command()).1,
        0x9000
    );
    assert_eq!(
        fob.transport_flags(),
        TransportFlags {
            uicc: true,
            ble: true
        }
    );
    for (apdu, want) in [
        ("00DB0000030C0101", 0x6A88), // unknown configuration id
        ("00DB0000030A0201", 0x6A80), // length byte
        ("00DB0000030A0102", 0x6A80), // value
        ("00DB0000020A01", 0x6700),
        ("00DB0100030A0101", 0x6A86),
    ] {
        assert_eq!(send_hex(&mut fob, apdu).1, want, "{apdu}");
    }
    assert_eq!(send_hex(&mut fob, "00DB0000030B0100").1, 0x9000);
    assert_eq!(
        fob.transport_flags(),
        TransportFlags {
            uicc: true,
            ble: false
        }
    );
}

#[test]
fn verification_signature_verifies_against_the_provisioned_public_key() {
    let Personalized {
        mut fob,
        data,
        mut ch,
        ..
    } = personalized_fob();
    let public = data.signing_key.verifying_key();
    for len in [16usize, 32, 64] {
        let challenge: Vec<u8> = (0..len as u8).collect();
        let cmd = CommandApdu::new(0x00, 0x88, 0x00, 0x00)
            .with_data(challenge.clone())
            .with_le(256);
        let (der, sw) = send_plain(&mut fob, &cmd.to_bytes());
        assert_eq!(sw, 0x9000);
        let sig = Signature::from_der(&der).unwrap();
        public.verify(&challenge, &sig).unwrap();
        let mut other = challenge.clone();
        other[0] ^= 1;
        assert!(public.verify(&other, &sig).is_err());
    }
    // Also inside the secure channel.
    let challenge = [7u8; 32];
    let cmd = CommandApdu::new(0x00, 0x88, 0x00, 0x00)
        .with_data(challenge.to_vec())
        .with_le(256);
    let (der, sw) = send_secured(&mut fob, &mut ch, cmd);
    assert_eq!(sw, 0x9000);
    public
        .verify(&challenge, &Signature::from_der(&der).unwrap())
        .unwrap();
    // Bad lengths and parameters.
    assert_eq!(
        send_hex(&mut fob, &format!("008800000F{}00", "00".repeat(15))).1,
        0x6700
    );
    assert_eq!(
        send_hex(&mut fob, &format!("0088000041{}00", "00".repeat(65))).1,
        0x6700
    );
    assert_eq!(
        send_hex(&mut fob, &format!("0088010010{}00", "00".repeat(16))).1,
        0x6A86
    );
}

#[test]
fn dek_of_the_channel_key_set_decrypts_a003() {
    // Two key sets: A003 encrypted under the other set's DEK must fail.
    let k1 = random_keys(16);
    let k2 = random_keys(16);
    let config = FobConfig::dev_sample()
        .with_only_key_set(0x01, k1.duplicate())
        .with_key_set(0x02, k2.duplicate());
    let mut fob = VirtualFob::new(config).unwrap();
    let data = PersoData::new(&k2.dek);
    let mut ch = applet_channel(&mut fob, 0x01, &k1);
    let sws = personalize(&mut fob, &mut ch, &data);
    assert_eq!(*sws.last().unwrap(), 0x6A80, "{sws:04X?}");
    assert_nothing_stored(&fob);
    let mut ch = applet_channel(&mut fob, 0x02, &k2);
    let sws = personalize(&mut fob, &mut ch, &data);
    assert!(sws.iter().all(|sw| *sw == 0x9000));
    let _unused: Option<AesKey> = None;
}

#[test]
fn security_level_00_and_wrong_challenge_length_are_refused() {
    let keys = dev_keys();
    let mut fob = dev_fob();
    assert_eq!(select(&mut fob, APPLET_AID), 0x9000);
    let (iu, awaiting) = kf_scp03::HostSession::new(keys.duplicate())
        .security_level(SecurityLevel::NONE)
        .initialize_update(DEV_SAMPLE_KVN, &[3; 8])
        .unwrap();
    let resp = kf_apdu::ResponseApdu::parse(&fob.process_apdu(&iu.to_bytes())).unwrap();
    let (ea, _) = awaiting.process_response(&resp).unwrap();
    assert_eq!(send_plain(&mut fob, &ea.to_bytes()).1, 0x6A86);
    assert!(!fob.is_channel_open());
    assert_eq!(
        fob.auth_failures(),
        0,
        "a refused level is not a failed authentication"
    );
    // S16 card, S8 host challenge (and vice versa).
    let mut s16 = VirtualFob::new(FobConfig::dev_sample().with_mode(Mode::S16)).unwrap();
    assert_eq!(send_hex(&mut s16, "8050FF00080102030405060708").1, 0x6700);
    assert_eq!(
        send_hex(&mut fob, &format!("8050FF0010{}", "01".repeat(16))).1,
        0x6700
    );
    // ISO class INITIALIZE UPDATE.
    assert_eq!(send_hex(&mut fob, "0050FF00080102030405060708").1, 0x6E00);
}
