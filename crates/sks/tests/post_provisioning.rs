//! postDeleteKey [50], postUnlockKey [51], postUpdateKey [52], postCloneKeyProtection [53]:
//! deferred execution at closeProvisioningSession [3], ownership transfer, conflict rules,
//! wrong or missing KeyManagementKeys, privacy-mode mismatch, and rollback on failed close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, SksApi};
use sks_core::consts::*;
use sks_core::crypto::keys::KeySpec;
use sks_core::ErrorCode;
use sks_core::SksError;
use sks_issuer::{Issuer, IssuerIdentity, KeyEntrySpec, PinPolicy};

struct Setup {
    s: TestSks,
    ident: IssuerIdentity,
    target: Provisioned,
    old_session: u32,
}

/// Session 1: a PIN+PUK protected P-256 key (PIN "1234") owned by an updatable session.
fn setup() -> Setup {
    setup_with(identity())
}

fn setup_with(ident: IssuerIdentity) -> Setup {
    let mut s = sks();
    let target = pin_key_session(&mut s, &ident, PinPolicy::new("PIN.1"), "1234");
    let old_session = next_session(&mut s, 0, false).provisioning_handle;
    Setup {
        s,
        ident,
        target,
        old_session,
    }
}

/// [`setup`], then a second session "S2" of the same issuer, open.
fn setup_and_open() -> (Setup, Issuer) {
    let mut st = setup();
    let (iss, _) = open_session(&mut st.s, &st.ident, "S2");
    (st, iss)
}

/// One unprotected key per id, in the open session of `iss`.
fn plain_keys<const N: usize>(
    s: &mut TestSks,
    iss: &mut Issuer,
    ids: [&str; N],
) -> [Provisioned; N] {
    ids.map(|id| key(s, iss, &KeyEntrySpec::new(id)))
}

/// [`setup_and_open`] with one unprotected key per id in the open session.
fn setup_and_open_with<const N: usize>(ids: [&str; N]) -> (Setup, Issuer, [Provisioned; N]) {
    let (mut st, mut iss) = setup_and_open();
    let made = plain_keys(&mut st.s, &mut iss, ids);
    (st, iss, made)
}

/// Session "S1" with one unprotected key per id, closed; then a second
/// session "S2" of the same issuer, open.
fn plain_keys_then_open<const N: usize>(ids: [&str; N]) -> (TestSks, Issuer, [Provisioned; N]) {
    let ident = identity();
    let mut s = sks();
    let (mut iss, _) = open_session(&mut s, &ident, "S1");
    let made = plain_keys(&mut s, &mut iss, ids);
    close(&mut s, &mut iss).unwrap();
    let (iss, _) = open_session(&mut s, &ident, "S2");
    (s, iss, made)
}

