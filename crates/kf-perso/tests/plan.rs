//! DGI plan at the specified sizes (provisioning specification: device certificate 424 B, ICA 435 B,
//! root 722 B, P-256 key, SPID, IRK) for security levels 01 and 33.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{Dgi, MAX_SHORT_DATA_LEN as SHORT_LC_LIMIT};
use kf_perso::{LastBlockStyle, PersoPlan, PlanError, PlanOptions};
use kf_profile::P1Style;
use kf_scp03::{max_plain_data_len, wrapped_data_len, Mode, SecurityLevel};
use kf_source::{
    BleIrk, CardKeys, EncryptedScalar, PersonalizationItems, PrivateKeyMaterial, PrivateScalar,
    ProvisioningInput, Spid,
};

const SCALAR: [u8; 32] = [
    0xC9, 0xAF, 0xA9, 0xD8, 0x45, 0xBA, 0x75, 0x16, 0x6B, 0x5C, 0x21, 0x57, 0x67, 0xB1, 0xD6, 0x93,
    0x4E, 0x50, 0xC3, 0xDB, 0x36, 0xE8, 0x9B, 0x12, 0x7B, 0x8A, 0x62, 0x2B, 0x12, 0x0F, 0x67, 0x21,
];
const SPID: &str = "59918C0096F859EC8BF6DA454E2E554A14DD4BD1";
const IRK: [u8; 16] = [0x5A; 16];

/// Certificate-shaped bytes (a DER SEQUENCE header) of an exact size.
fn cert_like(len: usize, fill: u8) -> Vec<u8> {
    let mut v = vec![fill; len];
    v[0] = 0x30;
    v[1] = 0x82;
    v[2] = ((len - 4) >> 8) as u8;
    v[3] = (len - 4) as u8;
    v
}

fn specified_input() -> ProvisioningInput {
    let scalar = PrivateScalar::from_bytes(&SCALAR).unwrap();
    let device_public_key = scalar.public_key().unwrap();
    ProvisioningInput {
        fob_uid: vec![0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99],
        transaction_id: "trx_test".to_owned(),
        card_keys: CardKeys::dev_sample().unwrap(),
        items: PersonalizationItems {
            spid: Spid::new(SPID).unwrap(),
            device_certificate: cert_like(424, 0xD1),
            private_key: PrivateKeyMaterial::Scalar(scalar),
            ica_certificate: cert_like(435, 0xC4),
            root_certificate: cert_like(722, 0xB5),
            ble_irk: BleIrk::from_bytes(&IRK).unwrap(),
        },
        device_public_key,
        origin: "test".to_owned(),
    }
}

fn encrypted_scalar() -> Vec<u8> {
    let dek = kf_crypto::AesKey::from_slice(&kf_profile::DEV_SAMPLE_DEK).unwrap();
    kf_crypto::cbc::encrypt_m2(&dek, &[0; 16], &SCALAR)
}

/// The DGI stream written by hand: A003, A001, A002, A004, A005, A006.
fn expected_stream() -> Vec<u8> {
    let mut s = vec![0xA0, 0x03, 48];
    s.extend(encrypted_scalar());
    s.extend([0xA0, 0x01, 40]);
    s.extend(SPID.as_bytes());
    s.extend([0xA0, 0x02, 0xFF, 0x01, 0xA8]);
    s.extend(cert_like(424, 0xD1));
    s.extend([0xA0, 0x04, 0xFF, 0x01, 0xB3]);
    s.extend(cert_like(435, 0xC4));
    s.extend([0xA0, 0x05, 0xFF, 0x02, 0xD2]);
    s.extend(cert_like(722, 0xB5));
    s.extend([0xA0, 0x06, 16]);
    s.extend(IRK);
    s
}

fn options(level: SecurityLevel, mode: Mode, style: P1Style) -> PlanOptions {
    PlanOptions {
        security_level: level,
        mode,
        p1_style: style,
        ..PlanOptions::default()
    }
}

