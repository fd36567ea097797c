//! The SQLite credential database at rest: every record sealed under a storage key kept
//! outside the database, so the database files (main file and WAL) hold no key or PIN bytes;
//! database, side files and key file are owner-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::consts::Protection;
use sks_core::{Config, ErrorCode, Sks};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use sks_sqlite::{SqliteStorage, StorageKey};
use std::path::Path;

/// The fixed part of every P-256 PKCS#8 private key (version, ecPublicKey, prime256v1).
const PKCS8_P256_PREFIX: [u8; 14] = [
    0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every database file in `dir` (the key file excluded), with its bytes.
fn database_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sks.db")
        })
        .filter(|p| p.extension().is_none_or(|e| e != "key"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn assert_no_secrets(dir: &Path, secrets: &[(&str, &[u8])]) {
    let files = database_files(dir);
    assert!(!files.is_empty());
    for (name, bytes) in &files {
        for (what, secret) in secrets {
            assert!(!contains(bytes, secret), "{name} holds {what} in clear");
        }
    }
}

#[test]
fn database_files_hold_no_key_or_pin_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let mut s = Sks::initialize(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
    let pin = "9182736";
    pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), pin);
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S.export");
    open(&mut s, &mut iss);
    let mut spec = KeyEntrySpec::new("Exportable");
    spec.protection.export_protection = Protection::None;
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    let pkcs8 = export_key(&mut s, k.handle, "").unwrap().key;
    let scalar = {
        use p256::pkcs8::DecodePrivateKey;
        p256::SecretKey::from_pkcs8_der(pkcs8.expose())
            .unwrap()
            .to_bytes()
            .to_vec()
    };
    let secrets: [(&str, &[u8]); 4] = [
        ("a PKCS#8 P-256 private key", &PKCS8_P256_PREFIX),
        ("the exported key", pkcs8.expose()),
        ("the exported key's scalar", &scalar),
        ("the PIN", pin.as_bytes()),
    ];
    // While the server holds the database (WAL not yet checkpointed) and after it closed.
    assert_no_secrets(dir.path(), &secrets);
    drop(s);
    assert_no_secrets(dir.path(), &secrets);

    // The same database under another key does not open.
    let wrong = StorageKey::from_bytes(&[7u8; 32]).unwrap();
    let e = Sks::open(
        SqliteStorage::open_with_key(&db, wrong).unwrap(),
        Config::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    // Under its own key everything is there.
    let mut s = Sks::open(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
    assert_eq!(keys(&mut s).len(), 2);
    let first = keys(&mut s)[0];
    sign(&mut s, first, pin).unwrap();
}

#[cfg(unix)]
#[test]
fn database_side_files_and_key_file_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let mut s = Sks::initialize(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
    pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        names.push(name);
    }
    names.sort();
    assert!(names.contains(&"sks.db".to_owned()), "{names:?}");
    assert!(names.contains(&"sks.db-wal".to_owned()), "{names:?}");
    assert!(names.contains(&"sks.db.key".to_owned()), "{names:?}");
    drop(s);
    // A key file others can read is refused.
    let key = StorageKey::default_path(&db);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = SqliteStorage::open(&db).unwrap_err().to_string();
    assert!(e.contains("must be 0600"), "{e}");
}