/// The four post-operations; `Update` and `Clone` name the new key that
/// takes over the target.
#[derive(Clone, Copy)]
enum Post<'a> {
    Delete,
    Unlock,
    Update(&'a Provisioned),
    Clone(&'a Provisioned),
}

/// Runs `op` on `target` in the open session of `iss`.
fn post(
    s: &mut TestSks,
    iss: &mut Issuer,
    op: Post<'_>,
    target: &Provisioned,
) -> Result<(), SksError> {
    let (h, ee) = (target.handle, &target.ee);
    match op {
        Post::Delete => s
            .post_delete_key(iss.post_delete_key(h, ee).unwrap())
            .map(drop),
        Post::Unlock => s
            .post_unlock_key(iss.post_unlock_key(h, ee).unwrap())
            .map(drop),
        Post::Update(new) => s
            .post_update_key(iss.post_update_key(new.handle, &new.ee, h, ee).unwrap())
            .map(drop),
        Post::Clone(new) => s
            .post_clone_key_protection(
                iss.post_clone_key_protection(new.handle, &new.ee, h, ee)
                    .unwrap(),
            )
            .map(drop),
    }
}

/// Runs each of `ops` on `target` in the open session of `iss`, then closes that session.
fn post_and_close(s: &mut TestSks, iss: &mut Issuer, ops: &[Post<'_>], target: &Provisioned) {
    for op in ops {
        post(s, iss, *op, target).unwrap();
    }
    close(s, iss).unwrap();
}

#[test]
fn post_delete_key_is_deferred_to_close() {
    let (Setup { mut s, target, .. }, mut iss) = setup_and_open();
    post(&mut s, &mut iss, Post::Delete, &target).unwrap();
    sign(&mut s, target.handle, "1234").expect("not deleted before close");
    close(&mut s, &mut iss).unwrap();
    assert!(keys(&mut s).is_empty());
    assert_eq!(
        session_count(&mut s, false),
        0,
        "old and (empty) new session are gone"
    );
}

#[test]
fn post_unlock_key_resets_pin_and_puk_counters() {
    let Setup {
        mut s,
        ident,
        target,
        ..
    } = setup();
    for _ in 0..3 {
        let _ = sign(&mut s, target.handle, "0000");
    }
    let _ = unlock_key(&mut s, target.handle, "1");
    let (mut iss, _) = open_session(&mut s, &ident, "S2");
    post(&mut s, &mut iss, Post::Unlock, &target).unwrap();
    assert_eq!(
        code(sign(&mut s, target.handle, "1234")),
        ErrorCodeOf(ErrorCode::Authorization),
        "still locked before close"
    );
    close(&mut s, &mut iss).unwrap();
    let p = protection(&mut s, target.handle);
    assert_eq!((p.pin_error_count, p.puk_error_count), (0, 0));
    sign(&mut s, target.handle, "1234").unwrap();
}

#[test]
fn post_unlock_key_requires_a_pin_protected_target() {
    let (mut s, mut iss, made) = plain_keys_then_open(["Key.1"]);
    let [k] = &made;
    assert_eq!(
        code(post(&mut s, &mut iss, Post::Unlock, k)),
        ErrorCodeOf(ErrorCode::Option)
    );
}

#[test]
fn post_update_key_replaces_key_and_transfers_ownership() {
    let Setup {
        mut s,
        ident,
        target,
        old_session,
    } = setup();
    let (mut iss, new_session) = open_session(&mut s, &ident, "S2");
    let mut spec = KeyEntrySpec::new("New");
    spec.friendly_name = "renewed".into();
    let new = key(&mut s, &mut iss, &spec);
    post_and_close(&mut s, &mut iss, &[Post::Update(&new)], &target);
    assert_eq!(
        keys(&mut s),
        vec![target.handle],
        "the new key took the target's handle"
    );
    let a = s
        .get_key_attributes(req::GetKeyAttributes {
            key_handle: target.handle,
        })
        .unwrap();
    assert_eq!(a.certificate_path.0[0], new.ee);
    assert_eq!(a.friendly_name, "renewed");
    let p = protection(&mut s, target.handle);
    assert_ne!(
        p.protection_status & protection_status::PIN_PROTECTED,
        0,
        "PIN protection inherited"
    );
    sign(&mut s, target.handle, "1234").unwrap();
    let e = next_session(&mut s, 0, false);
    assert_eq!(e.provisioning_handle, new_session);
    assert_ne!(e.provisioning_handle, old_session);
    assert_eq!(session_count(&mut s, false), 1);
}

#[test]
fn post_update_key_rules() {
    // Different AppUsage.
    let (Setup { mut s, target, .. }, mut iss) = setup_and_open();
    let mut spec = KeyEntrySpec::new("New");
    spec.protection.app_usage = AppUsage::Signature;
    let new = key(&mut s, &mut iss, &spec);
    let r = post(&mut s, &mut iss, Post::Update(&new), &target);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
    // New key must not be PIN protected.
    let (Setup { mut s, target, .. }, mut iss) = setup_and_open();
    let ph = pin_policy(&mut s, &mut iss, &PinPolicy::new("PIN.2"));
    let mut spec = KeyEntrySpec::new("New");
    spec.pin_policy = Some((ph, "PIN.2".into(), true));
    spec.pin_value = b"5555".to_vec();
    let new = key(&mut s, &mut iss, &spec);
    let r = post(&mut s, &mut iss, Post::Update(&new), &target);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
}

#[test]
fn post_clone_key_protection_links_the_pin() {
    let (Setup { mut s, target, .. }, mut iss, [a, b]) = setup_and_open_with(["A", "B"]);
    post_and_close(
        &mut s,
        &mut iss,
        &[Post::Clone(&a), Post::Clone(&b)],
        &target,
    );
    assert_eq!(keys(&mut s).len(), 3);
    sign(&mut s, a.handle, "1234").unwrap();
    assert_eq!(
        code(sign(&mut s, b.handle, "")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    assert_eq!(
        protection(&mut s, target.handle).pin_error_count,
        1,
        "shared PIN object and counter"
    );
}

#[test]
fn post_clone_requires_shared_grouping() {
    let ident = identity();
    let mut s = sks();
    let mut p = PinPolicy::new("PIN.1");
    p.attributes.grouping = Grouping::None;
    let target = pin_key_session(&mut s, &ident, p, "1234");
    let (mut iss, _) = open_session(&mut s, &ident, "S2");
    let a = key(&mut s, &mut iss, &KeyEntrySpec::new("A"));
    let r = post(&mut s, &mut iss, Post::Clone(&a), &target);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
}

#[test]
fn allowed_combination_update_plus_clones_plus_unlock() {
    let (Setup { mut s, target, .. }, mut iss, [u, c]) = setup_and_open_with(["U", "C"]);
    let ops = [Post::Unlock, Post::Clone(&c), Post::Update(&u)];
    post_and_close(&mut s, &mut iss, &ops, &target);
    assert_eq!(keys(&mut s), vec![target.handle, c.handle]);
}

#[test]
fn conflicting_post_operations_abort() {
    type Step = fn(&mut Setup, &mut Issuer, &[Provisioned]) -> Result<(), SksError>;
    let del: Step = |st, iss, _| post(&mut st.s, iss, Post::Delete, &st.target);
    let unl: Step = |st, iss, _| post(&mut st.s, iss, Post::Unlock, &st.target);
    let upd0: Step = |st, iss, n| post(&mut st.s, iss, Post::Update(&n[0]), &st.target);
    let upd1: Step = |st, iss, n| post(&mut st.s, iss, Post::Update(&n[1]), &st.target);
    let cln0: Step = |st, iss, n| post(&mut st.s, iss, Post::Clone(&n[0]), &st.target);
    let cases: Vec<(&str, Step, Step)> = vec![
        ("delete+delete", del, del),
        ("delete+unlock", del, unl),
        ("unlock+delete", unl, del),
        ("delete+update", del, upd0),
        ("update+delete", upd0, del),
        ("unlock+unlock", unl, unl),
        ("update+update", upd0, upd1),
        ("same new key: update+clone", upd0, cln0),
    ];
    for (name, first, second) in cases {
        let (mut st, mut iss, news) = setup_and_open_with(["N0", "N1"]);
        first(&mut st, &mut iss, &news).unwrap();
        let r = second(&mut st, &mut iss, &news);
        assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option), "{name}");
        assert_eq!(session_count(&mut st.s, true), 0, "{name}: session aborted");
        assert_eq!(
            keys(&mut st.s),
            vec![st.target.handle],
            "{name}: target untouched"
        );
    }
}

#[test]
fn wrong_key_management_key_is_rejected() {
    let Setup { mut s, target, .. } = setup();
    let other = identity(); // a different KMK
    let (mut iss, _) = open_session(&mut s, &other, "S2");
    let r = post(&mut s, &mut iss, Post::Delete, &target);
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::Option));
    assert_eq!(keys(&mut s), vec![target.handle]);
    // RSA KeyManagementKey of the right owner works; of a wrong owner does not.
    let rsa = IssuerIdentity::generate(
        "CN=RSA CA",
        Some(KeySpec::Rsa {
            bits: 1024,
            exponent: 65537,
        }),
    )
    .unwrap();
    let Setup {
        mut s,
        ident,
        target,
        ..
    } = setup_with(rsa);
    let (mut iss, _) = open_session(&mut s, &ident, "S2");
    post_and_close(&mut s, &mut iss, &[Post::Delete], &target);
    assert!(keys(&mut s).is_empty());
}

