//! PIN/PUK behaviour: formats, patterns and grouping at createKeyEntry [9] and changePIN [83];
//! lock-out with user-defined and issuer-set PINs; unlockKey [82] and setPIN [84] with a PUK;
//! PUK retry limits including 0 = "no limit, delay"; getKeyProtectionInfo [72] status bits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, Request, SksApi};
use sks_core::consts::*;
use sks_core::secret::Secret;
use sks_core::{Config, ErrorCode, SksError};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use std::time::{Duration, Instant};

fn policy(fmt: PinFormat, patterns: u8) -> PinPolicy {
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.format = fmt;
    p.attributes.pattern_restrictions = patterns;
    p.attributes.min_length = 1;
    p.attributes.max_length = 16;
    p
}

/// changePIN \[83\] of `key_handle` from `pin` to `new_pin`.
fn change_pin(
    s: &mut impl SksApi,
    key_handle: u32,
    pin: &str,
    new_pin: &str,
) -> Result<(), SksError> {
    s.change_pin(req::ChangePin {
        key_handle,
        authorization: Secret::from(pin),
        new_pin: Secret::from(new_pin),
    })
    .map(drop)
}

/// createKeyEntry with a user-defined PIN under `p`; Ok if the key was created.
fn create_with_pin(p: PinPolicy, pin: &[u8]) -> bool {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let ph = pin_policy(&mut s, &mut iss, &p);
    let mut k = KeyEntrySpec::new("Key.1");
    k.pin_policy = Some((ph, "PIN.1".into(), p.attributes.user_defined));
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
    p.attributes.min_length = 4;
    p.attributes.max_length = 6;
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
    use pattern::*;
    use PinFormat::{Alphanumeric, Numeric};
    // (format, pattern restrictions, user PIN, accepted)
    let cases: [(PinFormat, u8, &[u8], bool); 14] = [
        (Numeric, TWO_IN_A_ROW, b"1124", false),
        (Numeric, TWO_IN_A_ROW, b"1214", true),
        (Numeric, THREE_IN_A_ROW, b"1114", false),
        (Numeric, THREE_IN_A_ROW, b"1124", true),
        (Numeric, SEQUENCE, b"1234", false),
        (Numeric, SEQUENCE, b"9876", false),
        (Numeric, SEQUENCE, b"1243", true),
        (Numeric, REPEATED, b"1213", false),
        (Numeric, REPEATED, b"1293", true),
        (Alphanumeric, MISSING_GROUP, b"ABCD", false),
        (Alphanumeric, MISSING_GROUP, b"AB12", true),
        (PinFormat::String, MISSING_GROUP, b"AB12", false),
        (PinFormat::String, MISSING_GROUP, b"Ab1!", true),
        (Numeric, SEQUENCE | REPEATED, b"1231", false),
    ];
    for (format, patterns, pin, accepted) in cases {
        assert_eq!(
            create_with_pin(policy(format, patterns), pin),
            accepted,
            "{format:?} with patterns 0x{patterns:02X}: PIN {:?}",
            String::from_utf8_lossy(pin)
        );
    }
}

