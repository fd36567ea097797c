//! Synthetic pools: sizes close to the specification's, deterministic with a seed, and a
//! full round trip through `ContainerSource`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use kf_source::container::{ContainerSource, ICA_CERT_FILE, ROOT_CERT_FILE};
use kf_source::fixtures;
use kf_source::{CardKeys, PrivateKeyMaterial, ProvisioningSource, SourceError};

#[test]
fn generated_sizes_are_close_to_the_seed_packages() {
    let pool = fixtures::build(6, Some(7)).unwrap();
    eprintln!(
        "root {} ica {} devices {:?} keys {:?}",
        pool.root_cert_der.len(),
        pool.ica_cert_der.len(),
        pool.packages
            .iter()
            .map(|p| p.device_cert_der.len())
            .collect::<Vec<_>>(),
        pool.packages
            .iter()
            .map(|p| p.private_key_der.len())
            .collect::<Vec<_>>()
    );
    assert!(pool.root_cert_der.len().abs_diff(722) <= 3);
    assert!(pool.ica_cert_der.len().abs_diff(435) <= 3);
    for p in &pool.packages {
        assert!(
            (420..=426).contains(&p.device_cert_der.len()),
            "{}",
            p.device_cert_der.len()
        );
        assert_eq!(p.private_key_der.len(), 138);
        assert_eq!(p.fesn.len(), 8);
        assert!(p.fesn.starts_with("1KM"));
        assert_eq!(p.spid.len(), 40);
        assert!(p.spid.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(p.irk_base64.len(), 24);
    }
}

#[test]
fn the_same_seed_gives_the_same_pool() {
    let a = fixtures::build(2, Some(42)).unwrap();
    let b = fixtures::build(2, Some(42)).unwrap();
    let c = fixtures::build(2, Some(43)).unwrap();
    assert_eq!(a.root_cert_der, b.root_cert_der);
    assert_eq!(a.packages[1].device_cert_der, b.packages[1].device_cert_der);
    assert_eq!(
        *a.packages[1].private_key_der,
        *b.packages[1].private_key_der
    );
    assert_ne!(a.packages[0].device_cert_der, c.packages[0].device_cert_der);
}

#[test]
fn generated_pool_round_trips_through_the_container_source() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fixtures::generate(dir.path(), 3, Some(1)).unwrap();
    assert!(dir.path().join(ICA_CERT_FILE).is_file());
    assert!(dir.path().join(ROOT_CERT_FILE).is_file());

    let mut source = ContainerSource::open(dir.path(), CardKeys::dev_sample().unwrap()).unwrap();
    assert_eq!(source.name(), "container");
    assert_eq!(source.remaining().unwrap(), 3);
    let mut names: Vec<String> = pool.packages.iter().map(|p| p.dir_name()).collect();
    names.sort();

    let uids: [&[u8]; 3] = [&[1; 10], &[2; 7], &[3; 4]];
    for (i, uid) in uids.iter().enumerate() {
        let input = source.fetch(uid).unwrap();
        let expected = pool
            .packages
            .iter()
            .find(|p| p.dir_name() == names[i])
            .unwrap();
        assert_eq!(input.origin, names[i], "sorted order");
        assert_eq!(input.fob_uid, uid.to_vec());
        assert_eq!(input.card_keys.kvn, 0xFF);
        assert_eq!(input.items.spid.as_str(), expected.spid);
        assert_eq!(input.items.device_certificate, expected.device_cert_der);
        assert_eq!(input.items.ica_certificate, pool.ica_cert_der);
        assert_eq!(input.items.root_certificate, pool.root_cert_der);
        let PrivateKeyMaterial::Scalar(scalar) = &input.items.private_key else {
            panic!("expected a clear scalar");
        };
        assert_eq!(scalar.public_key().unwrap(), input.device_public_key);
        assert!(input.transaction_id.contains(&expected.fesn));
        let debug = format!("{input:?}");
        assert!(!debug.contains(&hex::encode(scalar.expose_secret())));
        assert!(!debug.contains(&hex::encode_upper(scalar.expose_secret())));
        assert!(debug.contains("[redacted]"));
    }
    assert_eq!(source.remaining().unwrap(), 0);

    // A re-presented fob gets its own package back; a new fob finds the pool empty.
    let again = source.fetch(&[2; 7]).unwrap();
    assert_eq!(again.origin, names[1]);
    common::assert_exhausted(&mut source, &[9; 10]);

    // The ledger survives a reopen: nothing is handed out twice.
    let mut reopened = ContainerSource::open(dir.path(), CardKeys::dev_sample().unwrap()).unwrap();
    common::assert_exhausted(&mut reopened, &[8; 10]);
}

#[test]
fn writing_over_an_existing_pool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::generate(dir.path(), 1, Some(5)).unwrap();
    assert!(matches!(
        fixtures::generate(dir.path(), 1, Some(6)),
        Err(SourceError::Io { .. })
    ));
}

#[test]
fn certificate_public_key_reads_the_device_key() {
    let pool = fixtures::build(1, Some(8)).unwrap();
    let pkg = &pool.packages[0];
    let key =
        <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(&pkg.private_key_der)
            .unwrap();
    assert_eq!(
        kf_source::container::certificate_public_key(&pkg.device_cert_der).unwrap(),
        key.public_key()
    );
    assert!(matches!(
        kf_source::container::certificate_public_key(&pkg.device_cert_der[..100]),
        Err(kf_source::ContainerErrorKind::BadCertificate { .. })
    ));
}