const LEVELS: [SecurityLevel; 2] = [SecurityLevel::C_MAC, SecurityLevel::FULL];

#[test]
fn block_capacity_arithmetic_for_s8_and_s16() {
    assert_eq!(max_plain_data_len(SecurityLevel::C_MAC, Mode::S8, 255), 247);
    assert_eq!(
        max_plain_data_len(SecurityLevel::C_MAC, Mode::S16, 255),
        239
    );
    assert_eq!(
        max_plain_data_len(SecurityLevel::C_DEC_C_MAC, Mode::S8, 255),
        239
    );
    assert_eq!(max_plain_data_len(SecurityLevel::FULL, Mode::S8, 255), 239);
    assert_eq!(max_plain_data_len(SecurityLevel::FULL, Mode::S16, 255), 223);
    assert_eq!(max_plain_data_len(SecurityLevel::NONE, Mode::S8, 255), 255);
    // The limits are tight: one more byte no longer fits.
    for level in SecurityLevel::ALL {
        for mode in [Mode::S8, Mode::S16] {
            let n = max_plain_data_len(level, mode, 255);
            assert!(
                wrapped_data_len(level, mode, n) <= 255,
                "{level:?} {mode:?}"
            );
            assert!(
                wrapped_data_len(level, mode, n + 1) > 255,
                "{level:?} {mode:?}"
            );
        }
    }
    assert_eq!(PlanOptions::default().block_capacity(), 247);
}

#[test]
fn every_wrapped_block_fits_a_short_lc() {
    let input = specified_input();
    for level in LEVELS {
        for mode in [Mode::S8, Mode::S16] {
            let opts = options(level, mode, P1Style::JcShell);
            let plan = PersoPlan::build(&input, &opts).unwrap();
            let capacity = opts.block_capacity();
            for (i, block) in plan.blocks().iter().enumerate() {
                let len = block.command.data().len();
                assert!(len <= capacity);
                assert!(wrapped_data_len(level, mode, len) <= SHORT_LC_LIMIT);
                // Every block but the last is full.
                if i + 1 < plan.blocks().len() {
                    assert_eq!(len, capacity);
                }
                assert!(block.command.to_bytes_short().is_ok());
            }
            let expected_blocks = expected_stream().len().div_ceil(capacity);
            assert_eq!(plan.blocks().len(), expected_blocks, "{level:?} {mode:?}");
        }
    }
}

#[test]
fn blocks_reassemble_to_the_exact_dgi_stream() {
    let input = specified_input();
    for level in LEVELS {
        let plan = PersoPlan::build(&input, &options(level, Mode::S8, P1Style::JcShell)).unwrap();
        let joined: Vec<u8> = plan
            .blocks()
            .iter()
            .flat_map(|b| b.command.data().to_vec())
            .collect();
        assert_eq!(joined, expected_stream());
        assert_eq!(plan.expose_stream(), expected_stream().as_slice());
        let dgis = Dgi::decode_sequence(&joined).unwrap();
        let tags: Vec<u16> = dgis.iter().map(|d| d.tag).collect();
        assert_eq!(tags, [0xA003, 0xA001, 0xA002, 0xA004, 0xA005, 0xA006]);
        assert_eq!(dgis[2].data.len(), 424);
        assert_eq!(dgis[3].data.len(), 435);
        assert_eq!(dgis[4].data.len(), 722);
    }
}

#[test]
fn a003_decrypts_to_the_scalar_with_the_static_dek() {
    let plan = PersoPlan::build(&specified_input(), &PlanOptions::default()).unwrap();
    let dgis = Dgi::decode_sequence(plan.expose_stream()).unwrap();
    let a003 = dgis.iter().find(|d| d.tag == 0xA003).unwrap();
    assert_eq!(a003.data.len(), 48);
    let dek = kf_crypto::AesKey::from_slice(&kf_profile::DEV_SAMPLE_DEK).unwrap();
    assert_eq!(
        kf_crypto::cbc::decrypt_m2(&dek, &[0; 16], &a003.data).unwrap(),
        SCALAR
    );
    // A wrong DEK does not give the scalar back.
    let other = kf_crypto::AesKey::from_slice(&kf_profile::DEV_SAMPLE_MAC).unwrap();
    assert_ne!(
        kf_crypto::cbc::decrypt_m2(&other, &[0; 16], &a003.data).ok(),
        Some(SCALAR.to_vec())
    );
}

