//! User API: enumerateKeys [70], getKeyAttributes [71], deleteKey [80], exportKey [81],
//! updateFirmware [90], signHashedData [100], asymmetricKeyDecrypt [101], keyAgreement [102],
//! performHMAC [103], symmetricKeyEncrypt [104]; delete/export protection; endorsement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sha2::Digest;
use sks_core::api::{req, resp, KeyUse, SksApi};
use sks_core::codec::Blob;
use sks_core::consts::*;
use sks_core::crypto::keys::{KeySpec, PrivateKey, PublicKey};
use sks_core::{ErrorCode, SksError};
use sks_issuer::{KeyEntrySpec, PinPolicy};

fn one_key(spec: KeyEntrySpec) -> (TestSks, Provisioned) {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    (s, k)
}

/// signHashedData with `algorithm` over `data` by a key without a PIN.
fn sign_with(
    s: &mut impl SksApi,
    key_handle: u32,
    algorithm: &str,
    data: Vec<u8>,
) -> Result<resp::SignHashedData, SksError> {
    s.sign_hashed_data(req::SignHashedData {
        key: KeyUse {
            key_handle,
            algorithm: algorithm.into(),
            ..Default::default()
        },
        data,
    })
}

/// [`one_key`] with key `id` of `key_algorithm`.
fn one_key_of(id: &str, key_algorithm: &str) -> (TestSks, Provisioned) {
    let mut spec = KeyEntrySpec::new(id);
    spec.key_algorithm = key_algorithm.into();
    one_key(spec)
}

/// [`one_key`] with EC key "EC" endorsing only `algorithm`.
fn ec_key_endorsing(algorithm: &str) -> (TestSks, Provisioned) {
    let mut spec = KeyEntrySpec::new("EC");
    spec.endorsed = vec![algorithm.into()];
    one_key(spec)
}

fn public_key(k: &Provisioned) -> PublicKey {
    PublicKey::from_spki(&k.public_key).unwrap()
}

fn rsa_spec() -> KeyEntrySpec {
    let mut k = KeyEntrySpec::new("RSA");
    k.key_algorithm = ALG_KEY_RSA1024.into();
    k
}

#[test]
fn sign_hashed_data_rsa_variants_verify_with_rustcrypto() {
    let (mut s, k) = one_key(rsa_spec());
    let PublicKey::Rsa(pk) = public_key(&k) else {
        panic!()
    };
    let digest = sha2::Sha256::digest(b"data").to_vec();
    let sig = |s: &mut _, alg: &str, data: Vec<u8>| sign_with(s, k.handle, alg, data);
    let r = sig(&mut s, ALG_RSA_SHA256, digest.clone()).unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &r.result)
        .unwrap();
    let d1 = sha1::Sha1::digest(b"data").to_vec();
    let r = sig(&mut s, ALG_RSA_SHA1, d1.clone()).unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &d1, &r.result)
        .unwrap();
    let r = sig(&mut s, ALG_RSA_NONE, b"raw".to_vec()).unwrap();
    pk.verify(rsa::Pkcs1v15Sign::new_unprefixed(), b"raw", &r.result)
        .unwrap();
    assert_eq!(
        code(sig(&mut s, ALG_RSA_SHA256, vec![0; 31])),
        ErrorCodeOf(ErrorCode::Option),
        "hash length"
    );
    assert_eq!(
        code(sig(&mut s, ALG_ECDSA_SHA256, digest.clone())),
        ErrorCodeOf(ErrorCode::Algorithm),
        "RSA key, EC alg"
    );
    assert_eq!(
        code(sig(&mut s, ALG_HMAC_SHA256, digest.clone())),
        ErrorCodeOf(ErrorCode::Algorithm)
    );
    assert_eq!(
        code(sig(&mut s, "urn:unknown", digest)),
        ErrorCodeOf(ErrorCode::Algorithm)
    );
    assert_eq!(
        code(sig(&mut s, ALG_RSA_NONE, vec![0; 16385])),
        ErrorCodeOf(ErrorCode::Option),
        "CryptoDataSize"
    );
}

