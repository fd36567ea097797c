//! PIN/PUK behaviour: formats, patterns and grouping at createKeyEntry [9] and changePIN [83];
//! lock-out with user-defined and issuer-set PINs; unlockKey [82] and setPIN [84] with a PUK;
//! PUK retry limits including 0 = "no limit, delay"; getKeyProtectionInfo [72] status bits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, SksApi};
use sks_core::consts::*;
use sks_core::secret::Secret;
use sks_core::ErrorCode;
use sks_issuer::{KeyEntrySpec, PinPolicy};

fn policy(fmt: PinFormat, patterns: u8) -> PinPolicy {
    let mut p = PinPolicy::new("PIN.1");
    p.format = fmt;
    p.patterns = patterns;
    p.min_length = 1;
    p.max_length = 16;
    p
}

/// createKeyEntry with a user-defined PIN under `p`; Ok if the key was created.
fn create_with_pin(p: PinPolicy, pin: &[u8]) -> bool {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let ph = s
        .create_pin_policy(iss.pin_policy(&p, None).unwrap())
        .unwrap()
        .pin_policy_handle;
    let mut k = KeyEntrySpec::new("Key.1");
    k.pin_policy = Some((ph, "PIN.1".into(), p.user_defined));
    k.pin_value = pin.to_vec();
    let r = s.create_key_entry(iss.key_entry(&k).unwrap());
    if let Err(e) = r {
        assert_eq!(e.code(), ErrorCode::Option);
        assert_eq!(
            session_count(&mut s, true),
            0,
            "policy violations abort the session"
        );
        return false;
    }
    true
}

#[test]
fn pin_formats_at_create_key_entry() {
    assert!(create_with_pin(policy(PinFormat::Numeric, 0), b"0123"));
    assert!(!create_with_pin(policy(PinFormat::Numeric, 0), b"01A3"));
    assert!(create_with_pin(policy(PinFormat::Alphanumeric, 0), b"AZ09"));
    assert!(!create_with_pin(
        policy(PinFormat::Alphanumeric, 0),
        b"az09"
    ));
    assert!(create_with_pin(
        policy(PinFormat::String, 0),
        "ünï cödé".as_bytes()
    ));
    assert!(create_with_pin(policy(PinFormat::Binary, 0), &[0x00, 0xFF]));
    let mut p = policy(PinFormat::Numeric, 0);
    p.min_length = 4;
    p.max_length = 6;
    assert!(!create_with_pin(p.clone(), b"123"));
    assert!(!create_with_pin(p.clone(), b"1234567"));
    assert!(create_with_pin(p, b"123456"));
    assert!(
        !create_with_pin(policy(PinFormat::Numeric, 0), b""),
        "empty user PIN"
    );
}

#[test]
fn pin_patterns_at_create_key_entry() {
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::TWO_IN_A_ROW),
        b"1124"
    ));
    assert!(create_with_pin(
        policy(PinFormat::Numeric, pattern::TWO_IN_A_ROW),
        b"1214"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::THREE_IN_A_ROW),
        b"1114"
    ));
    assert!(create_with_pin(
        policy(PinFormat::Numeric, pattern::THREE_IN_A_ROW),
        b"1124"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::SEQUENCE),
        b"1234"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::SEQUENCE),
        b"9876"
    ));
    assert!(create_with_pin(
        policy(PinFormat::Numeric, pattern::SEQUENCE),
        b"1243"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::REPEATED),
        b"1213"
    ));
    assert!(create_with_pin(
        policy(PinFormat::Numeric, pattern::REPEATED),
        b"1293"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Alphanumeric, pattern::MISSING_GROUP),
        b"ABCD"
    ));
    assert!(create_with_pin(
        policy(PinFormat::Alphanumeric, pattern::MISSING_GROUP),
        b"AB12"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::String, pattern::MISSING_GROUP),
        b"AB12"
    ));
    assert!(create_with_pin(
        policy(PinFormat::String, pattern::MISSING_GROUP),
        b"Ab1!"
    ));
    assert!(!create_with_pin(
        policy(PinFormat::Numeric, pattern::SEQUENCE | pattern::REPEATED),
        b"1231"
    ));
}

