//! createPUKPolicy [7], createPINPolicy [8], createKeyEntry [9], setCertificatePath [11],
//! importSymmetricKey [12], importPrivateKey [13]: bounds, key algorithms, endorsed
//! algorithms, duplicate certificates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use hmac::Mac;
use sks_core::api::{req, resp, SksApi};
use sks_core::codec::Blob;
use sks_core::consts::*;
use sks_core::crypto::keys::{KeySpec, PrivateKey};
use sks_core::secret::Secret;
use sks_core::{ErrorCode, SksError};
use sks_issuer::{Issuer, KeyEntrySpec, PinPolicy};

fn option(message: &str) -> SksError {
    SksError::new(ErrorCode::Option, message)
}

/// A fresh SKS with session "S1" of a fresh issuer open on it.
fn sks_and_session() -> (TestSks, Issuer) {
    let mut s = sks();
    let (iss, _) = open_session(&mut s, &identity(), "S1");
    (s, iss)
}

/// createKeyEntry `id` without its certificate path.
fn key_entry(s: &mut TestSks, iss: &mut Issuer, id: &str) -> resp::CreateKeyEntry {
    s.create_key_entry(iss.key_entry(&KeyEntrySpec::new(id)).unwrap())
        .unwrap()
}

/// setCertificatePath of `path` for key entry `id`, created as `out`.
fn set_path(
    s: &mut TestSks,
    iss: &mut Issuer,
    out: &resp::CreateKeyEntry,
    id: &str,
    path: Vec<Vec<u8>>,
) -> Result<(), SksError> {
    s.set_certificate_path(
        iss.certificate_path(out.key_handle, id, &out.public_key, path)
            .unwrap(),
    )
    .map(|_| ())
}

#[test]
fn create_puk_policy_retry_limit_bounds() {
    for (limit, expected) in [
        (0u16, Ok(())),
        (10000, Ok(())),
        (10001, Err(option("PUK \"RetryLimit\" out of range"))),
    ] {
        let (mut s, mut iss) = sks_and_session();
        let r = s.create_puk_policy(
            iss.puk_policy("PUK.1", b"1234", PinFormat::Numeric, limit)
                .unwrap(),
        );
        assert_eq!(r.map(drop), expected, "PUK RetryLimit {limit}");
    }
}

#[test]
fn create_puk_policy_format_and_length() {
    let syntax = || Err(option("PIN syntax error"));
    let length = || Err(option("PUK length error"));
    let cases: [(&[u8], PinFormat, Result<(), SksError>); 6] = [
        (b"12A4", PinFormat::Numeric, syntax()),
        (b"12A4", PinFormat::Alphanumeric, Ok(())),
        (b"12a4", PinFormat::Alphanumeric, syntax()),
        (b"", PinFormat::String, length()),
        (&[0u8; 129], PinFormat::Binary, length()),
        (&[0u8; 128], PinFormat::Binary, Ok(())),
    ];
    for (puk, fmt, expected) in cases {
        let (mut s, mut iss) = sks_and_session();
        assert_eq!(
            s.create_puk_policy(iss.puk_policy("PUK.1", puk, fmt, 3).unwrap())
                .map(drop),
            expected,
            "{puk:02X?} {fmt:?}"
        );
    }
}