#[test]
fn pre_encrypted_a003_is_written_unchanged() {
    let mut input = specified_input();
    let blob: Vec<u8> = (0u8..48).collect();
    input.items.private_key =
        PrivateKeyMaterial::DekEncrypted(EncryptedScalar::from_bytes(&blob).unwrap());
    let plan = PersoPlan::build(&input, &PlanOptions::default()).unwrap();
    assert_eq!(&plan.expose_stream()[..3], &[0xA0, 0x03, 48]);
    assert_eq!(&plan.expose_stream()[3..51], blob.as_slice());
}

#[test]
fn p2_counts_from_zero_and_the_lifecycle_block_comes_last() {
    let plan = PersoPlan::build(&specified_input(), &PlanOptions::default()).unwrap();
    let n = plan.blocks().len();
    for (i, block) in plan.blocks().iter().enumerate() {
        assert_eq!(block.command.cla(), 0x80);
        assert_eq!(block.command.ins(), 0xE2);
        assert_eq!(usize::from(block.command.p2()), i);
        assert_eq!(block.command.le(), None);
    }
    let lifecycle = plan.lifecycle_command().unwrap();
    assert_eq!(lifecycle.to_bytes(), vec![0x80, 0xE2, 0x80, n as u8]);
    let all: Vec<u8> = plan.commands().map(|c| c.p2()).collect();
    assert_eq!(all, (0..=n as u8).collect::<Vec<_>>());
}

#[test]
fn p1_follows_the_style() {
    let input = specified_input();
    // JCShell: 00 on data blocks, 80 on the separate empty block.
    let plan = PersoPlan::build(&input, &PlanOptions::default()).unwrap();
    assert!(plan.blocks().iter().all(|b| b.command.p1() == 0x00));
    assert_eq!(plan.lifecycle_command().unwrap().p1(), 0x80);

    // GP DGI style: structure bit everywhere, encryption bits where A003 travels.
    let opts = options(SecurityLevel::C_MAC, Mode::S8, P1Style::GpDgi);
    let plan = PersoPlan::build(&input, &opts).unwrap();
    assert_eq!(plan.blocks()[0].command.p1(), 0x28);
    assert!(plan.blocks()[1..].iter().all(|b| b.command.p1() == 0x08));
    assert_eq!(plan.lifecycle_command().unwrap().p1(), 0x88);

    // b8 on the last data block, no separate step.
    let opts = PlanOptions {
        last_block: LastBlockStyle::OnLastDataBlock,
        ..opts
    };
    let plan = PersoPlan::build(&input, &opts).unwrap();
    assert!(plan.lifecycle_command().is_none());
    let (last, rest) = plan.blocks().split_last().unwrap();
    assert_eq!(last.command.p1(), 0x88);
    assert!(rest.iter().all(|b| b.command.p1() & 0x80 == 0));
    for b in plan.blocks() {
        let p1 = kf_apdu::gp::StoreDataP1::from_byte_strict(b.command.p1()).unwrap();
        assert!(kf_profile::accepts_store_data_p1(&p1));
    }
}

