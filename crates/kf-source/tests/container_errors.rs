//! Every malformed or inconsistent container file gives its own error naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use kf_source::container::{
    ContainerSource, DEVICE_CERT_FILE, FESN_FILE, ICA_CERT_FILE, IRK_FILE, PRIVATE_KEY_FILE,
    ROOT_CERT_FILE,
};
use kf_source::fixtures::{self, FixturePool};
use kf_source::{CardKeys, ContainerError, ContainerErrorKind, ProvisioningSource, SourceError};
use p256::pkcs8::DecodePrivateKey;

struct Pool {
    dir: tempfile::TempDir,
    fixture: FixturePool,
}

impl Pool {
    fn new(count: usize, seed: u64) -> Pool {
        let dir = tempfile::tempdir().unwrap();
        let fixture = fixtures::generate(dir.path(), count, Some(seed)).unwrap();
        Pool { dir, fixture }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The package names in sorted order (the order fetch hands them out).
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.fixture.packages.iter().map(|p| p.dir_name()).collect();
        names.sort();
        names
    }

    /// The first package in sorted order (the one fetch hands out first).
    fn first(&self) -> String {
        self.names().remove(0)
    }

    fn file(&self, name: &str, file: &str) -> PathBuf {
        self.path().join(name).join(file)
    }

    fn source(&self) -> ContainerSource {
        ContainerSource::open(self.path(), CardKeys::dev_sample().unwrap()).unwrap()
    }

    /// Loads `name` and returns the error kind and the file it names.
    fn load_err(&self, name: &str) -> (ContainerErrorKind, PathBuf) {
        let err = self.source().load_package(name).unwrap_err();
        (err.kind().clone(), err.path().to_path_buf())
    }

    /// Applies `damage` to `file` of the first package and loads it; the
    /// error must name that file. Returns the error kind.
    fn damaged_err(&self, file: &str, damage: impl FnOnce(&Path)) -> ContainerErrorKind {
        let name = self.first();
        damage(&self.file(&name, file));
        self.load_err_naming(&name, file)
    }

    /// Loads `name`; the error must name `file`. Returns the error kind.
    fn load_err_naming(&self, name: &str, file: &str) -> ContainerErrorKind {
        let (kind, path) = self.load_err(name);
        assert!(path.ends_with(file), "{kind:?} names {}", path.display());
        kind
    }

    /// Opening the pool fails with a container error; returns it.
    fn open_err(&self) -> ContainerError {
        match ContainerSource::open(self.path(), CardKeys::dev_sample().unwrap()) {
            Err(SourceError::Container(err)) => err,
            Err(err) => panic!("{err:?}"),
            Ok(_) => panic!("the pool opened"),
        }
    }
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap();
}

fn truncate(path: &Path, keep: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..keep]).unwrap();
}

#[test]
fn an_untouched_package_loads() {
    let pool = Pool::new(1, 11);
    let name = pool.first();
    let pkg = pool.source().load_package(&name).unwrap();
    assert_eq!(name, format!("{}-{}", pkg.fesn, pkg.spid));
}

#[test]
fn truncated_private_key_der_and_device_certificate() {
    type Expected = fn(&ContainerErrorKind) -> bool;
    let cases: [(u64, &str, usize, Expected); 2] = [
        (12, PRIVATE_KEY_FILE, 60, |k| {
            matches!(k, ContainerErrorKind::BadPrivateKey { .. })
        }),
        (13, DEVICE_CERT_FILE, 300, |k| {
            matches!(k, ContainerErrorKind::BadCertificate { .. })
        }),
    ];
    for (seed, file, keep, expected) in cases {
        let kind = Pool::new(1, seed).damaged_err(file, |f| truncate(f, keep));
        assert!(expected(&kind), "{file}: {kind:?}");
    }
}

#[test]
fn private_key_of_another_fob() {
    let pool = Pool::new(2, 14);
    let names = pool.names();
    std::fs::copy(
        pool.file(&names[1], PRIVATE_KEY_FILE),
        pool.file(&names[0], PRIVATE_KEY_FILE),
    )
    .unwrap();
    assert_eq!(
        pool.load_err_naming(&names[0], PRIVATE_KEY_FILE),
        ContainerErrorKind::KeyMismatch
    );
}

