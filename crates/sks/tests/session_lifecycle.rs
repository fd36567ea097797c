//! createProvisioningSession [2], closeProvisioningSession [3], enumerateProvisioningSessions [4],
//! abortProvisioningSession [5], signProvisioningSessionData [6], getKeyHandle [10],
//! getDeviceInfo [1]: attestation (E2ES and PEP), MAC counter, SessionKeyLimit, SessionLifeTime,
//! close checks (unreferenced policies, missing certificate), ID syntax.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, SksApi};
use sks_core::consts::*;
use sks_core::{ErrorCode, SksError};
use sks_issuer::{Issuer, IssuerError, KeyEntrySpec, PinPolicy};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A fresh SKS with session "S1" of a fresh issuer open on it, and that session's handle.
fn sks_with_open_session() -> (TestSks, Issuer, u32) {
    let mut s = sks();
    let (iss, ph) = open_session(&mut s, &identity(), "S1");
    (s, iss, ph)
}

fn abort(s: &mut TestSks, ph: u32) -> Result<(), SksError> {
    s.abort_provisioning_session(req::AbortProvisioningSession {
        provisioning_handle: ph,
    })
    .map(|_| ())
}

fn get_key_handle(s: &mut TestSks, ph: u32, id: &str) -> Result<u32, SksError> {
    s.get_key_handle(req::GetKeyHandle {
        provisioning_handle: ph,
        id: id.into(),
    })
    .map(|out| out.key_handle)
}

#[test]
fn get_device_info_reports_software_sks_1_00() {
    let mut s = sks();
    let i = s.get_device_info(req::GetDeviceInfo {}).unwrap();
    assert_eq!(i.api_level, 100);
    assert_eq!(i.device_type, 0x01);
    assert!(i.update_url.is_empty());
    assert!(i.crypto_data_size >= 16384 && i.extension_data_size >= 65536);
    assert!(i.supported_algorithms.0.iter().any(|a| a == ALG_SESSION_S1));
    assert!(
        sks_core::x509::certificate_subject(&i.certificate_path.0[0])
            .unwrap()
            .contains("CN=")
    );
}

#[test]
fn create_provisioning_session_e2es_attestation_verifies_with_device_certificate() {
    let mut s = sks();
    let dc = device_cert(&mut s);
    let id = identity();
    let mut iss = id.session(ISSUER_URI, "S1");
    let out = s
        .create_provisioning_session(iss.create_session_request().unwrap())
        .unwrap();
    assert!(out.client_session_id.starts_with('C') && out.client_session_id.len() == 32);
    assert!(
        out.attestation.len() > 32,
        "E2ES attestation is an ECDSA signature"
    );
    iss.accept_session(&out, &dc).unwrap();
    // A different device certificate must not verify it.
    let mut other = id.session(ISSUER_URI, "S1");
    let other_dc = device_cert(&mut sks());
    let out2 = s
        .create_provisioning_session(other.create_session_request().unwrap())
        .unwrap();
    assert!(matches!(
        other.accept_session(&out2, &other_dc),
        Err(IssuerError::Attestation("session"))
    ));
}

#[test]
fn create_provisioning_session_privacy_enabled_uses_anonymous_device_id() {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session(ISSUER_URI, "S1");
    iss.privacy_enabled = true;
    let out = s
        .create_provisioning_session(iss.create_session_request().unwrap())
        .unwrap();
    assert_eq!(
        out.attestation.len(),
        32,
        "PEP attestation is the bare HMAC"
    );
    iss.accept_session(&out, b"ignored").unwrap();
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
    let e = next_session(&mut s, 0, false);
    assert!(e.privacy_enabled);
    assert!(keys(&mut s).contains(&k.handle));
}

