//! The MAC and attestation inputs of SKS 1.00 (byte layouts §3, §6, §6.6.2), each built from
//! the typed request it protects plus the session context the request does not carry.
//!
//! This is the one description of these bytes: the engine calls these functions to check a
//! received MAC and to produce attestations, the issuer emulation (`sks-issuer`) calls the same
//! functions to produce the MAC and to check the attestations. An issuer builds the request with
//! an empty `mac`, computes the MAC over the layout of that request, and stores it; the engine
//! computes the layout of the request it received and compares.
//!
//! ```text
//!  req::CreatePinPolicy ─┐
//!  context (PUK ID)  ────┴─▶ create_pin_policy() ─▶ MacInput { method, data } ─▶ SessionKey::mac(method, n, data)
//! ```

use crate::api::req;
use crate::codec::{DecodeError, WireType, Writer};
use crate::consts::{ALG_SESSION_S1, DEVICE_PIN, NOT_AVAILABLE};

/// The Data of one method MAC and the MethodName that keys it (byte layouts §4.1, §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacInput {
    /// MethodName, e.g. `createPINPolicy`.
    pub method: &'static str,
    /// Data, encoded per byte layouts §1.
    pub data: Vec<u8>,
}

impl MacInput {
    fn new(method: &'static str, w: Writer) -> Result<Self, DecodeError> {
        Ok(Self {
            method,
            data: w.into_bytes()?,
        })
    }
}

/// A layout, or [`DecodeError::TooLong`] when a value does not fit its length prefix.
pub type MacResult = Result<MacInput, DecodeError>;

/// The PIN policy a key entry refers to, as the createKeyEntry MAC needs it (§6.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinReference<'a> {
    /// The policy's ID.
    pub id: &'a str,
    /// UserDefined: the PIN travels in clear; otherwise it is issuer-set and encrypted.
    pub user_defined: bool,
}

/// Session attestation data `AttData` (byte layouts §3): everything the issuer sent plus the
/// SKS's ephemeral key. HMAC'd with the plain SessionKey; signed in E2ES mode.
pub fn session_attestation(
    a: &req::CreateProvisioningSession,
    client_ephemeral_key: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer::new();
    w.string(ALG_SESSION_S1)
        .boolean(a.privacy_enabled)
        .array(&a.server_ephemeral_key)
        .array(client_ephemeral_key)
        .array(&a.key_management_key)
        .int(a.client_time)
        .int(a.session_life_time)
        .short(a.session_key_limit);
    w.into_bytes()
}

/// closeProvisioningSession \[3\] (byte layouts §6.2): the session's three IDs and the Nonce.
pub fn close_provisioning_session(
    a: &req::CloseProvisioningSession,
    client_session_id: &str,
    server_session_id: &str,
    issuer_uri: &str,
) -> MacResult {
    let mut w = Writer::new();
    w.string(client_session_id)
        .string(server_session_id)
        .string(issuer_uri)
        .array(&a.nonce);
    MacInput::new("closeProvisioningSession", w)
}

/// Close attestation data `Nonce || sks.s1` (byte layouts §6.2).
pub fn close_attestation(nonce: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer::new();
    w.array(nonce).string(ALG_SESSION_S1);
    w.into_bytes()
}

/// createPUKPolicy \[7\] (byte layouts §6.4); PUKValue as encrypted.
pub fn create_puk_policy(a: &req::CreatePukPolicy) -> MacResult {
    let mut w = Writer::new();
    w.string(&a.id)
        .array(&a.puk_value)
        .byte(a.format)
        .short(a.retry_limit);
    MacInput::new("createPUKPolicy", w)
}

/// createPINPolicy \[8\] (byte layouts §6.5); `puk_id` is the governing PUK policy's ID.
pub fn create_pin_policy(a: &req::CreatePinPolicy, puk_id: Option<&str>) -> MacResult {
    let mut w = Writer::new();
    w.string(&a.id).string(puk_id.unwrap_or(NOT_AVAILABLE));
    a.policy.put(&mut w);
    MacInput::new("createPINPolicy", w)
}

/// createKeyEntry \[9\] (byte layouts §6.6, PIN references §6.6.1).
pub fn create_key_entry(
    a: &req::CreateKeyEntry,
    pin_policy: Option<PinReference<'_>>,
) -> MacResult {
    let policy_reference = match pin_policy {
        _ if a.device_pin_protection => DEVICE_PIN,
        Some(p) => p.id,
        None => NOT_AVAILABLE,
    };
    let mut w = Writer::new();
    w.string(&a.id)
        .string(&a.algorithm)
        .array(&a.server_seed)
        .string(policy_reference);
    match pin_policy {
        Some(p) if !p.user_defined => w.array(a.pin_value.expose()),
        _ => w.string(NOT_AVAILABLE),
    };
    w.boolean(a.enable_pin_caching)
        .byte(a.biometric_protection)
        .byte(a.export_protection)
        .byte(a.delete_protection)
        .byte(a.app_usage)
        .string(&a.friendly_name)
        .string(&a.key_algorithm)
        .array(&a.key_parameters);
    for e in &a.endorsed_algorithms.0 {
        w.string(e);
    }
    MacInput::new("createKeyEntry", w)
}

/// Key attestation data `ID || PublicKey` (byte layouts §6.6.2).
pub fn key_attestation(id: &str, public_key: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer::new();
    w.string(id).array(public_key);
    w.into_bytes()
}