/// Creates keys with (AppUsage, PIN) under one policy with `grouping`; returns how many were created.
fn grouping_run(grouping_value: Grouping, keys: &[(AppUsage, &str)]) -> usize {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let mut p = policy(PinFormat::Numeric, 0);
    p.grouping = grouping_value;
    let ph = s
        .create_pin_policy(iss.pin_policy(&p, None).unwrap())
        .unwrap()
        .pin_policy_handle;
    for (i, (usage, pin)) in keys.iter().enumerate() {
        let mut k = KeyEntrySpec::new(&format!("Key.{i}"));
        k.pin_policy = Some((ph, "PIN.1".into(), true));
        k.pin_value = pin.as_bytes().to_vec();
        k.protection.app_usage = *usage;
        if s.create_key_entry(iss.key_entry(&k).unwrap()).is_err() {
            return i;
        }
    }
    keys.len()
}

#[test]
fn pin_grouping_rules_at_create_key_entry() {
    use AppUsage::*;
    assert_eq!(
        grouping_run(Grouping::None, &[(Signature, "1111"), (Signature, "2222")]),
        2
    );
    assert_eq!(
        grouping_run(
            Grouping::Shared,
            &[(Signature, "1111"), (Encryption, "1111")]
        ),
        2
    );
    assert_eq!(
        grouping_run(
            Grouping::Shared,
            &[(Signature, "1111"), (Encryption, "2222")]
        ),
        1
    );
    let sps = Grouping::SignaturePlusStandard;
    assert_eq!(
        grouping_run(
            sps,
            &[
                (Signature, "1111"),
                (Authentication, "2222"),
                (Encryption, "2222")
            ]
        ),
        3
    );
    assert_eq!(
        grouping_run(sps, &[(Signature, "1111"), (Authentication, "1111")]),
        1
    );
    assert_eq!(
        grouping_run(sps, &[(Authentication, "2222"), (Universal, "3333")]),
        1
    );
    let u = Grouping::Unique;
    assert_eq!(
        grouping_run(
            u,
            &[
                (Signature, "1"),
                (Authentication, "2"),
                (Encryption, "3"),
                (Universal, "4"),
                (Signature, "1")
            ]
        ),
        5
    );
    assert_eq!(
        grouping_run(u, &[(Signature, "1"), (Authentication, "1")]),
        1
    );
    assert_eq!(grouping_run(u, &[(Signature, "1"), (Signature, "2")]), 1);
}