/// Creates keys with (AppUsage, PIN) under one policy with `grouping`; returns how many were created.
fn grouping_run(grouping_value: Grouping, keys: &[(AppUsage, &str)]) -> usize {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let mut p = policy(PinFormat::Numeric, 0);
    p.attributes.grouping = grouping_value;
    let ph = pin_policy(&mut s, &mut iss, &p);
    for (i, (usage, pin)) in keys.iter().enumerate() {
        let mut k = pin_spec(&format!("Key.{i}"), ph, pin.as_bytes());
        k.protection.app_usage = *usage;
        if let Err(e) = s.create_key_entry(iss.key_entry(&k).unwrap()) {
            assert_eq!(e.code(), ErrorCode::Option, "grouping violation: {e:?}");
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
    p.attributes.user_defined = false;
    p.attributes.user_modifiable = false;
    p.attributes.retry_limit = 2;
    let k = pin_key_session(&mut s, &identity(), p, "5829");
    sign(&mut s, k.handle, "5829").unwrap();
    let info = protection(&mut s, k.handle);
    let q = info.pin_policy;
    assert!(!q.user_defined && !q.user_modifiable && q.retry_limit == 2);
    for _ in 0..2 {
        assert_eq!(
            code(sign(&mut s, k.handle, "1111")),
            ErrorCodeOf(ErrorCode::Authorization)
        );
    }
    assert_eq!(
        code(sign(&mut s, k.handle, "5829")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    // Not user modifiable: changePIN is refused even with the right PIN after unlock.
    unlock_key(&mut s, k.handle, "12345678").unwrap();
    let r = change_pin(&mut s, k.handle, "5829", "4711");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
}

#[test]
fn unlock_key_with_puk_and_puk_lock_out() {
    let mut s = sks();
    let k = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    let unlock = Request::UnlockKey(req::UnlockKey {
        key_handle: k.handle,
        authorization: Secret::from("0"),
    });
    assert_eq!(
        s.inner.puk_delay_for(&unlock),
        None,
        "a limited PUK is not delayed"
    );
    for _ in 0..3 {
        let _ = sign(&mut s, k.handle, "9999");
    }
    assert_eq!(
        code(unlock_key(&mut s, k.handle, "00000000")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(protection(&mut s, k.handle).puk_error_count, 1);
    unlock_key(&mut s, k.handle, "12345678").unwrap();
    let p = protection(&mut s, k.handle);
    assert_eq!((p.pin_error_count, p.puk_error_count), (0, 0));
    sign(&mut s, k.handle, "1234").unwrap();
    for _ in 0..3 {
        let _ = unlock_key(&mut s, k.handle, "0");
    }
    assert_ne!(
        protection(&mut s, k.handle).protection_status & protection_status::PUK_BLOCKED,
        0
    );
    let r = unlock_key(&mut s, k.handle, "12345678");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Authorization), "PUK locked");
}

#[test]
fn puk_retry_limit_zero_means_no_limit_with_delay() {
    let delay = Duration::from_millis(300);
    let mut s = sks_with_config(Config {
        puk_delay: delay,
        ..config(clock())
    });
    let mut iss = open_s1(&mut s);
    let ph = pin_and_puk(&mut s, &mut iss, PinPolicy::new("PIN.1"), 0);
    let spec = pin_spec("Key.1", ph, b"1234");
    let k = key(&mut s, &mut iss, &spec);
    close(&mut s, &mut iss).unwrap();
    let unlock = |puk: &str| {
        Request::UnlockKey(req::UnlockKey {
            key_handle: k.handle,
            authorization: Secret::from(puk),
        })
    };
    // Every check of this PUK must wait the configured delay first. The SKS names the
    // delay; the test runs the paced call without waiting itself.
    let paced = s
        .inner
        .puk_delay_for(&unlock("0"))
        .expect("PUK check is delayed");
    assert_eq!(paced.delay(), delay);
    for _ in 0..20 {
        assert_eq!(s.inner.puk_delay_for(&unlock("0")), Some(paced));
        assert_eq!(
            code(s.inner.call_after_delay(unlock("0"), paced)),
            ErrorCodeOf(ErrorCode::Authorization)
        );
    }
    let set_pin = Request::SetPin(req::SetPin {
        key_handle: k.handle,
        authorization: Secret::from("12345678"),
        new_pin: Secret::from("5678"),
    });
    assert_eq!(s.inner.puk_delay_for(&set_pin), Some(paced), "setPIN too");
    let p = protection(&mut s, k.handle);
    assert_eq!((p.puk_retry_limit, p.puk_error_count), (0, 0));
    assert_eq!(p.protection_status & protection_status::PUK_BLOCKED, 0);
    // Through the API the call itself waits the delay before checking the right PUK.
    let start = Instant::now();
    unlock_key(&mut s, k.handle, "12345678").unwrap();
    assert!(
        start.elapsed() >= delay,
        "unlockKey waited {:?}",
        start.elapsed()
    );
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
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "the old PIN no longer works"
    );
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
    p.attributes.pattern_restrictions = pattern::SEQUENCE;
    let k = pin_key_session(&mut s, &identity(), p, "1357");
    let r = change_pin(&mut s, k.handle, "0000", "2468");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Authorization));
    assert_eq!(protection(&mut s, k.handle).pin_error_count, 1);
    let r = change_pin(&mut s, k.handle, "1357", "3456");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option), "sequence pattern");
    change_pin(&mut s, k.handle, "1357", "2468").unwrap();
    sign(&mut s, k.handle, "2468").unwrap();
}