#[test]
fn sec1_private_key_is_accepted() {
    let pool = Pool::new(1, 15);
    let name = pool.first();
    let path = pool.file(&name, PRIVATE_KEY_FILE);
    let key = p256::SecretKey::from_pkcs8_der(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::write(&path, key.to_sec1_der().unwrap().as_slice()).unwrap();
    let pkg = pool.source().load_package(&name).unwrap();
    assert_eq!(pkg.device_public_key, key.public_key());
}

#[test]
fn device_certificate_from_another_ica() {
    let pool = Pool::new(1, 16);
    let other = Pool::new(1, 17);
    // A complete, self-consistent package whose certificate another ICA (same DN) signed.
    let foreign = other.first();
    let target = pool.path().join(&foreign);
    std::fs::create_dir(&target).unwrap();
    for f in [FESN_FILE, IRK_FILE, PRIVATE_KEY_FILE, DEVICE_CERT_FILE] {
        std::fs::copy(other.file(&foreign, f), target.join(f)).unwrap();
    }
    assert_eq!(
        pool.load_err_naming(&foreign, DEVICE_CERT_FILE),
        ContainerErrorKind::BadSignature
    );
}

#[test]
fn device_certificate_with_another_issuer_name() {
    let pool = Pool::new(1, 18);
    let name = pool.first();
    // Make the root the "ICA": the chain to the root still verifies (self-signed),
    // but the device certificate's issuer DN names FMC-NFC-ICA.
    std::fs::copy(
        pool.path().join(ROOT_CERT_FILE),
        pool.path().join(ICA_CERT_FILE),
    )
    .unwrap();
    match pool.load_err_naming(&name, DEVICE_CERT_FILE) {
        ContainerErrorKind::IssuerMismatch { issuer, expected } => {
            assert!(issuer.contains("FMC-NFC-ICA"), "{issuer}");
            assert!(expected.contains("FMC-NFC-ROOT"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ica_not_signed_by_the_root() {
    let pool = Pool::new(1, 19);
    let other = Pool::new(1, 20);
    std::fs::copy(
        other.path().join(ROOT_CERT_FILE),
        pool.path().join(ROOT_CERT_FILE),
    )
    .unwrap();
    let err = pool.open_err();
    assert_eq!(err.kind(), &ContainerErrorKind::BadSignature);
    assert!(err.path().ends_with(ICA_CERT_FILE));
}

#[test]
fn missing_shared_certificate() {
    let pool = Pool::new(1, 21);
    std::fs::remove_file(pool.path().join(ROOT_CERT_FILE)).unwrap();
    let err = pool.open_err();
    assert_eq!(err.kind(), &ContainerErrorKind::MissingFile);
    assert!(err.path().ends_with(ROOT_CERT_FILE));
    assert!(err.to_string().contains(ROOT_CERT_FILE));
}

#[test]
fn missing_package_files() {
    for file in [FESN_FILE, IRK_FILE, PRIVATE_KEY_FILE, DEVICE_CERT_FILE] {
        let pool = Pool::new(1, 22);
        let name = pool.first();
        std::fs::remove_file(pool.file(&name, file)).unwrap();
        let (kind, path) = pool.load_err(&name);
        assert_eq!(kind, ContainerErrorKind::MissingFile, "{file}");
        assert!(path.ends_with(file), "{file}");
    }
}

#[test]
fn fesn_file_disagrees_with_the_directory() {
    let kind = Pool::new(1, 23).damaged_err(FESN_FILE, |f| write(f, "1KM99999"));
    assert!(
        matches!(&kind, ContainerErrorKind::FesnMismatch { file, .. } if file == "1KM99999"),
        "{kind:?}"
    );
}

#[test]
fn fesn_file_with_a_trailing_newline_is_accepted() {
    let pool = Pool::new(1, 24);
    let name = pool.first();
    let fesn = name.split('-').next().unwrap().to_owned();
    std::fs::write(pool.file(&name, FESN_FILE), format!("{fesn}\r\n")).unwrap();
    assert_eq!(pool.source().load_package(&name).unwrap().fesn, fesn);
}

#[test]
fn garbage_fesn_file() {
    let kind = Pool::new(1, 25).damaged_err(FESN_FILE, |f| write(f, [0xFF, 0xFE, 0x00]));
    assert_eq!(kind, ContainerErrorKind::BadFesn);
}

#[test]
fn certificate_cn_is_not_the_fesn() {
    let pool = Pool::new(1, 26);
    let name = pool.first();
    let spid = name.split('-').nth(1).unwrap();
    let renamed = format!("1KMFFFFF-{spid}");
    std::fs::rename(pool.path().join(&name), pool.path().join(&renamed)).unwrap();
    std::fs::write(pool.file(&renamed, FESN_FILE), "1KMFFFFF").unwrap();
    let (kind, path) = pool.load_err(&renamed);
    assert!(
        matches!(&kind, ContainerErrorKind::CnMismatch { fesn, .. } if fesn == "1KMFFFFF"),
        "{kind:?}"
    );
    assert!(path.ends_with(DEVICE_CERT_FILE));
}

#[test]
fn irk_that_is_not_base64() {
    let kind = Pool::new(1, 27).damaged_err(IRK_FILE, |f| write(f, "not*base64*at*all*!!!!=="));
    assert_eq!(kind, ContainerErrorKind::BadIrkBase64);
}

#[test]
fn irk_of_the_wrong_length() {
    let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 15]);
    let kind = Pool::new(1, 28).damaged_err(IRK_FILE, |f| write(f, format!("{b64}\n")));
    assert_eq!(kind, ContainerErrorKind::BadIrkLength { len: 15 });
}

#[test]
fn bad_spid_in_the_directory_name() {
    let pool = Pool::new(1, 29);
    let name = pool.first();
    let (fesn, spid) = name.split_once('-').unwrap();
    for bad in [format!("{}Z", &spid[..39]), spid[..38].to_owned()] {
        let renamed = format!("{fesn}-{bad}");
        std::fs::rename(pool.path().join(&name), pool.path().join(&renamed)).unwrap();
        let (kind, path) = pool.load_err(&renamed);
        assert!(
            matches!(kind, ContainerErrorKind::BadSpid { .. }),
            "{kind:?}"
        );
        assert!(path.ends_with(&renamed));
        std::fs::rename(pool.path().join(&renamed), pool.path().join(&name)).unwrap();
    }
}

#[test]
fn directory_name_without_a_spid() {
    let pool = Pool::new(1, 30);
    let name = pool.first();
    std::fs::rename(pool.path().join(&name), pool.path().join("1KM0001E")).unwrap();
    let (kind, _) = pool.load_err("1KM0001E");
    assert!(
        matches!(kind, ContainerErrorKind::BadDirectoryName { .. }),
        "{kind:?}"
    );
}

#[test]
fn a_broken_package_is_reported_once_and_skipped() {
    let pool = Pool::new(2, 31);
    let first = pool.first();
    truncate(&pool.file(&first, DEVICE_CERT_FILE), 10);
    let mut source = pool.source();
    let err = source.fetch(&[1; 10]).unwrap_err();
    assert!(err.to_string().contains(DEVICE_CERT_FILE), "{err}");
    // The same fob retries: it is not handed the broken package again.
    let input = source.fetch(&[1; 10]).unwrap();
    assert_ne!(input.origin, first);
    common::assert_exhausted(&mut source, &[2; 10]);
}

#[test]
fn errors_do_not_leak_key_bytes() {
    let pool = Pool::new(2, 32);
    let names = pool.names();
    let key_der = std::fs::read(pool.file(&names[1], PRIVATE_KEY_FILE)).unwrap();
    let scalar = p256::SecretKey::from_pkcs8_der(&key_der)
        .unwrap()
        .to_bytes();
    std::fs::write(pool.file(&names[0], PRIVATE_KEY_FILE), &key_der).unwrap();
    let err = pool.source().load_package(&names[0]).unwrap_err();
    let text = format!("{err} {err:?}").to_uppercase();
    assert!(!text.contains(&hex::encode_upper(scalar)));
    assert!(!text.contains(&hex::encode_upper(&scalar[..8])));
}