#[test]
fn create_pin_policy_retry_limit_and_length_bounds() {
    /// Grouping and InputMethod bytes sent instead of the policy's.
    type WireBytes = Option<(u8, u8)>;
    let mut cases: Vec<(PinPolicy, WireBytes, Result<(), SksError>)> = Vec::new();
    let retry_limit = || Err(option("PIN \"RetryLimit\" out of range"));
    for (limit, expected) in [
        (0u16, retry_limit()),
        (1, Ok(())),
        (10000, Ok(())),
        (10001, retry_limit()),
    ] {
        let mut p = PinPolicy::new("PIN.1");
        p.attributes.retry_limit = limit;
        cases.push((p, None, expected));
    }
    let length_limits = || Err(option("PIN length limits out of range"));
    for (min, max, expected) in [
        (0u16, 8u16, length_limits()),
        (1, 128, Ok(())),
        (1, 129, length_limits()),
        (5, 4, length_limits()),
    ] {
        let mut p = PinPolicy::new("PIN.1");
        p.attributes.min_length = min;
        p.attributes.max_length = max;
        cases.push((p, None, expected));
    }
    let input_method = || Err(option("Invalid \"InputMethod\""));
    for (g, im, expected) in [
        (4u8, 3u8, Err(option("Invalid \"Grouping\""))),
        (3, 0, input_method()),
        (3, 4, input_method()),
        (0, 1, Ok(())),
    ] {
        cases.push((PinPolicy::new("PIN.1"), Some((g, im)), expected));
    }
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.pattern_restrictions = pattern::MISSING_GROUP; // numeric + missing-group is invalid
    cases.push((
        p,
        None,
        Err(option(
            "\"missing-group\" requires alphanumeric or string format",
        )),
    ));
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.pattern_restrictions = 0x20;
    cases.push((p, None, Err(option("Invalid \"PatternRestrictions\""))));
    for (p, wire, expected) in cases {
        let (mut s, mut iss) = sks_and_session();
        let request = iss
            .pin_policy_with(&p, None, |r| {
                if let Some((g, im)) = wire {
                    r.policy.grouping = g;
                    r.policy.input_method = im;
                }
            })
            .unwrap();
        assert_eq!(
            s.create_pin_policy(request).map(drop),
            expected,
            "{p:?} {wire:?}"
        );
    }
}