#[test]
fn pin_lock_out_with_user_defined_pin() {
    let mut s = sks();
    let k = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    sign(&mut s, k.handle, "1234").unwrap();
    assert_eq!(
        code(sign(&mut s, k.handle, "0000")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(protection(&mut s, k.handle).pin_error_count, 1);
    sign(&mut s, k.handle, "1234").unwrap();
    assert_eq!(
        protection(&mut s, k.handle).pin_error_count,
        0,
        "success resets the counter"
    );
    for _ in 0..3 {
        assert_eq!(
            code(sign(&mut s, k.handle, "")),
            ErrorCodeOf(ErrorCode::Authorization)
        );
    }
    let p = protection(&mut s, k.handle);
    assert_eq!(
        p.protection_status,
        protection_status::PIN_PROTECTED
            | protection_status::PUK_PROTECTED
            | protection_status::PIN_BLOCKED
    );
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "locked even with the right PIN"
    );
    assert_eq!(
        protection(&mut s, k.handle).pin_error_count,
        3,
        "no increment while locked"
    );
}

#[test]
fn pin_lock_out_with_issuer_set_pin() {
    let mut s = sks();
    let mut p = PinPolicy::new("PIN.1");
    p.user_defined = false;
    p.user_modifiable = false;
    p.retry_limit = 2;
    let k = pin_key_session(&mut s, &identity(), p, "5829");
    sign(&mut s, k.handle, "5829").unwrap();
    let info = protection(&mut s, k.handle);
    assert!(!info.user_defined && !info.user_modifiable && info.retry_limit == 2);
    assert!(sign(&mut s, k.handle, "1111").is_err());
    assert!(sign(&mut s, k.handle, "1111").is_err());
    assert_eq!(
        code(sign(&mut s, k.handle, "5829")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    // Not user modifiable: changePIN is refused even with the right PIN after unlock.
    s.unlock_key(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
    })
    .unwrap();
    let r = s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: Secret::from("5829"),
        new_pin: Secret::from("4711"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
}

#[test]
fn unlock_key_with_puk_and_puk_lock_out() {
    let mut s = sks();
    let k = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    for _ in 0..3 {
        let _ = sign(&mut s, k.handle, "9999");
    }
    assert_eq!(
        code(s.unlock_key(req::UnlockKey {
            key_handle: k.handle,
            authorization: Secret::from("00000000")
        })),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(protection(&mut s, k.handle).puk_error_count, 1);
    s.unlock_key(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
    })
    .unwrap();
    let p = protection(&mut s, k.handle);
    assert_eq!((p.pin_error_count, p.puk_error_count), (0, 0));
    sign(&mut s, k.handle, "1234").unwrap();
    for _ in 0..3 {
        let _ = s.unlock_key(req::UnlockKey {
            key_handle: k.handle,
            authorization: Secret::from("0"),
        });
    }
    assert_ne!(
        protection(&mut s, k.handle).protection_status & protection_status::PUK_BLOCKED,
        0
    );
    let r = s.unlock_key(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Authorization), "PUK locked");
}

#[test]
fn puk_retry_limit_zero_means_no_limit_with_delay() {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let ph = pin_and_puk(&mut s, &mut iss, PinPolicy::new("PIN.1"), 0);
    let mut spec = KeyEntrySpec::new("Key.1");
    spec.pin_policy = Some((ph, "PIN.1".into(), true));
    spec.pin_value = b"1234".to_vec();
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    for _ in 0..20 {
        assert!(s
            .unlock_key(req::UnlockKey {
                key_handle: k.handle,
                authorization: Secret::from("0")
            })
            .is_err());
    }
    let p = protection(&mut s, k.handle);
    assert_eq!((p.puk_retry_limit, p.puk_error_count), (0, 0));
    assert_eq!(p.protection_status & protection_status::PUK_BLOCKED, 0);
    s.unlock_key(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
    })
    .unwrap();
}

#[test]
fn set_pin_with_puk_unlocks_and_sets() {
    let mut s = sks();
    let k = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    for _ in 0..3 {
        let _ = sign(&mut s, k.handle, "9999");
    }
    let r = s.set_pin(req::SetPin {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
        new_pin: Secret::from("12"),
    });
    assert_eq!(
        code(r),
        ErrorCodeOf(ErrorCode::Option),
        "new PIN violates MinLength"
    );
    s.set_pin(req::SetPin {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
        new_pin: Secret::from("7777"),
    })
    .unwrap();
    sign(&mut s, k.handle, "7777").unwrap();
    assert!(sign(&mut s, k.handle, "1234").is_err());
    let r = s.set_pin(req::SetPin {
        key_handle: k.handle,
        authorization: Secret::from("1"),
        new_pin: Secret::from("8888"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Authorization));
}

#[test]
fn change_pin_checks_old_pin_and_policy() {
    let mut s = sks();
    let mut p = PinPolicy::new("PIN.1");
    p.patterns = pattern::SEQUENCE;
    let k = pin_key_session(&mut s, &identity(), p, "1357");
    let r = s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: Secret::from("0000"),
        new_pin: Secret::from("2468"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Authorization));
    assert_eq!(protection(&mut s, k.handle).pin_error_count, 1);
    let r = s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: Secret::from("1357"),
        new_pin: Secret::from("3456"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option), "sequence pattern");
    s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: Secret::from("1357"),
        new_pin: Secret::from("2468"),
    })
    .unwrap();
    sign(&mut s, k.handle, "2468").unwrap();
}