#[test]
fn create_provisioning_session_parameter_errors() {
    let mut s = sks();
    let id = identity();
    let iss = id.session(ISSUER_URI, "S1");
    let mut r = iss.create_session_request().unwrap();
    r.algorithm = ALG_KEY_K1.into();
    assert_eq!(
        code(s.create_provisioning_session(r)),
        ErrorCodeOf(ErrorCode::Algorithm)
    );
    let mut r = iss.create_session_request().unwrap();
    r.server_ephemeral_key = vec![1, 2, 3];
    assert_eq!(
        code(s.create_provisioning_session(r)),
        ErrorCodeOf(ErrorCode::Option)
    );
    let mut r = iss.create_session_request().unwrap();
    r.server_session_id = ".bad".into();
    assert_eq!(
        code(s.create_provisioning_session(r)),
        ErrorCodeOf(ErrorCode::Option)
    );
    let mut r = iss.create_session_request().unwrap();
    r.issuer_uri = String::new();
    assert_aborts(s.create_provisioning_session(r), ErrorCode::Option, &mut s);
}

#[test]
fn id_syntax_rules() {
    for good in [
        "a",
        "_",
        "a.",
        "azAZ09-._",
        "abcdefghijklmnopqrstuvwxyz012345",
    ] {
        assert!(sks_core::engine::check_id_syntax(good).is_ok(), "{good}");
    }
    for bad in [
        ".a",
        "-",
        " a",
        "",
        "abcdefghijklmnopqrstuvwxyz0123456",
        "a b",
        "ä",
    ] {
        assert_eq!(
            code(sks_core::engine::check_id_syntax(bad)),
            ErrorCodeOf(ErrorCode::Option),
            "{bad:?}"
        );
    }
    // A bad key ID aborts the session.
    let (mut s, mut iss, ph) = sks_with_open_session();
    let r = s.create_key_entry(iss.key_entry(&KeyEntrySpec::new("1abc")).unwrap());
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
    assert_eq!(code(abort(&mut s, ph)), ErrorCodeOf(ErrorCode::NoSession));
}

#[test]
fn duplicate_ids_share_one_namespace_and_abort() {
    let (mut s, mut iss, ph) = sks_with_open_session();
    s.create_puk_policy(iss.puk_policy("X", b"1234", PinFormat::Numeric, 3).unwrap())
        .unwrap();
    let r = s.create_key_entry(iss.key_entry(&KeyEntrySpec::new("X")).unwrap());
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
    assert_eq!(
        code(abort(&mut s, ph)),
        ErrorCodeOf(ErrorCode::NoSession),
        "the duplicate aborted the session"
    );
}

#[test]
fn close_provisioning_session_fails_on_unreferenced_pin_policy() {
    let (mut s, mut iss, _) = sks_with_open_session();
    s.create_pin_policy(iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap())
        .unwrap();
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    assert_eq!(
        code(close(&mut s, &mut iss)),
        ErrorCodeOf(ErrorCode::Option)
    );
    assert_eq!(
        session_count(&mut s, true) + session_count(&mut s, false),
        0
    );
    assert!(keys(&mut s).is_empty());
}

#[test]
fn close_provisioning_session_fails_on_unreferenced_puk_policy() {
    let (mut s, mut iss, _) = sks_with_open_session();
    s.create_puk_policy(
        iss.puk_policy("PUK.1", b"1234", PinFormat::Numeric, 3)
            .unwrap(),
    )
    .unwrap();
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    let e = close(&mut s, &mut iss).unwrap_err();
    assert!(e.message().contains("Unreferenced object \"PUK.1\""), "{e}");
}

#[test]
fn close_provisioning_session_fails_without_set_certificate_path() {
    let (mut s, mut iss, _) = sks_with_open_session();
    s.create_key_entry(iss.key_entry(&KeyEntrySpec::new("Key.1")).unwrap())
        .unwrap();
    let e = close(&mut s, &mut iss).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Option);
    assert!(e.message().contains("setCertificatePath"));
    assert!(keys(&mut s).is_empty());
}

#[test]
fn close_provisioning_session_with_tampered_mac_fails_and_aborts() {
    let (mut s, mut iss, ph) = sks_with_open_session();
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    let mut r = iss.close(b"n").unwrap();
    r.mac[0] ^= 1;
    assert_eq!(
        code(s.close_provisioning_session(r)),
        ErrorCodeOf(ErrorCode::Mac)
    );
    assert_eq!(code(abort(&mut s, ph)), ErrorCodeOf(ErrorCode::NoSession));
}