#[test]
fn create_key_entry_generates_p256_p384_rsa1024_rsa2048() {
    let (mut s, mut iss) = sks_and_session();
    let mut handles = Vec::new();
    for (id, alg, params) in [
        ("EC256", ALG_KEY_EC_P256, vec![]),
        ("EC384", ALG_KEY_EC_P384, vec![]),
        ("RSA1024", ALG_KEY_RSA1024, vec![]),
        ("RSA2048", ALG_KEY_RSA2048, vec![]),
        ("RSA1024e", ALG_KEY_RSA1024_EXP, vec![0x01, 0x00, 0x01]),
        // The largest supported exponent, 2^33 - 1.
        (
            "RSA1024max",
            ALG_KEY_RSA1024_EXP,
            vec![0x01, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
    ] {
        let mut k = KeyEntrySpec::new(id);
        k.key_algorithm = alg.into();
        k.key_parameters = params.clone();
        let p = key(&mut s, &mut iss, &k);
        let pk = sks_core::crypto::keys::PublicKey::from_spki(&p.public_key).unwrap();
        if let sks_core::crypto::keys::PublicKey::Rsa(rsa) = &pk {
            use rsa::traits::PublicKeyParts;
            let e = if params.is_empty() {
                vec![0x01, 0x00, 0x01]
            } else {
                params.clone()
            };
            assert_eq!(rsa.e().to_bytes_be(), e, "{id}");
        }
        match alg {
            ALG_KEY_RSA2048 => assert_eq!(pk.rsa_bits(), Some(2048)),
            ALG_KEY_RSA1024 | ALG_KEY_RSA1024_EXP => assert_eq!(pk.rsa_bits(), Some(1024)),
            _ => assert!(!pk.is_rsa()),
        }
        handles.push(p.handle);
    }
    close(&mut s, &mut iss).unwrap();
    assert_eq!(keys(&mut s), handles);
}

#[test]
fn create_key_entry_rejects_bad_algorithms_and_parameters() {
    type Edit = fn(&mut KeyEntrySpec);
    let cases: Vec<(Edit, ErrorCode)> = vec![
        (
            |k| k.key_algorithm = "urn:unknown".into(),
            ErrorCode::Algorithm,
        ),
        (|k| k.key_parameters = vec![3], ErrorCode::Option),
        (
            |k| {
                k.key_algorithm = ALG_KEY_RSA1024_EXP.into();
                k.key_parameters = vec![];
            },
            ErrorCode::Option,
        ),
        (
            |k| {
                k.key_algorithm = ALG_KEY_RSA1024_EXP.into();
                k.key_parameters = vec![4];
            },
            ErrorCode::Option,
        ),
        (
            // 2^33 + 1: odd and within 8 octets, but above the supported range; rejected at
            // parameter validation (not an internal key-generation failure).
            |k| {
                k.key_algorithm = ALG_KEY_RSA1024_EXP.into();
                k.key_parameters = vec![0x02, 0, 0, 0, 0x01];
            },
            ErrorCode::Option,
        ),
        (
            |k| {
                k.key_algorithm = ALG_KEY_RSA1024_EXP.into();
                k.key_parameters = vec![0xFF; 8];
            },
            ErrorCode::Option,
        ),
        (|k| k.server_seed = vec![0; 33], ErrorCode::Option),
        (
            |k| k.protection.export_protection = Protection::Pin,
            ErrorCode::Option,
        ),
        (
            |k| k.protection.delete_protection = Protection::Puk,
            ErrorCode::Option,
        ),
        (|k| k.device_pin = true, ErrorCode::Option),
        (
            |k| k.protection.biometric = BiometricProtection::Alternative,
            ErrorCode::Option,
        ),
        (
            |k| k.protection.enable_pin_caching = true,
            ErrorCode::Option,
        ),
        (|k| k.friendly_name = "x".repeat(129), ErrorCode::Option),
    ];
    for (edit, expected) in cases {
        let (mut s, mut iss) = sks_and_session();
        let mut k = KeyEntrySpec::new("Key.1");
        edit(&mut k);
        let r = s.create_key_entry(iss.key_entry(&k).unwrap());
        assert_eq!(code(r), ErrorCodeOf(expected), "{k:?}");
        assert_eq!(session_count(&mut s, true), 0, "the session is aborted");
    }
    // An AppUsage byte outside the enumeration, as a faulty issuer may send it.
    let (mut s, mut iss) = sks_and_session();
    let request = iss
        .key_entry_with(&KeyEntrySpec::new("Key.1"), |r| r.app_usage = 4)
        .unwrap();
    assert_eq!(
        code(s.create_key_entry(request)),
        ErrorCodeOf(ErrorCode::Option)
    );
    assert_eq!(session_count(&mut s, true), 0, "the session is aborted");
}

#[test]
fn create_key_entry_server_seed_is_accepted() {
    let (mut s, mut iss) = sks_and_session();
    let mut k = KeyEntrySpec::new("Key.1");
    k.server_seed = vec![0xAB; 32];
    key(&mut s, &mut iss, &k);
    close(&mut s, &mut iss).unwrap();
}

#[test]
fn endorsed_algorithms_must_be_sorted_unique_and_known() {
    let sorting = || Err(option("Duplicate or incorrectly sorted algorithm"));
    let cases: [(Vec<&str>, Result<(), SksError>); 7] = [
        (vec![ALG_ECDSA_SHA256, ALG_RSA_SHA256], Ok(())),
        (vec![ALG_RSA_SHA256, ALG_ECDSA_SHA256], sorting()),
        (vec![ALG_ECDSA_SHA256, ALG_ECDSA_SHA256], sorting()),
        (
            vec!["urn:nope"],
            Err(option("Unsupported algorithm: urn:nope")),
        ),
        (
            vec![ALG_KEY_EC_P256],
            Err(option(&format!("Unsupported algorithm: {ALG_KEY_EC_P256}"))),
        ),
        // ALG_NONE sorts after ALG_HMAC_SHA1, so this list fails the order check.
        (vec![ALG_NONE, ALG_HMAC_SHA1], sorting()),
        (
            vec![ALG_HMAC_SHA1, ALG_NONE],
            Err(option("\"none\" must be the only endorsed algorithm")),
        ),
    ];
    for (list, expected) in cases {
        let (mut s, mut iss) = sks_and_session();
        let mut k = KeyEntrySpec::new("Key.1");
        k.endorsed = list.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            s.create_key_entry(iss.key_entry(&k).unwrap()).map(drop),
            expected,
            "{list:?}"
        );
    }
}

fn close_with_endorsed(alg: &str, rsa: bool, symmetric: Option<&[u8]>) -> Result<(), SksError> {
    let (mut s, mut iss) = sks_and_session();
    let mut k = KeyEntrySpec::new("Key.1");
    k.endorsed = vec![alg.to_owned()];
    if rsa {
        k.key_algorithm = ALG_KEY_RSA1024.into();
    }
    let p = key(&mut s, &mut iss, &k);
    if let Some(sym) = symmetric {
        s.import_symmetric_key(iss.symmetric_key(p.handle, &p.ee, sym).unwrap())
            .unwrap();
    }
    close(&mut s, &mut iss)
}

#[test]
fn endorsed_algorithms_are_checked_against_key_material_at_close() {
    /// (endorsed algorithm, RSA key, imported symmetric key, mismatching key kind)
    type Case = (
        &'static str,
        bool,
        Option<&'static [u8]>,
        Option<&'static str>,
    );
    let cases: [Case; 13] = [
        (ALG_ECDSA_SHA256, false, None, None),
        (ALG_RSA_SHA256, false, None, Some("EC")),
        (ALG_RSA_SHA256, true, None, None),
        (ALG_ECDSA_SHA256, true, None, Some("RSA")),
        (ALG_ECDH_RAW, false, None, None),
        (ALG_RSA_1_5, false, None, Some("EC")),
        (ALG_HMAC_SHA1, false, None, Some("EC")),
        (ALG_HMAC_SHA1, false, Some(&[1; 20]), None),
        (ALG_AES128_CBC, false, Some(&[1; 16]), None),
        (ALG_AES256_CBC, false, Some(&[1; 16]), Some("Symmetric")),
        (ALG_AES_ECB_NOPAD, false, Some(&[1; 24]), None),
        (ALG_ECDSA_SHA256, false, Some(&[1; 16]), Some("Symmetric")),
        (ALG_NONE, false, Some(&[1; 5]), None),
    ];
    for (alg, rsa, symmetric, mismatch) in cases {
        let expected = match mismatch {
            None => Ok(()),
            Some(kind) => Err(option(&format!(
                "{kind} key Key.1 does not match algorithm: {alg}"
            ))),
        };
        assert_eq!(close_with_endorsed(alg, rsa, symmetric), expected, "{alg}");
    }
}

#[test]
fn set_certificate_path_rules() {
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "Key.1");
    let ee = iss.certify("k", &out.public_key).unwrap();
    // Unknown key handle: ERROR_NO_KEY without abort.
    let r = iss
        .certificate_path(9999, "Key.1", &out.public_key, vec![ee.clone()])
        .unwrap();
    assert_eq!(
        code(s.set_certificate_path(r)),
        ErrorCodeOf(ErrorCode::NoKey)
    );
    assert_eq!(session_count(&mut s, true), 1);
    // (The issuer consumed a counter value for the rejected call; use a fresh session.)
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "Key.1");
    let ee = iss.certify("k", &out.public_key).unwrap();
    let ordered = vec![ee.clone(), iss.ca_certificate().to_vec()];
    set_path(&mut s, &mut iss, &out, "Key.1", ordered.clone()).unwrap();
    assert_eq!(
        code(set_path(&mut s, &mut iss, &out, "Key.1", vec![ee])),
        ErrorCodeOf(ErrorCode::Option),
        "multiple calls abort"
    );
    assert_eq!(session_count(&mut s, true), 0);
    // Empty path aborts.
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "Key.1");
    assert_eq!(
        code(set_path(&mut s, &mut iss, &out, "Key.1", vec![])),
        ErrorCodeOf(ErrorCode::Option)
    );
}

