//! Dev-sample source: the specified static keys at KVN 255 plus package content.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use kf_source::{DevSampleSource, PrivateKeyMaterial, ProvisioningSource, SourceError};

#[test]
fn in_memory_dev_source_hands_out_dev_keys_and_distinct_packages() {
    let mut source = DevSampleSource::generated(2, Some(3)).unwrap();
    assert_eq!(source.name(), "dev");
    let a = source.fetch(&[0xA1; 10]).unwrap();
    let b = source.fetch(&[0xB2; 7]).unwrap();
    for input in [&a, &b] {
        assert_eq!(input.card_keys.kvn, 0xFF);
        assert_eq!(
            input.card_keys.keys.enc.expose_secret(),
            kf_profile::DEV_SAMPLE_ENC
        );
        assert_eq!(
            input.card_keys.keys.mac.expose_secret(),
            kf_profile::DEV_SAMPLE_MAC
        );
        assert_eq!(
            input.card_keys.keys.dek.expose_secret(),
            kf_profile::DEV_SAMPLE_DEK
        );
        assert!(input.transaction_id.starts_with("dev-"));
        let PrivateKeyMaterial::Scalar(s) = &input.items.private_key else {
            panic!("clear scalar expected")
        };
        assert_eq!(s.public_key().unwrap(), input.device_public_key);
    }
    assert_ne!(a.origin, b.origin);
    // A re-presented fob gets the same package; a third fob finds none left.
    assert_eq!(source.fetch(&[0xA1; 10]).unwrap().origin, a.origin);
    common::assert_exhausted(&mut source, &[0xC3; 4]);
}

#[test]
fn dev_source_over_a_pool_directory() {
    let dir = tempfile::tempdir().unwrap();
    kf_source::fixtures::generate(dir.path(), 1, Some(4)).unwrap();
    let mut source = DevSampleSource::with_pool(dir.path()).unwrap();
    let input = source.fetch(&[1, 2, 3, 4]).unwrap();
    assert_eq!(input.card_keys.kvn, 0xFF);
    assert_eq!(
        input.items.root_certificate.len(),
        std::fs::read(dir.path().join("cms_root_cert.der"))
            .unwrap()
            .len()
    );
}

#[test]
fn uids_of_bad_length_are_refused() {
    let mut source = DevSampleSource::generated(1, Some(5)).unwrap();
    assert!(matches!(
        source.fetch(&[]),
        Err(SourceError::InvalidUid { len: 0 })
    ));
    assert!(matches!(
        source.fetch(&[0; 11]),
        Err(SourceError::InvalidUid { len: 11 })
    ));
}