#[test]
fn sign_hashed_data_ecdsa_and_p384() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let (mut s, k) = one_key(KeyEntrySpec::new("EC"));
    let PublicKey::P256(pk) = public_key(&k) else {
        panic!()
    };
    let r = sign(&mut s, k.handle, "").unwrap();
    let sig = p256::ecdsa::Signature::from_der(&r.result).unwrap();
    p256::ecdsa::VerifyingKey::from(&pk)
        .verify_prehash(&[7u8; 32], &sig)
        .unwrap();
    let (mut s, k) = one_key_of("EC384", ALG_KEY_EC_P384);
    let PublicKey::P384(pk) = public_key(&k) else {
        panic!()
    };
    let d = sha2::Sha384::digest(b"x").to_vec();
    let r = sign_with(&mut s, k.handle, ALG_ECDSA_SHA384, d.clone()).unwrap();
    let sig = p384::ecdsa::Signature::from_der(&r.result).unwrap();
    p384::ecdsa::VerifyingKey::from(&pk)
        .verify_prehash(&d, &sig)
        .unwrap();
}

#[test]
fn asymmetric_key_decrypt_pkcs1_and_raw() {
    let (mut s, k) = one_key(rsa_spec());
    let PublicKey::Rsa(pk) = public_key(&k) else {
        panic!()
    };
    let ct = pk
        .encrypt(&mut rand_core::OsRng, rsa::Pkcs1v15Encrypt, b"session key")
        .unwrap();
    let dec = |s: &mut _, alg: &str, data: Vec<u8>| {
        SksApi::asymmetric_key_decrypt(
            s,
            req::AsymmetricKeyDecrypt {
                key: KeyUse {
                    key_handle: k.handle,
                    algorithm: alg.into(),
                    ..Default::default()
                },
                data,
            },
        )
    };
    assert_eq!(
        dec(&mut s, ALG_RSA_1_5, ct.clone())
            .unwrap()
            .result
            .expose(),
        b"session key"
    );
    let raw = dec(&mut s, ALG_RSA_RAW, ct).unwrap().result;
    assert_eq!(raw.len(), 128);
    assert_eq!(
        &raw.expose()[..2],
        &[0, 2],
        "PKCS#1 type 2 block visible in raw mode"
    );
    assert_eq!(
        code(dec(&mut s, ALG_RSA_SHA256, vec![0; 128])),
        ErrorCodeOf(ErrorCode::Algorithm)
    );
    let (mut s, k) = one_key(KeyEntrySpec::new("EC"));
    let r = s.asymmetric_key_decrypt(req::AsymmetricKeyDecrypt {
        key: KeyUse {
            key_handle: k.handle,
            algorithm: ALG_RSA_1_5.into(),
            ..Default::default()
        },
        data: vec![0; 128],
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Algorithm));
}

#[test]
fn key_agreement_matches_rustcrypto_ecdh() {
    let (mut s, k) = one_key(KeyEntrySpec::new("EC"));
    let peer = p256::SecretKey::random(&mut rand_core::OsRng);
    let peer_spki = PublicKey::P256(peer.public_key()).to_spki().unwrap();
    let agree = |s: &mut _, public_key| {
        SksApi::key_agreement(
            s,
            req::KeyAgreement {
                key: KeyUse {
                    key_handle: k.handle,
                    algorithm: ALG_ECDH_RAW.into(),
                    ..Default::default()
                },
                public_key,
            },
        )
    };
    let out = agree(&mut s, peer_spki).unwrap();
    let PublicKey::P256(pk) = public_key(&k) else {
        panic!()
    };
    let z = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), pk.as_affine());
    assert_eq!(out.result.expose(), z.raw_secret_bytes().as_slice());
    let p384_peer = PublicKey::P384(p384::SecretKey::random(&mut rand_core::OsRng).public_key())
        .to_spki()
        .unwrap();
    let r = agree(&mut s, p384_peer);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option), "curve mismatch");
}