#[test]
fn set_certificate_path_keeps_the_ordered_path() {
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "Key.1");
    let ee = iss.certify("k", &out.public_key).unwrap();
    let path = vec![ee, iss.ca_certificate().to_vec()];
    set_path(&mut s, &mut iss, &out, "Key.1", path.clone()).unwrap();
    close(&mut s, &mut iss).unwrap();
    let a = s
        .get_key_attributes(req::GetKeyAttributes {
            key_handle: out.key_handle,
        })
        .unwrap();
    assert_eq!(a.certificate_path.0, path);
}

#[test]
fn duplicate_end_entity_certificates_fail_close() {
    // Within one session.
    let (mut s, mut iss) = sks_and_session();
    let a = key_entry(&mut s, &mut iss, "A");
    let b = key_entry(&mut s, &mut iss, "B");
    let ee = iss.certify("a", &a.public_key).unwrap();
    set_path(&mut s, &mut iss, &a, "A", vec![ee.clone()]).unwrap();
    set_path(&mut s, &mut iss, &b, "B", vec![ee.clone()]).unwrap();
    let e = close(&mut s, &mut iss).unwrap_err();
    assert!(
        e.message().contains("Duplicate certificate") || e.message().contains("mismatch"),
        "{e}"
    );
    // Across sessions: a second session importing the same certificate and private key.
    let (mut s, mut iss) = sks_and_session();
    let issued = PrivateKey::generate(KeySpec::P256).unwrap();
    let spki = issued.public_key().to_spki().unwrap();
    let ee = iss.certify("shared", &spki).unwrap();
    let import = |s: &mut TestSks, iss: &mut Issuer, id: &str| {
        import_issued_key(s, iss, &KeyEntrySpec::new(id), &ee, &issued);
    };
    import(&mut s, &mut iss, "K1");
    close(&mut s, &mut iss).unwrap();
    let k1 = keys(&mut s);
    // After a restart the certificate is known from the stored key alone.
    let storage = s.inner.into_storage();
    let mut s = sks_core::wire::WireLoopback {
        inner: sks_core::Sks::open(storage, config(clock())).unwrap(),
    };
    let id2 = identity();
    let again = |s: &mut TestSks, session: &str| {
        let mut iss2 = id2.session("https://issuer.example.com/y", session);
        open(s, &mut iss2);
        import(s, &mut iss2, "K2");
        close(s, &mut iss2)
    };
    let e = again(&mut s, "S2").unwrap_err();
    assert!(e.message().contains("Duplicate certificate"), "{e}");
    // Once the first key is deleted, its certificate is free again.
    assert_eq!(k1.len(), 1);
    delete_key(&mut s, k1[0], "").unwrap();
    again(&mut s, "S3").unwrap();
}

