//! Signed package manifests: verified when present, required by policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::pool;
use kf_source::container::manifest::{sign_manifest, ManifestPolicy, MANIFEST_FILE};
use kf_source::container::{ContainerSource, PackageFiles, IRK_FILE};
use kf_source::{CardKeys, ContainerErrorKind, PoolOptions, SourceError};
use p256::ecdsa::SigningKey;

fn producer(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

fn sign(pool: &Path, name: &str, key: &SigningKey) {
    let dir = pool.join(name);
    let files = PackageFiles::read(&dir).unwrap();
    std::fs::write(dir.join(MANIFEST_FILE), sign_manifest(name, &files, key)).unwrap();
}

fn source(pool: &Path, key: Option<&SigningKey>, required: bool) -> ContainerSource {
    let options = PoolOptions {
        manifest: ManifestPolicy {
            key: key.map(|k| p256::PublicKey::from(k.verifying_key())),
            required,
        },
        ..PoolOptions::default()
    };
    ContainerSource::open_with(pool, CardKeys::dev_sample().unwrap(), &options).unwrap()
}

fn load_err(source: &ContainerSource, name: &str) -> (ContainerErrorKind, PathBuf) {
    let err = source.load_package(name).unwrap_err();
    (err.kind().clone(), err.path().to_path_buf())
}

#[test]
fn a_signed_package_loads_and_an_unsigned_one_only_when_not_required() {
    let (_dir, pool, names) = pool(2, 61);
    let key = producer(7);
    sign(&pool, &names[0], &key);
    assert!(source(&pool, Some(&key), true)
        .load_package(&names[0])
        .is_ok());
    assert!(source(&pool, Some(&key), false)
        .load_package(&names[1])
        .is_ok());
    let (kind, path) = load_err(&source(&pool, Some(&key), true), &names[1]);
    assert_eq!(kind, ContainerErrorKind::ManifestMissing);
    assert!(path.ends_with(format!("{}/{MANIFEST_FILE}", names[1])));
    let err = source(&pool, Some(&key), true)
        .load_package(&names[1])
        .unwrap_err()
        .to_string();
    assert!(err.contains(&names[1]) && err.contains("rule"), "{err}");
    // A manifest that cannot be verified is not ignored.
    let (kind, _) = load_err(&source(&pool, None, false), &names[0]);
    assert_eq!(kind, ContainerErrorKind::ManifestKeyMissing);
    // Requiring manifests without a key is a configuration error.
    let options = PoolOptions {
        manifest: ManifestPolicy {
            key: None,
            required: true,
        },
        ..PoolOptions::default()
    };
    assert!(matches!(
        ContainerSource::open_with(&pool, CardKeys::dev_sample().unwrap(), &options),
        Err(SourceError::ManifestKeyRequired)
    ));
}

#[test]
fn a_changed_file_another_signer_or_another_packages_manifest_is_refused() {
    let (_dir, pool, names) = pool(2, 62);
    let key = producer(7);
    sign(&pool, &names[0], &key);
    sign(&pool, &names[1], &key);
    let strict = source(&pool, Some(&key), true);

    // A file replaced after signing (a valid IRK, just not the signed one).
    let irk = pool.join(&names[0]).join(IRK_FILE);
    let original = std::fs::read(&irk).unwrap();
    std::fs::write(
        &irk,
        base64::engine::general_purpose::STANDARD.encode([0x42u8; 16]),
    )
    .unwrap();
    let (kind, path) = load_err(&strict, &names[0]);
    assert_eq!(kind, ContainerErrorKind::ManifestHashMismatch);
    assert!(path.ends_with(IRK_FILE));
    std::fs::write(&irk, &original).unwrap();
    assert!(strict.load_package(&names[0]).is_ok());

    // Signed by someone else.
    let (kind, _) = load_err(&source(&pool, Some(&producer(8)), true), &names[0]);
    assert_eq!(kind, ContainerErrorKind::BadManifestSignature);

    // The manifest of another package (the SPID is in the directory name).
    std::fs::copy(
        pool.join(&names[1]).join(MANIFEST_FILE),
        pool.join(&names[0]).join(MANIFEST_FILE),
    )
    .unwrap();
    let (kind, _) = load_err(&strict, &names[0]);
    assert!(
        matches!(&kind, ContainerErrorKind::BadManifest { reason } if reason.contains(&names[1])),
        "{kind:?}"
    );
}

#[test]
fn manifest_json_is_parsed_strictly() {
    let (_dir, pool, names) = pool(1, 63);
    let key = producer(7);
    sign(&pool, &names[0], &key);
    let path = pool.join(&names[0]).join(MANIFEST_FILE);
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let strict = source(&pool, Some(&key), true);
    let mut cases: Vec<String> = Vec::new();
    let mut extra = good.clone();
    extra["comment"] = "x".into();
    cases.push(extra.to_string());
    let mut extra_file = good.clone();
    extra_file["files"]["notes.txt"] = "00".repeat(32).into();
    cases.push(extra_file.to_string());
    let mut missing = good.clone();
    missing["files"].as_object_mut().unwrap().remove(IRK_FILE);
    cases.push(missing.to_string());
    let mut upper = good.clone();
    let hash = upper["files"][IRK_FILE].as_str().unwrap().to_uppercase();
    upper["files"][IRK_FILE] = hash.into();
    cases.push(upper.to_string());
    let mut format = good.clone();
    format["format"] = "kf-package-manifest/v2".into();
    cases.push(format.to_string());
    let text = good.to_string();
    cases.push(text.replacen("{", r#"{"package":"x","#, 1));
    cases.push("not json".into());
    for case in cases {
        std::fs::write(&path, &case).unwrap();
        let (kind, _) = load_err(&strict, &names[0]);
        assert!(
            matches!(kind, ContainerErrorKind::BadManifest { .. }),
            "{case}: {kind:?}"
        );
    }
}
