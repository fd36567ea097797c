//! Appendix B end to end (used by `sks demo` and the tests): session 1 with a PUK, a PIN
//! policy, a P-256 key certified by a local issuer CA and a symmetric HOTP key with a
//! PropertyBag and a Logotype; close; a signature verified against the certificate; then
//! session 2 replaces the first key with postUpdateKey.

use crate::{property_bag, Issuer, IssuerIdentity, KeyEntrySpec, PinPolicy};
use sha2::{Digest, Sha256};
use sks_core::api::{req, resp, KeyUse, SksApi};
use sks_core::codec::Blob;
use sks_core::consts::*;
use sks_core::crypto::keys::{KeySpec, PublicKey};
use sks_core::secret::Secret;
use sks_core::x509::certificate_spki;
use std::time::{Duration, Instant};

/// What the demo did, for printing.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// Human-readable steps.
    pub steps: Vec<String>,
    /// Wall time of the Appendix B session (create .. close, P-256).
    pub session_time: Duration,
    /// Wall time of one signHashedData call (ECDSA P-256 with PIN).
    pub sign_time: Duration,
    /// Handle of the PIN-protected signing key (same before and after postUpdateKey).
    pub signing_key: u32,
    /// Handle of the HOTP key.
    pub hotp_key: u32,
}

/// Demo failure.
#[derive(Debug, thiserror::Error)]
#[error("demo failed at {step}: {reason}")]
pub struct DemoError {
    step: &'static str,
    reason: String,
}

fn at<E: std::fmt::Display>(step: &'static str) -> impl Fn(E) -> DemoError {
    move |e| DemoError {
        step,
        reason: e.to_string(),
    }
}

/// The user's PIN in the demo.
pub const DEMO_PIN: &str = "2468";
/// The issuer-set PUK in the demo.
pub const DEMO_PUK: &str = "01234567";
/// RFC 4226 Appendix D test key.
pub const HOTP_KEY: &[u8] = b"12345678901234567890";

fn verify_p256(cert: &[u8], digest: &[u8], sig: &[u8]) -> Result<(), String> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let spki = certificate_spki(cert).map_err(|e| e.to_string())?;
    let PublicKey::P256(pk) = PublicKey::from_spki(&spki).map_err(|e| e.to_string())? else {
        return Err("not a P-256 certificate".into());
    };
    let sig = p256::ecdsa::Signature::from_der(sig).map_err(|e| e.to_string())?;
    p256::ecdsa::VerifyingKey::from(&pk)
        .verify_prehash(digest, &sig)
        .map_err(|e| e.to_string())
}

/// HOTP value (RFC 4226) from an HMAC-SHA1 result.
pub fn hotp_truncate(mac: &[u8], digits: u32) -> u32 {
    let off = usize::from(mac.get(19).copied().unwrap_or(0) & 0x0F);
    let bin = mac
        .get(off..off + 4)
        .map(|b| u32::from_be_bytes([b[0] & 0x7F, b[1], b[2], b[3]]))
        .unwrap_or(0);
    bin % 10u32.pow(digits)
}

/// createProvisioningSession with a fresh issuer session of `identity`, attestation checked.
fn open_session(
    sks: &mut impl SksApi,
    identity: &IssuerIdentity,
    server_session_id: &str,
    device_cert: &[u8],
) -> Result<(Issuer, u32), DemoError> {
    let mut iss = identity.session("https://issuer.example.com/keygen2", server_session_id);
    let out = sks
        .create_provisioning_session(iss.create_session_request().map_err(at("issuer"))?)
        .map_err(at("createProvisioningSession"))?;
    iss.accept_session(&out, device_cert)
        .map_err(at("session attestation"))?;
    Ok((iss, out.provisioning_handle))
}

/// createKeyEntry, key attestation checked.
fn create_key(
    sks: &mut impl SksApi,
    iss: &mut Issuer,
    spec: &KeyEntrySpec,
) -> Result<resp::CreateKeyEntry, DemoError> {
    let key = sks
        .create_key_entry(iss.key_entry(spec).map_err(at("key"))?)
        .map_err(at("createKeyEntry"))?;
    iss.verify_key_attestation(&spec.id, &key)
        .map_err(at("key attestation"))?;
    Ok(key)
}