#[test]
fn malformed_authorization_is_a_crypto_error_and_session_without_kmk_is_not_updatable() {
    let (setup, mut iss) = setup_and_open();
    let (mut s, ident, target) = (setup.s, setup.ident, setup.target);
    let r = iss
        .post_delete_key_with(target.handle, vec![1, 2, 3])
        .unwrap();
    assert_eq!(code(s.post_delete_key(r)), ErrorCodeOf(ErrorCode::Crypto));
    assert_eq!(keys(&mut s), vec![target.handle]);
    // A valid signature over the wrong target certificate does not verify.
    let (mut iss, _) = open_session(&mut s, &ident, "S3");
    let auth = iss.authorization(b"some other certificate").unwrap();
    let r = iss.post_delete_key_with(target.handle, auth).unwrap();
    assert_eq!(code(s.post_delete_key(r)), ErrorCodeOf(ErrorCode::Option));
    // A tampered MAC is ERROR_MAC.
    let (mut iss, _) = open_session(&mut s, &ident, "S4");
    let mut r = iss.post_delete_key(target.handle, &target.ee).unwrap();
    r.mac[5] ^= 0x40;
    assert_eq!(code(s.post_delete_key(r)), ErrorCodeOf(ErrorCode::Mac));

    let no_kmk = IssuerIdentity::generate("CN=No KMK", None).unwrap();
    let Setup { mut s, target, .. } = setup_with(no_kmk);
    let any = identity();
    let (mut iss, _) = open_session(&mut s, &any, "S2");
    let e = post(&mut s, &mut iss, Post::Delete, &target).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Option);
    assert!(e.message().contains("not updatable"), "{e}");
}