#[test]
fn endorsed_algorithms_are_enforced_by_the_user_api() {
    let (mut s, k) = ec_key_endorsing(ALG_ECDSA_SHA256);
    sign(&mut s, k.handle, "").unwrap();
    let r = sign_with(&mut s, k.handle, ALG_ECDSA_NONE, vec![1; 32]);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Algorithm));
    let (mut s, k) = ec_key_endorsing(ALG_NONE);
    assert_eq!(
        code(sign(&mut s, k.handle, "")),
        ErrorCodeOf(ErrorCode::Algorithm),
        "algorithm.none disables crypto"
    );
}

#[test]
fn perform_hmac_needs_a_symmetric_key() {
    let (mut s, k) = one_key(KeyEntrySpec::new("EC"));
    let r = perform_hmac(&mut s, k.handle, ALG_HMAC_SHA256, &[1]);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Algorithm));
    let r = symmetric_encrypt(
        &mut s,
        k.handle,
        ALG_AES128_CBC,
        true,
        vec![],
        Blob(vec![1]),
    );
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Algorithm));
}

fn protected_key(export: Protection, delete: Protection) -> (TestSks, Provisioned) {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let ph = pin_and_puk(&mut s, &mut iss, PinPolicy::new("PIN.1"), 3);
    let mut spec = pin_spec("Key.1", ph, b"1234");
    spec.protection.export_protection = export;
    spec.protection.delete_protection = delete;
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    (s, k)
}