#[test]
fn certificate_must_match_generated_key_at_close() {
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "Key.1");
    let other = PrivateKey::generate(KeySpec::P256)
        .unwrap()
        .public_key()
        .to_spki()
        .unwrap();
    let ee = iss.certify("k", &other).unwrap();
    set_path(&mut s, &mut iss, &out, "Key.1", vec![ee]).unwrap();
    assert!(close(&mut s, &mut iss)
        .unwrap_err()
        .message()
        .contains("EC mismatch"));
}

#[test]
fn import_symmetric_key_hmac_and_aes_match_rustcrypto() {
    let (mut s, mut iss) = sks_and_session();
    let hkey = [0x0bu8; 32];
    let akey = [0x2bu8; 16];
    let mut k1 = KeyEntrySpec::new("HMAC");
    k1.endorsed = vec![ALG_HMAC_SHA256.into()];
    let p1 = key(&mut s, &mut iss, &k1);
    s.import_symmetric_key(iss.symmetric_key(p1.handle, &p1.ee, &hkey).unwrap())
        .unwrap();
    let p2 = key(&mut s, &mut iss, &KeyEntrySpec::new("AES"));
    s.import_symmetric_key(iss.symmetric_key(p2.handle, &p2.ee, &akey).unwrap())
        .unwrap();
    close(&mut s, &mut iss).unwrap();

    let data = b"The quick brown fox".to_vec();
    let out = perform_hmac(&mut s, p1.handle, ALG_HMAC_SHA256, &data).unwrap();
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&hkey).unwrap();
    m.update(&data);
    assert_eq!(out.result, m.finalize().into_bytes().to_vec());
    // Endorsement: HMAC-SHA1 is not endorsed for this key.
    let r = perform_hmac(&mut s, p1.handle, ALG_HMAC_SHA1, &data);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Algorithm));

    // AES-ECB against the aes crate, AES-CBC round trip with the pkcs5 variant and IV.
    use aes::cipher::{BlockEncrypt, KeyInit};
    let block = [0x6bu8; 16];
    let ecb = symmetric_encrypt(
        &mut s,
        p2.handle,
        ALG_AES_ECB_NOPAD,
        true,
        vec![],
        Blob(block.to_vec()),
    )
    .unwrap();
    let mut expected = aes::Block::clone_from_slice(&block);
    aes::Aes128::new_from_slice(&akey)
        .unwrap()
        .encrypt_block(&mut expected);
    assert_eq!(ecb.result.0, expected.to_vec());
    let iv = vec![7u8; 16];
    let enc = symmetric_encrypt(
        &mut s,
        p2.handle,
        ALG_AES_CBC_PKCS5,
        true,
        iv.clone(),
        Blob(data.clone()),
    )
    .unwrap();
    assert_eq!(enc.result.0.len(), 32);
    let dec =
        symmetric_encrypt(&mut s, p2.handle, ALG_AES_CBC_PKCS5, false, iv, enc.result).unwrap();
    assert_eq!(dec.result.0, data);
    // xmlenc aes128-cbc: IV prepended.
    let enc = symmetric_encrypt(
        &mut s,
        p2.handle,
        ALG_AES128_CBC,
        true,
        vec![],
        Blob(data.clone()),
    )
    .unwrap();
    assert_eq!(enc.result.0.len(), 16 + 32);
    let dec =
        symmetric_encrypt(&mut s, p2.handle, ALG_AES128_CBC, false, vec![], enc.result).unwrap();
    assert_eq!(dec.result.0, data);
    // Wrong key length for aes256-cbc.
    let r = symmetric_encrypt(&mut s, p2.handle, ALG_AES256_CBC, true, vec![], Blob(data));
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
    let attrs = s
        .get_key_attributes(req::GetKeyAttributes {
            key_handle: p2.handle,
        })
        .unwrap();
    assert_eq!(attrs.symmetric_key_length, 16);
    assert_eq!(protection(&mut s, p2.handle).key_backup, key_backup::SERVER);
}