#[test]
fn unknown_target_and_open_session_targets() {
    let (setup, mut iss) = setup_and_open();
    let (mut s, ident, target) = (setup.s, setup.ident, setup.target);
    let r = s.post_delete_key(iss.post_delete_key(424242, &target.ee).unwrap());
    assert_eq!(code(r), ErrorCodeOf(ErrorCode::NoKey));
    let (mut iss, _) = open_session(&mut s, &ident, "S3");
    let own = key(&mut s, &mut iss, &KeyEntrySpec::new("Own"));
    let r = post(&mut s, &mut iss, Post::Delete, &own);
    assert_eq!(
        code(r),
        ErrorCodeOf(ErrorCode::Option),
        "target in an open session"
    );
}

#[test]
fn privacy_enabled_flag_must_match_between_sessions() {
    let Setup {
        mut s,
        ident,
        target,
        ..
    } = setup();
    let mut iss = ident.session(ISSUER_URI, "S2");
    iss.privacy_enabled = true;
    open(&mut s, &mut iss);
    let e = post(&mut s, &mut iss, Post::Delete, &target).unwrap_err();
    assert!(e.message().contains("PrivacyEnabled"), "{e}");
}

#[test]
fn privacy_enabled_post_operations_work_between_pep_sessions() {
    let ident = identity();
    let mut s = sks();
    let mut iss = ident.session(ISSUER_URI, "S1");
    iss.privacy_enabled = true;
    open(&mut s, &mut iss);
    let k = key(&mut s, &mut iss, &KeyEntrySpec::new("Key.1"));
    close(&mut s, &mut iss).unwrap();
    let mut iss = ident.session(ISSUER_URI, "S2");
    iss.privacy_enabled = true;
    open(&mut s, &mut iss);
    post_and_close(&mut s, &mut iss, &[Post::Delete], &k);
    assert!(keys(&mut s).is_empty());
}

#[test]
fn failed_close_rolls_back_queued_operations() {
    let (Setup { mut s, target, .. }, mut iss) = setup_and_open();
    post(&mut s, &mut iss, Post::Delete, &target).unwrap();
    s.create_pin_policy(
        iss.pin_policy(&PinPolicy::new("Unreferenced"), None)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        code(close(&mut s, &mut iss)),
        ErrorCodeOf(ErrorCode::Option)
    );
    assert_eq!(keys(&mut s), vec![target.handle]);
    sign(&mut s, target.handle, "1234").unwrap();
}

#[test]
fn user_delete_of_target_before_close_fails_the_close() {
    let (mut s, mut iss, made) = plain_keys_then_open(["A", "B"]);
    let [a, b] = &made;
    post(&mut s, &mut iss, Post::Delete, a).unwrap();
    delete_key(&mut s, a.handle, "").unwrap();
    assert_eq!(code(close(&mut s, &mut iss)), ErrorCodeOf(ErrorCode::NoKey));
    assert_eq!(keys(&mut s), vec![b.handle]);
}