#[test]
fn export_protection_none_pin_puk_not_allowed() {
    let (mut s, k) = protected_key(Protection::None, Protection::None);
    let pkcs8 = export_key(&mut s, k.handle, "").unwrap().key;
    let key = PrivateKey::from_pkcs8(pkcs8.expose()).unwrap();
    assert_eq!(key.public_key().to_spki().unwrap(), k.public_key);
    assert_eq!(protection(&mut s, k.handle).key_backup, key_backup::LOCAL);
    let (mut s, k) = protected_key(Protection::Pin, Protection::None);
    assert_eq!(
        code(export_key(&mut s, k.handle, "0000")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(protection(&mut s, k.handle).pin_error_count, 1);
    export_key(&mut s, k.handle, "1234").unwrap();
    let (mut s, k) = protected_key(Protection::Puk, Protection::None);
    assert_eq!(
        code(export_key(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "a PIN is not the PUK"
    );
    assert_eq!(protection(&mut s, k.handle).puk_error_count, 1);
    export_key(&mut s, k.handle, "12345678").unwrap();
    let (mut s, k) = protected_key(Protection::NotAllowed, Protection::None);
    assert_eq!(
        code(export_key(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::NotAllowed)
    );
}

#[test]
fn delete_protection_and_automatic_cleanup() {
    let (mut s, k) = protected_key(Protection::None, Protection::NotAllowed);
    assert_eq!(
        code(delete_key(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::NotAllowed)
    );
    let (mut s, k) = protected_key(Protection::None, Protection::Puk);
    assert_eq!(
        code(delete_key(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    delete_key(&mut s, k.handle, "12345678").unwrap();
    assert!(keys(&mut s).is_empty());
    assert_eq!(
        session_count(&mut s, false),
        0,
        "last key deleted removes the session"
    );
    let (mut s, k) = protected_key(Protection::None, Protection::Pin);
    assert_eq!(
        code(delete_key(&mut s, k.handle, "")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    delete_key(&mut s, k.handle, "1234").unwrap();
    assert_eq!(
        code(delete_key(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::NoKey)
    );
}

#[test]
fn user_api_refuses_keys_of_open_sessions() {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    assert_eq!(
        code(sign(&mut s, k.handle, "")),
        ErrorCodeOf(ErrorCode::NoKey)
    );
    assert!(
        keys(&mut s).is_empty(),
        "enumerateKeys lists closed sessions only"
    );
    assert_eq!(
        code(s.get_key_attributes(req::GetKeyAttributes {
            key_handle: k.handle
        })),
        ErrorCodeOf(ErrorCode::NoKey)
    );
}

#[test]
fn get_key_attributes_reports_provisioned_values() {
    let mut spec = KeyEntrySpec::new("EC");
    spec.friendly_name = "My key".into();
    spec.protection.app_usage = AppUsage::Encryption;
    spec.endorsed = vec![ALG_ECDSA_SHA256.into(), ALG_ECDH_RAW.into()];
    let (mut s, k) = one_key(spec);
    let a = s
        .get_key_attributes(req::GetKeyAttributes {
            key_handle: k.handle,
        })
        .unwrap();
    assert_eq!(a.friendly_name, "My key");
    assert_eq!(a.app_usage, u8::from(AppUsage::Encryption));
    assert_eq!(a.symmetric_key_length, 0);
    assert_eq!(
        a.endorsed_algorithms.0,
        vec![ALG_ECDSA_SHA256.to_owned(), ALG_ECDH_RAW.to_owned()]
    );
    assert_eq!(a.certificate_path.0, vec![k.ee]);
}

#[test]
fn update_firmware_is_not_available() {
    let mut s = sks();
    let r = s.update_firmware(req::UpdateFirmware {
        chunk: Blob(vec![1, 2, 3]),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAvailable));
}

#[test]
fn rsa_2048_generation_and_signature() {
    let (mut s, k) = one_key_of("RSA2048", ALG_KEY_RSA2048);
    let PublicKey::Rsa(pk) = public_key(&k) else {
        panic!()
    };
    let d = sha2::Sha256::digest(b"x").to_vec();
    let r = sign_with(&mut s, k.handle, ALG_RSA_SHA256, d.clone()).unwrap();
    assert_eq!(r.result.len(), 256);
    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &d, &r.result)
        .unwrap();
    let _ = KeySpec::P256;
}

/// `ecdsa.none` signs caller-hashed data of any length (§4.1): data shorter than the curve's
/// field is the integer it encodes (SEC 1 bits2int), the same as the data left-padded with
/// zeros to the field size.
#[test]
fn ecdsa_none_signs_data_of_any_length() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    fn sign_none(s: &mut impl SksApi, key_handle: u32, data: &[u8]) -> Vec<u8> {
        sign_with(s, key_handle, ALG_ECDSA_NONE, data.to_vec())
            .unwrap_or_else(|e| panic!("{} bytes: {e}", data.len()))
            .result
    }
    fn left_padded(data: &[u8], field_len: usize) -> Vec<u8> {
        let mut e = vec![0u8; field_len.saturating_sub(data.len())];
        e.extend_from_slice(data);
        e
    }
    let (mut s, k) = one_key(KeyEntrySpec::new("EC"));
    let PublicKey::P256(pk) = public_key(&k) else {
        panic!()
    };
    for len in [0usize, 1, 8, 15, 16, 32, 40] {
        let data: Vec<u8> = (1..=len).map(|i| i as u8).collect();
        let sig = p256::ecdsa::Signature::from_der(&sign_none(&mut s, k.handle, &data)).unwrap();
        p256::ecdsa::VerifyingKey::from(&pk)
            .verify_prehash(&left_padded(&data, 32), &sig)
            .unwrap_or_else(|err| panic!("{len} bytes: {err}"));
    }
    let (mut s, k) = one_key_of("EC384", ALG_KEY_EC_P384);
    let PublicKey::P384(pk) = public_key(&k) else {
        panic!()
    };
    let data = vec![0xA5; 20];
    let sig = p384::ecdsa::Signature::from_der(&sign_none(&mut s, k.handle, &data)).unwrap();
    p384::ecdsa::VerifyingKey::from(&pk)
        .verify_prehash(&left_padded(&data, 48), &sig)
        .unwrap();
}