#[test]
fn only_blocks_with_secret_dgi_bytes_are_sensitive() {
    let plan = PersoPlan::build(&specified_input(), &PlanOptions::default()).unwrap();
    let enc_hex = hex::encode_upper(&encrypted_scalar()[..8]);
    let last = plan.blocks().len() - 1;
    for (i, block) in plan.blocks().iter().enumerate() {
        // A003 (private key) opens the stream, A006 (BLE IRK) closes it.
        assert_eq!(
            block.command.is_sensitive(),
            i == 0 || i == last,
            "block {i}"
        );
        assert_eq!(block.carries_encrypted_dgi, i == 0);
        let shown = format!("{} {:?}", block.command, block.command);
        assert!(!shown.contains(&enc_hex), "{shown}");
    }
    assert!(format!("{plan:?}").len() < 2000);
    assert!(!format!("{plan:?}").contains(&enc_hex));
}

/// The default options with extended length and commands of at most `max_lc` data bytes.
fn extended(max_lc: usize) -> PlanOptions {
    PlanOptions {
        extended_length: true,
        max_extended_lc: max_lc,
        ..PlanOptions::default()
    }
}

#[test]
fn a003_split_across_blocks_marks_both() {
    // Extended length with a 40-byte limit: A003 (51 bytes) spans two blocks.
    let opts = extended(40);
    let plan = PersoPlan::build(&specified_input(), &opts).unwrap();
    assert_eq!(opts.block_capacity(), 32);
    let flags: Vec<bool> = plan
        .blocks()
        .iter()
        .map(|b| b.command.is_sensitive())
        .collect();
    assert_eq!(&flags[..3], &[true, true, false]);
}

#[test]
fn extended_length_gives_larger_blocks() {
    let opts = PlanOptions {
        security_level: SecurityLevel::FULL,
        ..extended(1024)
    };
    let plan = PersoPlan::build(&specified_input(), &opts).unwrap();
    assert_eq!(opts.block_capacity(), 1007);
    assert_eq!(plan.blocks().len(), 2);
    assert!(plan.blocks()[0].command.is_extended());
}

#[test]
fn oversized_plans_and_invalid_items_are_refused() {
    let tiny = extended(9);
    assert!(matches!(
        PersoPlan::build(&specified_input(), &tiny),
        Err(PlanError::TooManyBlocks { .. })
    ));
    let none = PlanOptions {
        max_extended_lc: 8,
        ..tiny
    };
    assert!(matches!(
        PersoPlan::build(&specified_input(), &none),
        Err(PlanError::NoRoomForData { lc_limit: 8 })
    ));
    let mut input = specified_input();
    input.items.device_certificate = vec![0x31; 424];
    assert!(matches!(
        PersoPlan::build(&input, &PlanOptions::default()),
        Err(PlanError::InvalidDgi(
            kf_profile::ProfileError::BadDgiValue { tag: 0xA002, .. }
        ))
    ));
}

#[test]
fn plan_from_a_generated_container_package() {
    use kf_source::ProvisioningSource;
    let mut source = kf_source::DevSampleSource::generated(1, Some(9)).unwrap();
    let input = source.fetch(&[0x04, 1, 2, 3, 4, 5, 6]).unwrap();
    for level in LEVELS {
        let plan = PersoPlan::build(&input, &options(level, Mode::S8, P1Style::GpDgi)).unwrap();
        let dgis = Dgi::decode_sequence(plan.expose_stream()).unwrap();
        assert_eq!(dgis[1].data, input.items.spid.as_bytes());
        assert_eq!(dgis[2].data, input.items.device_certificate);
        assert_eq!(dgis[3].data, input.items.ica_certificate);
        assert_eq!(dgis[4].data, input.items.root_certificate);
        assert_eq!(&dgis[5].data[..], input.items.ble_irk.expose_secret());
        let PrivateKeyMaterial::Scalar(scalar) = &input.items.private_key else {
            panic!("clear scalar expected")
        };
        let clear =
            kf_crypto::cbc::decrypt_m2(&input.card_keys.keys.dek, &[0; 16], &dgis[0].data).unwrap();
        assert_eq!(clear.as_slice(), scalar.expose_secret());
        for block in plan.blocks() {
            assert!(
                wrapped_data_len(level, Mode::S8, block.command.data().len()) <= SHORT_LC_LIMIT
            );
        }
    }
}
