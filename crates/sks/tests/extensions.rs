//! addExtension [14] (Extension, EncryptedExtension, PropertyBag, Logotype), getExtension [73]
//! and setProperty [74]: rules, decryption at provisioning, writability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks_core::api::{req, SksApi};
use sks_core::consts::*;
use sks_core::ErrorCode;
use sks_issuer::{property_bag, Issuer, KeyEntrySpec};

fn session(s: &mut impl SksApi) -> Issuer {
    open_session(s, &identity(), "S1").0
}

/// addExtension of `data` to key `p`.
fn add_extension(
    s: &mut TestSks,
    iss: &mut Issuer,
    p: &Provisioned,
    type_uri: &str,
    sub_type: u8,
    qualifier: &str,
    data: &[u8],
) -> Result<(), sks_core::SksError> {
    s.add_extension(
        iss.extension(p.handle, &p.ee, type_uri, sub_type, qualifier, data)
            .unwrap(),
    )
    .map(|_| ())
}

/// The code and message of a refused call.
fn refusal<T: std::fmt::Debug>(r: Result<T, sks_core::SksError>) -> (ErrorCode, String) {
    let e = r.unwrap_err();
    (e.code(), e.message().to_string())
}
#[test]
fn add_extension_rules_and_get_extension() {
    let mut s = sks();
    let mut iss = session(&mut s);
    let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
    let bag = property_bag(&[("Counter", "0", true), ("Digits", "8", false)]).unwrap();
    let extensions: [(&str, SubType, &str, &[u8]); 4] = [
        ("urn:ext:plain", SubType::Extension, "", b"plain"),
        (
            "urn:ext:enc",
            SubType::EncryptedExtension,
            "",
            b"secret ext",
        ),
        ("urn:ext:bag", SubType::PropertyBag, "", &bag),
        ("urn:ext:logo", SubType::Logotype, "image/png", b"PNG"),
    ];
    for (type_uri, sub_type, qualifier, data) in extensions {
        add_extension(
            &mut s,
            &mut iss,
            &p,
            type_uri,
            u8::from(sub_type),
            qualifier,
            data,
        )
        .unwrap();
    }
    close(&mut s, &mut iss).unwrap();
    let get = |s: &mut _, t: &str| {
        SksApi::get_extension(
            s,
            req::GetExtension {
                key_handle: p.handle,
                type_uri: t.into(),
            },
        )
    };
    assert_eq!(
        get(&mut s, "urn:ext:enc").unwrap().extension_data.0,
        b"secret ext",
        "decrypted at provisioning"
    );
    let logo = get(&mut s, "urn:ext:logo").unwrap();
    assert_eq!(
        (logo.sub_type, logo.qualifier.as_str()),
        (u8::from(SubType::Logotype), "image/png")
    );
    assert_eq!(
        refusal(get(&mut s, "urn:ext:none")),
        (ErrorCode::Option, "No such extension: urn:ext:none".into())
    );
    let a = s
        .get_key_attributes(req::GetKeyAttributes {
            key_handle: p.handle,
        })
        .unwrap();
    assert_eq!(a.extension_types.0.len(), 4);

    // setProperty: writable property changes, read-only and unknown ones fail.
    let set = |s: &mut _, name: &str| {
        SksApi::set_property(
            s,
            req::SetProperty {
                key_handle: p.handle,
                type_uri: "urn:ext:bag".into(),
                name: name.into(),
                value: "17".into(),
            },
        )
    };
    set(&mut s, "Counter").unwrap();
    assert_eq!(
        get(&mut s, "urn:ext:bag").unwrap().extension_data.0,
        property_bag(&[("Counter", "17", true), ("Digits", "8", false)]).unwrap()
    );
    assert_eq!(
        code(set(&mut s, "Digits")),
        ErrorCodeOf(ErrorCode::NotAllowed)
    );
    assert_eq!(
        refusal(set(&mut s, "Missing")),
        (ErrorCode::Option, "No such property: Missing".into())
    );
    let r = s.set_property(req::SetProperty {
        key_handle: p.handle,
        type_uri: "urn:ext:plain".into(),
        name: "Counter".into(),
        value: "1".into(),
    });
    assert_eq!(
        refusal(r),
        (ErrorCode::Option, "No such PropertyBag".into()),
        "setProperty needs a PropertyBag"
    );
}

#[test]
fn add_extension_violations_abort() {
    let long_mime = "m".repeat(129);
    let cases: Vec<(&str, u8, &str, Vec<u8>)> = vec![
        ("urn:x", 4, "", vec![1]),
        ("", 0, "", vec![1]),
        ("urn:x", u8::from(SubType::Logotype), "", vec![1]),
        ("urn:x", u8::from(SubType::Extension), "text/plain", vec![1]),
        ("urn:x", u8::from(SubType::Logotype), &long_mime, vec![1]),
        (
            "urn:x",
            u8::from(SubType::PropertyBag),
            "",
            vec![0, 0, 0, 0, 0],
        ),
        ("urn:x", u8::from(SubType::PropertyBag), "", vec![]),
        ("urn:x", u8::from(SubType::Extension), "", vec![0; 65537]),
    ];
    for (t, st, q, data) in cases {
        let mut s = sks();
        let mut iss = session(&mut s);
        let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
        let r = add_extension(&mut s, &mut iss, &p, t, st, q, &data);
        assert_eq!(
            code(r),
            ErrorCodeOf(ErrorCode::Option),
            "type {t:?} subtype {st}"
        );
        assert_eq!(session_count(&mut s, true), 0);
    }
    // Same Type twice.
    let mut s = sks();
    let mut iss = session(&mut s);
    let p = key(&mut s, &mut iss, &KeyEntrySpec::new("K"));
    add_extension(&mut s, &mut iss, &p, "urn:x", 0, "", b"a").unwrap();
    let r = add_extension(&mut s, &mut iss, &p, "urn:x", 0, "", b"b");
    assert_eq!(
        refusal(r),
        (ErrorCode::Option, "Duplicate extension: urn:x".into())
    );
}