/// Certifies a generated key by the issuer CA and sets its path (EE, then the CA when
/// `with_ca`); returns the EE certificate.
fn certify_key(
    sks: &mut impl SksApi,
    iss: &mut Issuer,
    id: &str,
    key: &resp::CreateKeyEntry,
    subject: &str,
    with_ca: bool,
) -> Result<Vec<u8>, DemoError> {
    let ee = iss
        .certify(subject, &key.public_key)
        .map_err(at("certify"))?;
    let mut path = vec![ee.clone()];
    if with_ca {
        path.push(iss.ca_certificate().to_vec());
    }
    sks.set_certificate_path(
        iss.certificate_path(key.key_handle, id, &key.public_key, path)
            .map_err(at("cert"))?,
    )
    .map_err(at("setCertificatePath"))?;
    Ok(ee)
}

/// closeProvisioningSession with a random nonce, close attestation checked.
fn close_session(
    sks: &mut impl SksApi,
    iss: &mut Issuer,
    nonce_len: usize,
) -> Result<(), DemoError> {
    let nonce = sks_core::crypto::random_bytes(nonce_len).map_err(at("nonce"))?;
    let closed = sks
        .close_provisioning_session(iss.close(&nonce).map_err(at("close"))?)
        .map_err(at("closeProvisioningSession"))?;
    iss.verify_close(&nonce, &closed)
        .map_err(at("close attestation"))
}

/// signHashedData with ECDSA-SHA256 and the demo PIN.
fn sign(sks: &mut impl SksApi, key_handle: u32, digest: &[u8]) -> Result<Vec<u8>, DemoError> {
    sks.sign_hashed_data(req::SignHashedData {
        key: KeyUse {
            key_handle,
            algorithm: ALG_ECDSA_SHA256.into(),
            parameters: vec![],
            authorization: Secret::from(DEMO_PIN),
        },
        data: digest.to_vec(),
    })
    .map(|out| out.result)
    .map_err(at("signHashedData"))
}