/// setCertificatePath \[11\] (byte layouts §6.7): the generated key and its ID, then the path.
pub fn set_certificate_path(a: &req::SetCertificatePath, public_key: &[u8], id: &str) -> MacResult {
    let mut w = Writer::new();
    w.array(public_key).string(id);
    for cert in &a.certificate_path.0 {
        w.array(cert);
    }
    MacInput::new("setCertificatePath", w)
}

fn certificate_and(method: &'static str, ee_certificate: &[u8], value: &[u8]) -> MacResult {
    let mut w = Writer::new();
    w.array(ee_certificate).array(value);
    MacInput::new(method, w)
}

/// importSymmetricKey \[12\] (byte layouts §6.8): EE certificate, encrypted key.
pub fn import_symmetric_key(a: &req::ImportSymmetricKey, ee_certificate: &[u8]) -> MacResult {
    certificate_and("importSymmetricKey", ee_certificate, &a.symmetric_key)
}

/// importPrivateKey \[13\] (byte layouts §6.9): EE certificate, encrypted PKCS#8.
pub fn import_private_key(a: &req::ImportPrivateKey, ee_certificate: &[u8]) -> MacResult {
    certificate_and("importPrivateKey", ee_certificate, &a.private_key)
}

/// addExtension \[14\] (byte layouts §6.10); ExtensionData as sent (encrypted for SubType 1).
pub fn add_extension(a: &req::AddExtension, ee_certificate: &[u8]) -> MacResult {
    let mut w = Writer::new();
    w.array(ee_certificate)
        .string(&a.type_uri)
        .byte(a.sub_type)
        .string(&a.qualifier)
        .blob(&a.extension_data.0);
    MacInput::new("addExtension", w)
}

fn authorization_only(method: &'static str, authorization: &[u8]) -> MacResult {
    let mut w = Writer::new();
    w.array(authorization);
    MacInput::new(method, w)
}

/// postDeleteKey \[50\] (byte layouts §6.11).
pub fn post_delete_key(a: &req::PostDeleteKey) -> MacResult {
    authorization_only("postDeleteKey", &a.authorization)
}

/// postUnlockKey \[51\] (byte layouts §6.11).
pub fn post_unlock_key(a: &req::PostUnlockKey) -> MacResult {
    authorization_only("postUnlockKey", &a.authorization)
}

/// postUpdateKey \[52\] (byte layouts §6.12): the new key's EE certificate, Authorization.
pub fn post_update_key(a: &req::PostUpdateKey, new_ee_certificate: &[u8]) -> MacResult {
    certificate_and("postUpdateKey", new_ee_certificate, &a.authorization)
}

/// postCloneKeyProtection \[53\] (byte layouts §6.12): as postUpdateKey.
pub fn post_clone_key_protection(
    a: &req::PostCloneKeyProtection,
    new_ee_certificate: &[u8],
) -> MacResult {
    certificate_and(
        "postCloneKeyProtection",
        new_ee_certificate,
        &a.authorization,
    )
}

/// ExtensionData of a PropertyBag extension (byte layouts §6.10.1): for each property its Name
/// (`string`), Writable (`bool`) and Value (`string`), in order. The engine re-encodes a bag
/// after setProperty with it; the issuer emulation builds the bags it adds with it.
pub fn property_bag<'a>(
    props: impl IntoIterator<Item = (&'a [u8], bool, &'a [u8])>,
) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer::new();
    for (name, writable, value) in props {
        w.array(name).boolean(writable).array(value);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PinPolicyBytes;
    use crate::crypto::SessionKey;

    /// A value over its length prefix is an error, never cut: two certificates that differ
    /// only past byte 65535 must not share a MAC input.
    #[test]
    fn a_value_over_its_length_prefix_is_refused() {
        let long = vec![0x30; 65536];
        assert!(matches!(
            key_attestation("Key.1", &long),
            Err(DecodeError::TooLong)
        ));
        assert_eq!(
            key_attestation("Key.1", &long[..65535]).unwrap().len(),
            2 + 5 + 2 + 65535
        );
    }

    /// Byte layouts Appendix A.1, A.4 and A.5 (author-computed illustrative values): the shared
    /// layouts under SessionKey 00 01 .. 1F.
    #[test]
    fn appendix_a_mac_inputs() {
        let v = crate::test_vectors::appendix_a();
        let key = crate::test_vectors::session_key();
        let pin = req::CreatePinPolicy {
            id: "PIN.1".into(),
            policy: PinPolicyBytes {
                user_defined: true,
                user_modifiable: false,
                format: 0,
                retry_limit: 3,
                grouping: 1,
                pattern_restrictions: 0,
                min_length: 4,
                max_length: 8,
                input_method: 3,
            },
            ..Default::default()
        };
        let a1 = create_pin_policy(&pin, None).unwrap();
        assert_eq!(a1.data.len(), 25);
        assert_eq!(hex::encode(mac(&key, &a1, 0)), v["A.1"]);
        let close = req::CloseProvisioningSession {
            nonce: vec![0, 1, 2, 3],
            ..Default::default()
        };
        let a4 = close_provisioning_session(&close, "C-1", "S-1", "https://issuer.example.com/x")
            .unwrap();
        assert_eq!(hex::encode(mac(&key, &a4, 1)), v["A.4"]);
        let a5 = close_attestation(&close.nonce).unwrap();
        assert_eq!(a5.len(), 2 + 4 + 2 + 52, "Nonce:byte[] || sks.s1:string");
        assert_eq!(hex::encode(key.attest(2, &a5).unwrap()), v["A.5"]);
    }

    fn mac(key: &SessionKey, input: &MacInput, counter: u16) -> [u8; 32] {
        key.mac(input.method, counter, &input.data).unwrap()
    }
}
