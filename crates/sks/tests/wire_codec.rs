//! §7.1 data types and the §7.4 wire format: method ID table, request/response round trips,
//! error responses, and a proptest that the decoders never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sks_core::api::{encode_error, method_id, req, resp, Request, Response, METHODS};
use sks_core::codec::{Blob, DecodeError, List16, List8};
use sks_core::secret::Secret;
use sks_core::{ErrorCode, SksError};

#[test]
fn method_ids_match_section_7_4() {
    let expected: &[(u8, &str)] = &[
        (1, "get_device_info"),
        (2, "create_provisioning_session"),
        (3, "close_provisioning_session"),
        (4, "enumerate_provisioning_sessions"),
        (5, "abort_provisioning_session"),
        (6, "sign_provisioning_session_data"),
        (7, "create_puk_policy"),
        (8, "create_pin_policy"),
        (9, "create_key_entry"),
        (10, "get_key_handle"),
        (11, "set_certificate_path"),
        (12, "import_symmetric_key"),
        (13, "import_private_key"),
        (14, "add_extension"),
        (50, "post_delete_key"),
        (51, "post_unlock_key"),
        (52, "post_update_key"),
        (53, "post_clone_key_protection"),
        (70, "enumerate_keys"),
        (71, "get_key_attributes"),
        (72, "get_key_protection_info"),
        (73, "get_extension"),
        (74, "set_property"),
        (80, "delete_key"),
        (81, "export_key"),
        (82, "unlock_key"),
        (83, "change_pin"),
        (84, "set_pin"),
        (90, "update_firmware"),
        (100, "sign_hashed_data"),
        (101, "asymmetric_key_decrypt"),
        (102, "key_agreement"),
        (103, "perform_hmac"),
        (104, "symmetric_key_encrypt"),
    ];
    assert_eq!(METHODS, expected);
    use sks_core::consts::PostOperation;
    for (op, id) in [
        (PostOperation::DeleteKey, method_id::PostDeleteKey),
        (PostOperation::UnlockKey, method_id::PostUnlockKey),
        (PostOperation::UpdateKey, method_id::PostUpdateKey),
        (
            PostOperation::CloneKeyProtection,
            method_id::PostCloneKeyProtection,
        ),
    ] {
        assert_eq!(u8::from(op), id);
    }
}

#[test]
fn request_layout_is_method_id_then_arguments() {
    let r = Request::GetKeyHandle(req::GetKeyHandle {
        provisioning_handle: 0x01020304,
        id: "Key.1".into(),
    });
    assert_eq!(
        r.encode().unwrap(),
        [10, 1, 2, 3, 4, 0, 5, b'K', b'e', b'y', b'.', b'1']
    );
    assert_eq!(Request::decode(&r.encode().unwrap()).unwrap(), r);
    let r = Request::SetPin(req::SetPin {
        key_handle: 9,
        authorization: Secret::from("1234"),
        new_pin: Secret::from("5678"),
    });
    assert_eq!(Request::decode(&r.encode().unwrap()).unwrap(), r);
    assert!(
        !format!("{r:?}").contains("1234"),
        "PINs must be redacted in Debug output"
    );
}

#[test]
fn response_layout_is_status_then_outputs_or_error_string() {
    let ok = Response::GetKeyHandle(resp::GetKeyHandle { key_handle: 7 });
    assert_eq!(ok.encode().unwrap(), [0, 0, 0, 0, 7]);
    assert_eq!(
        Response::decode(method_id::GetKeyHandle, &ok.encode().unwrap())
            .unwrap()
            .unwrap(),
        ok
    );
    let e = SksError::new(ErrorCode::Mac, "MAC error");
    let bytes = encode_error(&e);
    assert_eq!(bytes[..3], [0x04, 0, 9]);
    assert_eq!(
        Response::decode(method_id::GetKeyHandle, &bytes)
            .unwrap()
            .unwrap_err(),
        e
    );
    let long = SksError::new(ErrorCode::Internal, "x".repeat(5000));
    assert_eq!(long.message().len(), 2000);
}

#[test]
fn complex_outputs_round_trip() {
    let r = Response::GetDeviceInfo(resp::GetDeviceInfo {
        api_level: 100,
        device_type: 1,
        update_url: String::new(),
        vendor_name: "v".into(),
        vendor_description: "d".into(),
        certificate_path: List8(vec![vec![1, 2], vec![3]]),
        supported_algorithms: List16(vec!["a".into(), "b".into()]),
        crypto_data_size: 16384,
        extension_data_size: 65536,
        device_pin_support: false,
        biometric_support: true,
    });
    assert_eq!(
        Response::decode(method_id::GetDeviceInfo, &r.encode().unwrap())
            .unwrap()
            .unwrap(),
        r
    );
    let r = Request::AddExtension(req::AddExtension {
        key_handle: 1,
        type_uri: "urn:x".into(),
        sub_type: 2,
        qualifier: String::new(),
        extension_data: Blob(vec![0; 70000]),
        mac: vec![1; 32],
    });
    assert_eq!(Request::decode(&r.encode().unwrap()).unwrap(), r);
}

#[test]
fn decoder_rejects_unknown_ids_trailing_bytes_and_bad_bools() {
    let cases: [(&[u8], DecodeError); 5] = [
        (&[], DecodeError::Truncated("byte")),
        (&[15], DecodeError::UnknownMethod(15)),
        // getDeviceInfo has no inputs.
        (&[1, 0], DecodeError::Trailing(1)),
        // abortProvisioningSession: a 4-byte handle.
        (&[5, 0, 0, 0], DecodeError::Truncated("int")),
        // enumerateProvisioningSessions: handle, then a bool.
        (&[4, 0, 0, 0, 0, 2], DecodeError::InvalidBool),
    ];
    for (bytes, expected) in cases {
        assert_eq!(Request::decode(bytes), Err(expected), "{bytes:02X?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn request_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(r) = Request::decode(&bytes) {
            prop_assert_eq!(r.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn request_decoder_never_panics_on_valid_ids(id in prop::sample::select(METHODS.iter().map(|m| m.0).collect::<Vec<_>>()),
                                                tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![id];
        bytes.extend(tail);
        if let Ok(r) = Request::decode(&bytes) {
            prop_assert_eq!(r.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn response_decoder_never_panics(id in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Response::decode(id, &bytes);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn stored_record_decoder_never_panics(kind in 0u8..7, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let records = std::collections::BTreeMap::from([((kind, 1u32), Secret::new(bytes))]);
        let _ = sks_core::model::State::from_records(records.iter());
    }

    #[test]
    fn engine_never_panics_on_random_frames(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut core = sks_core::Sks::initialize(sks_core::MemoryStorage::new(), sks_core::Config::default()).unwrap();
        let reply = sks_core::wire::handle_frame(&mut core, &bytes);
        prop_assert!(!reply.is_empty());
    }
}