#[test]
fn tampered_mac_on_any_provisioning_call_aborts_the_session() {
    let mut s = sks();
    let id = identity();
    let (mut iss, ph) = open_session(&mut s, &id, "S1");
    let mut r = iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap();
    r.policy.retry_limit = 4; // data changed after MACing
    assert_aborts(s.create_pin_policy(r), ErrorCode::Mac, &mut s);
    // Replaying a request with a stale counter also fails.
    let (mut iss, _) = open_session(&mut s, &id, "S2");
    let r1 = iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap();
    let r2 = iss.pin_policy(&PinPolicy::new("PIN.2"), None).unwrap();
    assert_eq!(
        code(s.create_pin_policy(r2)),
        ErrorCodeOf(ErrorCode::Mac),
        "out-of-order MAC"
    );
    let _ = (r1, ph);
}

#[test]
fn close_nonce_must_be_1_to_32_bytes() {
    let (mut s, mut iss, _) = sks_with_open_session();
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    let r = iss.close(&[0u8; 33]).unwrap();
    assert_eq!(
        code(s.close_provisioning_session(r)),
        ErrorCodeOf(ErrorCode::Option)
    );
}

#[test]
fn abort_provisioning_session_removes_everything() {
    let (mut s, mut iss, ph) = sks_with_open_session();
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    abort(&mut s, ph).unwrap();
    assert_eq!(session_count(&mut s, true), 0);
    assert_eq!(code(abort(&mut s, ph)), ErrorCodeOf(ErrorCode::NoSession));
    assert_eq!(
        code(get_key_handle(&mut s, ph, "Key.1")),
        ErrorCodeOf(ErrorCode::NoSession)
    );
}

#[test]
fn enumerate_provisioning_sessions_walks_open_and_closed() {
    let mut s = sks();
    let id = identity();
    let mut a = id.session("https://issuer.example.com/a", "A");
    open(&mut s, &mut a);
    key(&mut s, &mut a, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut a).unwrap();
    let mut b = id.session("https://issuer.example.com/b", "B");
    let ph_b = open(&mut s, &mut b);
    assert_eq!(session_count(&mut s, true), 1);
    assert_eq!(session_count(&mut s, false), 1);
    let e = next_session(&mut s, 0, true);
    assert_eq!(e.provisioning_handle, ph_b);
    assert_eq!(e.server_session_id, "B");
    assert_eq!(e.issuer_uri, "https://issuer.example.com/b");
    assert_eq!(e.key_management_key, b.key_management_key_spki().unwrap());
}

#[test]
fn sign_provisioning_session_data_matches_issuer() {
    let (mut s, mut iss, ph) = sks_with_open_session();
    let out = s
        .sign_provisioning_session_data(req::SignProvisioningSessionData {
            provisioning_handle: ph,
            data: b"abc".to_vec(),
        })
        .unwrap();
    assert_eq!(
        out.signature,
        iss.expected_session_signature(b"abc").unwrap()
    );
    // It uses no MAC counter value: the next MACed call still works.
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
}

#[test]
fn get_key_handle_finds_keys_and_unknown_id_aborts() {
    let (mut s, mut iss, ph) = sks_with_open_session();
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    assert_eq!(get_key_handle(&mut s, ph, "Key.1").unwrap(), k.handle);
    assert_aborts(
        get_key_handle(&mut s, ph, "Key.2"),
        ErrorCode::Option,
        &mut s,
    );
}

/// Byte layouts §4.4 / [T] test47: one PIN policy, one key, close.
fn session_key_limit_run(limit: u16, issuer_set: bool) -> Result<(), SksError> {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session(ISSUER_URI, "S1");
    iss.session_key_limit = limit;
    open(&mut s, &mut iss);
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.user_defined = !issuer_set;
    let pin = s.create_pin_policy(iss.pin_policy(&p, None).unwrap())?;
    let mut k = KeyEntrySpec::new("Key.1");
    k.pin_policy = Some((pin.pin_policy_handle, "PIN.1".into(), !issuer_set));
    k.pin_value = b"1234".to_vec();
    let out = s.create_key_entry(iss.key_entry(&k).unwrap())?;
    let ee = iss.certify("k", &out.public_key).unwrap();
    s.set_certificate_path(
        iss.certificate_path(out.key_handle, "Key.1", &out.public_key, vec![ee])
            .unwrap(),
    )?;
    close(&mut s, &mut iss)
}