#[test]
fn import_symmetric_key_limits_and_single_import() {
    let (mut s, mut iss) = sks_and_session();
    let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
    let r = iss.symmetric_key(p.handle, &p.ee, &[1u8; 129]).unwrap();
    assert_eq!(
        code(s.import_symmetric_key(r)),
        ErrorCodeOf(ErrorCode::Option)
    );
    let (mut s, mut iss) = sks_and_session();
    let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
    s.import_symmetric_key(iss.symmetric_key(p.handle, &p.ee, &[1u8; 16]).unwrap())
        .unwrap();
    let r = iss.symmetric_key(p.handle, &p.ee, &[1u8; 16]).unwrap();
    assert_eq!(
        code(s.import_symmetric_key(r)),
        ErrorCodeOf(ErrorCode::Option),
        "multiple key imports"
    );
    // Without a certificate the session aborts.
    let (mut s, mut iss) = sks_and_session();
    let out = key_entry(&mut s, &mut iss, "K");
    let r = iss
        .symmetric_key(out.key_handle, b"no cert", &[1u8; 16])
        .unwrap();
    assert_aborts(s.import_symmetric_key(r), ErrorCode::Option, &mut s);
}

#[test]
fn import_private_key_replaces_generated_key() {
    let (mut s, mut iss) = sks_and_session();
    let issued = PrivateKey::generate(KeySpec::Rsa {
        bits: 1024,
        exponent: 65537,
    })
    .unwrap();
    let spki = issued.public_key().to_spki().unwrap();
    let mut k = KeyEntrySpec::new("K");
    k.protection.export_protection = Protection::None;
    let ee = iss.certify("imported", &spki).unwrap();
    let out = import_issued_key(&mut s, &mut iss, &k, &ee, &issued);
    let pkcs8 = issued.to_pkcs8().unwrap();
    close(&mut s, &mut iss).unwrap();
    let exported = export_key(&mut s, out.key_handle, "").unwrap();
    assert_eq!(exported.key.expose(), pkcs8.expose());
    assert_eq!(
        protection(&mut s, out.key_handle).key_backup,
        key_backup::SERVER | key_backup::LOCAL
    );
    // Garbage PKCS#8 aborts with ERROR_CRYPTO.
    let (mut s, mut iss) = sks_and_session();
    let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
    let r = iss.private_key(p.handle, &p.ee, b"not pkcs8").unwrap();
    assert_eq!(
        code(s.import_private_key(r)),
        ErrorCodeOf(ErrorCode::Crypto)
    );
}

/// A malformed encrypted value (here an issuer-set PIN whose ciphertext is empty, not
/// block-aligned or shorter than the IV) under a valid MAC aborts the session with
/// ERROR_CRYPTO (byte layouts §5, §8.9), removing everything the session created.
#[test]
fn decryption_failure_aborts_the_session_with_error_crypto() {
    for bad in [vec![0u8; 16], vec![0u8; 16 + 17], vec![0u8; 8]] {
        let (mut s, mut iss) = sks_and_session();
        key(&mut s, &mut iss, &KeyEntrySpec::new("Key.0"));
        let mut p = PinPolicy::new("PIN.1");
        p.attributes.user_defined = false;
        let ph = pin_policy(&mut s, &mut iss, &p);
        let mut k = KeyEntrySpec::new("Key.1");
        k.pin_policy = Some((ph, "PIN.1".into(), false));
        k.pin_value = b"1234".to_vec();
        let request = iss
            .key_entry_with(&k, |r| r.pin_value = Secret::new(bad.clone()))
            .unwrap();
        assert_eq!(
            code(s.create_key_entry(request)),
            ErrorCodeOf(ErrorCode::Crypto),
            "{} octets",
            bad.len()
        );
        assert_eq!(session_count(&mut s, true), 0, "the session is aborted");
        assert_eq!(session_count(&mut s, false), 0);
    }
}