/// Runs the demo against any SKS.
pub fn run(sks: &mut impl SksApi) -> Result<DemoReport, DemoError> {
    let mut rep = DemoReport::default();
    let info = sks
        .get_device_info(req::GetDeviceInfo {})
        .map_err(at("getDeviceInfo"))?;
    let device_cert = info
        .certificate_path
        .0
        .first()
        .cloned()
        .ok_or("no device certificate")
        .map_err(at("getDeviceInfo"))?;
    rep.steps.push(format!(
        "device: {} (API level {})",
        info.vendor_name, info.api_level
    ));
    let identity =
        IssuerIdentity::generate("CN=Demo Issuer CA", Some(KeySpec::P256)).map_err(at("issuer"))?;

    // Session 1 (Appendix B).
    let started = Instant::now();
    let (mut iss, ph) = open_session(sks, &identity, "S1.demo", &device_cert)?;
    let puk = sks
        .create_puk_policy(
            iss.puk_policy("PUK.1", DEMO_PUK.as_bytes(), PinFormat::Numeric, 3)
                .map_err(at("puk"))?,
        )
        .map_err(at("createPUKPolicy"))?;
    let pin_policy = PinPolicy::new("PIN.1");
    let pin = sks
        .create_pin_policy(
            iss.pin_policy(&pin_policy, Some((puk.puk_policy_handle, "PUK.1")))
                .map_err(at("pin"))?,
        )
        .map_err(at("createPINPolicy"))?;

    let mut k1 = KeyEntrySpec::new("Key.1");
    k1.pin_policy = Some((pin.pin_policy_handle, "PIN.1".into(), true));
    k1.pin_value = DEMO_PIN.as_bytes().to_vec();
    k1.protection.app_usage = AppUsage::Signature;
    k1.friendly_name = "Demo signing key".into();
    k1.endorsed = vec![ALG_ECDSA_SHA256.to_owned()];
    let key1 = create_key(sks, &mut iss, &k1)?;

    let mut k2 = KeyEntrySpec::new("Key.2");
    k2.protection.app_usage = AppUsage::Authentication;
    k2.friendly_name = "Demo HOTP".into();
    k2.endorsed = vec![ALG_HMAC_SHA1.to_owned()];
    let key2 = create_key(sks, &mut iss, &k2)?;

    let ee1 = certify_key(sks, &mut iss, "Key.1", &key1, "Demo User", true)?;
    let ee2 = certify_key(sks, &mut iss, "Key.2", &key2, "Demo HOTP", false)?;
    sks.import_symmetric_key(
        iss.symmetric_key(key2.key_handle, &ee2, HOTP_KEY)
            .map_err(at("sym"))?,
    )
    .map_err(at("importSymmetricKey"))?;
    let bag = property_bag(&[("Counter", "0", true), ("Digits", "8", false)])
        .map_err(at("PropertyBag"))?;
    let hotp_type = "http://xmlns.webpki.org/keygen2/1.0#provider.ietf-hotp";
    sks.add_extension(
        iss.extension(
            key2.key_handle,
            &ee2,
            hotp_type,
            SubType::PropertyBag.into(),
            "",
            &bag,
        )
        .map_err(at("ext"))?,
    )
    .map_err(at("addExtension(PropertyBag)"))?;
    let logo = b"\x89PNG\r\n\x1a\n demo logotype";
    let logo_type = "http://xmlns.webpki.org/keygen2/1.0#logotype.application";
    sks.add_extension(
        iss.extension(
            key2.key_handle,
            &ee2,
            logo_type,
            SubType::Logotype.into(),
            "image/png",
            logo,
        )
        .map_err(at("ext"))?,
    )
    .map_err(at("addExtension(Logotype)"))?;
    close_session(sks, &mut iss, 32)?;
    rep.session_time = started.elapsed();
    rep.signing_key = key1.key_handle;
    rep.hotp_key = key2.key_handle;
    rep.steps.push(format!(
        "session 1 ({ph}) closed: Key.1 = {} (P-256, PIN, PUK), Key.2 = {} (HOTP); attestations verified",
        key1.key_handle, key2.key_handle
    ));

    // Use the keys.
    let digest = Sha256::digest(b"Appendix B sample data");
    let t = Instant::now();
    let sig = sign(sks, key1.key_handle, &digest)?;
    rep.sign_time = t.elapsed();
    verify_p256(&ee1, &digest, &sig).map_err(at("signature verification"))?;
    rep.steps
        .push("signHashedData: ECDSA signature verified against the end-entity certificate".into());
    let mac = sks
        .perform_hmac(req::PerformHmac {
            key: KeyUse {
                key_handle: key2.key_handle,
                algorithm: ALG_HMAC_SHA1.into(),
                ..Default::default()
            },
            data: Blob(0u64.to_be_bytes().to_vec()),
        })
        .map_err(at("performHMAC"))?;
    let otp = hotp_truncate(&mac.result, 8);
    if otp != 84_755_224 {
        return Err(DemoError {
            step: "HOTP",
            reason: format!("unexpected OTP {otp}"),
        });
    }
    rep.steps.push(format!(
        "performHMAC: HOTP(counter 0, 8 digits) = {otp:08} (RFC 4226 vector)"
    ));
    sks.set_property(req::SetProperty {
        key_handle: key2.key_handle,
        type_uri: hotp_type.into(),
        name: "Counter".into(),
        value: "1".into(),
    })
    .map_err(at("setProperty"))?;

    // Session 2: postUpdateKey replaces Key.1 and inherits its PIN protection.
    let (mut iss2, _) = open_session(sks, &identity, "S2.demo", &device_cert)?;
    let mut k3 = KeyEntrySpec::new("Key.1b");
    k3.protection.app_usage = AppUsage::Signature;
    k3.friendly_name = "Demo signing key (renewed)".into();
    let key3 = create_key(sks, &mut iss2, &k3)?;
    let ee3 = certify_key(
        sks,
        &mut iss2,
        "Key.1b",
        &key3,
        "Demo User (renewed)",
        false,
    )?;
    sks.post_update_key(
        iss2.post_update_key(key3.key_handle, &ee3, key1.key_handle, &ee1)
            .map_err(at("tkr"))?,
    )
    .map_err(at("postUpdateKey"))?;
    close_session(sks, &mut iss2, 16)?;
    let sig2 = sign(sks, key1.key_handle, &digest)?;
    verify_p256(&ee3, &digest, &sig2).map_err(at("renewed signature verification"))?;
    rep.steps.push(format!(
        "session 2 closed: postUpdateKey replaced key {} (new certificate, inherited PIN); signature verified",
        key1.key_handle
    ));
    Ok(rep)
}