#[test]
fn session_key_limit_exhaustion() {
    let exceeded = Err(SksError::new(ErrorCode::Option, "SessionKeyLimit exceeded"));
    assert_eq!(session_key_limit_run(5, false), exceeded);
    assert_eq!(session_key_limit_run(6, false), Ok(()));
    assert_eq!(session_key_limit_run(7, false), Ok(()));
    assert_eq!(session_key_limit_run(6, true), exceeded);
    assert_eq!(session_key_limit_run(7, true), Ok(()));
}

#[test]
fn session_key_limit_error_code_is_option() {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session(ISSUER_URI, "S1");
    iss.session_key_limit = 1;
    open(&mut s, &mut iss);
    s.create_pin_policy(iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap())
        .unwrap();
    let r = s.create_pin_policy(iss.pin_policy(&PinPolicy::new("PIN.2"), None).unwrap());
    let e = r.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Option);
    assert!(e.message().contains("SessionKeyLimit"));
}

/// An SKS on a test clock with session "S1" open for `life_time` seconds;
/// returns the clock, the SKS, the issuer and the session handle.
fn open_for(life_time: u32) -> (Arc<AtomicU64>, TestSks, Issuer, u32) {
    let clock = clock();
    let mut s = sks_with_clock(clock.clone());
    let mut iss = identity().session(ISSUER_URI, "S1");
    iss.session_life_time = life_time;
    let ph = open(&mut s, &mut iss);
    (clock, s, iss, ph)
}

#[test]
fn session_life_time_expiry_aborts_open_session() {
    let (clock, mut s, mut iss, ph) = open_for(60);
    clock.fetch_add(60, Ordering::SeqCst);
    key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1")); // still inside the lifetime
    clock.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        code(close(&mut s, &mut iss)),
        ErrorCodeOf(ErrorCode::NoSession)
    );
    assert_aborts(
        get_key_handle(&mut s, ph, "Key.1"),
        ErrorCode::NoSession,
        &mut s,
    );
}

#[test]
fn closed_sessions_do_not_expire() {
    let (clock, mut s, mut iss, _) = open_for(10);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
    clock.fetch_add(1_000_000, Ordering::SeqCst);
    assert_eq!(keys(&mut s), vec![k.handle]);
}

#[test]
fn enumerations_end_at_an_unknown_handle() {
    fn sessions(s: &mut impl SksApi, h: u32) -> u32 {
        next_session(s, h, true).provisioning_handle
    }
    fn next_key(s: &mut impl SksApi, h: u32) -> u32 {
        s.enumerate_keys(req::EnumerateKeys { key_handle: h })
            .unwrap()
            .key_handle
    }
    let mut s = sks();
    let id = identity();
    let mut a = id.session("https://issuer.example.com/a", "A");
    let ph_a = open(&mut s, &mut a);
    let k1 = key(&mut s, &mut a, &KeyEntrySpec::new("Key.1")).handle;
    let k2 = key(&mut s, &mut a, &KeyEntrySpec::new("Key.2")).handle;
    close(&mut s, &mut a).unwrap();
    let mut b = id.session("https://issuer.example.com/b", "B");
    let ph_b = open(&mut s, &mut b);
    // A known handle continues the walk after it.
    assert_eq!(sessions(&mut s, ph_a), ph_b);
    assert_eq!(next_key(&mut s, k1), k2);
    // A handle that names no session (here a key's) ends the session walk.
    assert_eq!(sessions(&mut s, k1), 0);
    // An aborted session's handle is unknown from then on.
    let mut c = id.session("https://issuer.example.com/c", "C");
    let ph_c = open(&mut s, &mut c);
    abort(&mut s, ph_b).unwrap();
    assert_eq!(sessions(&mut s, 0), ph_c);
    assert_eq!(sessions(&mut s, ph_b), 0);
    // A deleted key's handle ends the key walk, although a later key exists.
    delete_key(&mut s, k1, "").unwrap();
    assert_eq!(next_key(&mut s, 0), k2);
    assert_eq!(next_key(&mut s, k1), 0);
    // A handle never issued ends it too.
    assert_eq!(next_key(&mut s, u32::MAX - 1), 0);
}