#[test]
fn shared_pin_changes_and_errors_propagate_to_all_keys() {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let ph = pin_and_puk(&mut s, &mut iss, PinPolicy::new("PIN.1"), 3);
    let mut handles = Vec::new();
    for (i, usage) in [AppUsage::Signature, AppUsage::Encryption]
        .into_iter()
        .enumerate()
    {
        let mut spec = KeyEntrySpec::new(&format!("Key.{i}"));
        spec.pin_policy = Some((ph, "PIN.1".into(), true));
        spec.pin_value = b"1234".to_vec();
        spec.protection.app_usage = usage;
        handles.push(key(&mut s, &mut iss, &spec).handle);
    }
    close(&mut s, &mut iss).unwrap();
    let _ = sign(&mut s, handles[0], "0000");
    assert_eq!(
        protection(&mut s, handles[1]).pin_error_count,
        1,
        "one virtual counter"
    );
    s.change_pin(req::ChangePin {
        key_handle: handles[0],
        authorization: Secret::from("1234"),
        new_pin: Secret::from("4321"),
    })
    .unwrap();
    sign(&mut s, handles[1], "4321").unwrap();
}

#[test]
fn device_pin_and_keys_without_pin() {
    let mut s = sks();
    let id = identity();
    let mut iss = id.session("https://issuer.example.com/x", "S1");
    open(&mut s, &mut iss);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
    sign(&mut s, k.handle, "").unwrap();
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "redundant PIN"
    );
    assert_eq!(protection(&mut s, k.handle).protection_status, 0);
    let r = s.change_pin(req::ChangePin {
        key_handle: k.handle,
        authorization: Secret::default(),
        new_pin: Secret::from("1234"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
    let r = s.unlock_key(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("1"),
    });
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
}

#[test]
fn enable_pin_caching_requires_trusted_gui() {
    for (im, ok) in [(InputMethod::TrustedGui, true), (InputMethod::Any, false)] {
        let mut s = sks();
        let id = identity();
        let mut iss = id.session("https://issuer.example.com/x", "S1");
        open(&mut s, &mut iss);
        let mut p = PinPolicy::new("PIN.1");
        p.input_method = im;
        let ph = s
            .create_pin_policy(iss.pin_policy(&p, None).unwrap())
            .unwrap()
            .pin_policy_handle;
        let mut k = KeyEntrySpec::new("Key.1");
        k.pin_policy = Some((ph, "PIN.1".into(), true));
        k.pin_value = b"1234".to_vec();
        k.protection.enable_pin_caching = true;
        assert_eq!(s.create_key_entry(iss.key_entry(&k).unwrap()).is_ok(), ok);
    }
}

#[test]
fn biometric_protection_rules_when_supported() {
    let clock = clock();
    let mut cfg = config(clock);
    cfg.biometric_support = true;
    let run = |bio: BiometricProtection, with_pin: bool| -> bool {
        let mut s = sks_core::wire::WireLoopback {
            inner: sks_core::Sks::initialize(sks_core::MemoryStorage::new(), cfg.clone()).unwrap(),
        };
        let id = identity();
        let mut iss = id.session("https://issuer.example.com/x", "S1");
        open(&mut s, &mut iss);
        let mut k = KeyEntrySpec::new("Key.1");
        k.protection.biometric = bio;
        if with_pin {
            let ph = s
                .create_pin_policy(iss.pin_policy(&PinPolicy::new("PIN.1"), None).unwrap())
                .unwrap()
                .pin_policy_handle;
            k.pin_policy = Some((ph, "PIN.1".into(), true));
            k.pin_value = b"1234".to_vec();
        }
        s.create_key_entry(iss.key_entry(&k).unwrap()).is_ok()
    };
    assert!(run(BiometricProtection::Alternative, true));
    assert!(!run(BiometricProtection::Alternative, false));
    assert!(run(BiometricProtection::Combined, true));
    assert!(run(BiometricProtection::Exclusive, false));
    assert!(!run(BiometricProtection::Exclusive, true));
}