#[test]
fn shared_pin_changes_and_errors_propagate_to_all_keys() {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let ph = pin_and_puk(&mut s, &mut iss, PinPolicy::new("PIN.1"), 3);
    let mut handles = Vec::new();
    for (i, usage) in [AppUsage::Signature, AppUsage::Encryption]
        .into_iter()
        .enumerate()
    {
        let mut spec = pin_spec(&format!("Key.{i}"), ph, b"1234");
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
    change_pin(&mut s, handles[0], "1234", "4321").unwrap();
    sign(&mut s, handles[1], "4321").unwrap();
}

#[test]
fn device_pin_and_keys_without_pin() {
    let mut s = sks();
    let mut iss = open_s1(&mut s);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
    sign(&mut s, k.handle, "").unwrap();
    assert_eq!(
        code(sign(&mut s, k.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "redundant PIN"
    );
    assert_eq!(protection(&mut s, k.handle).protection_status, 0);
    let r = change_pin(&mut s, k.handle, "", "1234");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
    let r = unlock_key(&mut s, k.handle, "1");
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NotAllowed));
}

#[test]
fn enable_pin_caching_requires_trusted_gui() {
    for (im, ok) in [(InputMethod::TrustedGui, true), (InputMethod::Any, false)] {
        let mut s = sks();
        let mut iss = open_s1(&mut s);
        let mut p = PinPolicy::new("PIN.1");
        p.attributes.input_method = im;
        let ph = pin_policy(&mut s, &mut iss, &p);
        let mut k = pin_spec("Key.1", ph, b"1234");
        k.protection.enable_pin_caching = true;
        let r = s.create_key_entry(iss.key_entry(&k).unwrap());
        if ok {
            r.unwrap();
        } else {
            assert_eq!(
                r.unwrap_err(),
                SksError::new(
                    ErrorCode::Option,
                    "\"EnablePINCaching\" requires \"trusted-gui\""
                )
            );
        }
    }
}

#[test]
fn biometric_protection_rules_when_supported() {
    let clock = clock();
    let mut cfg = config(clock);
    cfg.biometric_support = true;
    let run = |bio: BiometricProtection, with_pin: bool| -> bool {
        let mut s = sks_with_config(cfg.clone());
        let mut iss = open_s1(&mut s);
        let mut k = KeyEntrySpec::new("Key.1");
        k.protection.biometric = bio;
        if with_pin {
            let ph = pin_policy(&mut s, &mut iss, &PinPolicy::new("PIN.1"));
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

/// The biometric factor is the embedder's sensor input (§5.3) and applies to the
/// cryptographic User API calls only; deleteKey, exportKey and changePIN check the PIN alone.
#[test]
fn biometric_factor_is_a_sensor_input_for_crypto_calls_only() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let sensor = Arc::new(AtomicBool::new(false));
    let mut cfg = config(clock());
    cfg.biometric_support = true;
    let reading = Arc::clone(&sensor);
    cfg.biometric = Arc::new(move |_| reading.load(std::sync::atomic::Ordering::SeqCst));
    let mut s = sks_with_config(cfg);
    let mut iss = open_s1(&mut s);
    let ph = pin_policy(&mut s, &mut iss, &PinPolicy::new("PIN.1"));
    let mut make = |name: &str, bio: BiometricProtection, with_pin: bool| {
        let mut k = KeyEntrySpec::new(name);
        k.protection.biometric = bio;
        if with_pin {
            k.pin_policy = Some((ph, "PIN.1".into(), true));
            k.pin_value = b"1234".to_vec();
            k.protection.export_protection = Protection::Pin;
            k.protection.delete_protection = Protection::Pin;
        }
        key(&mut s, &mut iss, &k).handle
    };
    let alt = make("Key.alt", BiometricProtection::Alternative, true);
    let comb = make("Key.comb", BiometricProtection::Combined, true);
    let excl = make("Key.excl", BiometricProtection::Exclusive, false);
    close(&mut s, &mut iss).unwrap();
    let auth = ErrorCodeOf(ErrorCode::Authorization);
    let set = |on: bool| sensor.store(on, std::sync::atomic::Ordering::SeqCst);

    // No biometric verification.
    set(false);
    assert_eq!(code(sign(&mut s, alt, "")), auth);
    sign(&mut s, alt, "1234").unwrap();
    assert_eq!(code(sign(&mut s, comb, "1234")), auth);
    assert_eq!(code(sign(&mut s, comb, "")), auth);
    assert_eq!(
        protection(&mut s, comb).pin_error_count,
        0,
        "a missing biometric never counts as a PIN error"
    );
    assert_eq!(code(sign(&mut s, excl, "")), auth);

    // The sensor verified the user.
    set(true);
    sign(&mut s, alt, "").unwrap();
    sign(&mut s, alt, "1234").unwrap();
    assert_eq!(code(sign(&mut s, alt, "9999")), auth);
    assert_eq!(protection(&mut s, alt).pin_error_count, 1);
    sign(&mut s, comb, "1234").unwrap();
    assert_eq!(
        code(sign(&mut s, comb, "")),
        auth,
        "combined needs the PIN too"
    );
    sign(&mut s, excl, "").unwrap();
    assert_eq!(
        code(sign(&mut s, excl, "1234")),
        auth,
        "an exclusive key has no PIN"
    );

    // Management calls do not consult the sensor.
    set(false);
    change_pin(&mut s, comb, "1234", "2580").unwrap();
    export_key(&mut s, comb, "2580").unwrap();
    delete_key(&mut s, comb, "2580").unwrap();
    export_key(&mut s, excl, "").unwrap();
    delete_key(&mut s, excl, "").unwrap();
    assert_eq!(keys(&mut s), vec![alt]);
}

/// Closed session with four keys under one PIN policy with `grouping`: two
/// signature keys, an authentication key and an encryption key, with `pins`.
fn grouped_keys(s: &mut impl SksApi, grouping: Grouping, pins: [&str; 4]) -> Vec<u32> {
    use AppUsage::*;
    let usages = [Signature, Signature, Authentication, Encryption];
    let mut iss = open_s1(s);
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.grouping = grouping;
    let ph = pin_and_puk(s, &mut iss, p, 3);
    let mut handles = Vec::new();
    for (i, (usage, pin)) in usages.into_iter().zip(pins).enumerate() {
        let mut spec = pin_spec(&format!("Key.{i}"), ph, pin.as_bytes());
        spec.protection.app_usage = usage;
        handles.push(key(s, &mut iss, &spec).handle);
    }
    close(s, &mut iss).unwrap();
    handles
}

/// A wrong PIN on key `i` of `keys`: refused, and the PIN error counts of
/// all of them are `counts` after it.
fn wrong_pin(s: &mut impl SksApi, keys: &[u32], i: usize, counts: [u16; 4]) {
    assert_eq!(
        code(sign(s, keys[i], "9999")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(error_counts(s, keys), counts);
}

fn error_counts(s: &mut impl SksApi, handles: &[u32]) -> Vec<u16> {
    handles
        .iter()
        .map(|h| protection(s, *h).pin_error_count)
        .collect()
}

#[test]
fn signature_plus_standard_synchronises_signature_keys_and_the_rest_separately() {
    let mut s = sks();
    let pins = ["1111", "1111", "2222", "2222"];
    let k = grouped_keys(&mut s, Grouping::SignaturePlusStandard, pins);
    let auth = ErrorCodeOf(ErrorCode::Authorization);
    wrong_pin(&mut s, &k, 0, [1, 1, 0, 0]);
    wrong_pin(&mut s, &k, 3, [1, 1, 1, 1]);
    sign(&mut s, k[1], "1111").unwrap();
    assert_eq!(error_counts(&mut s, &k), [0, 0, 1, 1]);
    change_pin(&mut s, k[2], "2222", "3333").unwrap();
    assert_eq!(error_counts(&mut s, &k), [0, 0, 0, 0]);
    sign(&mut s, k[3], "3333").unwrap();
    assert_eq!(code(sign(&mut s, k[3], "2222")), auth);
    sign(&mut s, k[0], "1111").unwrap();
    assert_eq!(code(sign(&mut s, k[1], "3333")), auth);
    assert_eq!(error_counts(&mut s, &k), [1, 1, 1, 1]);
}

#[test]
fn unique_grouping_synchronises_keys_of_the_same_app_usage() {
    let mut s = sks();
    let k = grouped_keys(&mut s, Grouping::Unique, ["1111", "1111", "2222", "3333"]);
    let auth = ErrorCodeOf(ErrorCode::Authorization);
    wrong_pin(&mut s, &k, 1, [1, 1, 0, 0]);
    wrong_pin(&mut s, &k, 2, [1, 1, 1, 0]);
    change_pin(&mut s, k[0], "1111", "5555").unwrap();
    assert_eq!(error_counts(&mut s, &k), [0, 0, 1, 0]);
    sign(&mut s, k[1], "5555").unwrap();
    assert_eq!(code(sign(&mut s, k[1], "1111")), auth);
    sign(&mut s, k[2], "2222").unwrap();
    sign(&mut s, k[3], "3333").unwrap();
    assert_eq!(error_counts(&mut s, &k), [1, 1, 0, 0]);
}
