//! # sks-issuer — issuer emulation for the software SKS
//!
//! The server side of SKS API 1.00 §6. It creates the ephemeral ECDH key, derives the same
//! SessionKey, keeps its own MACSequenceCounter, MACs and encrypts requests, signs Target Key
//! References with its KeyManagementKey, verifies attestations, and acts as a local CA for the
//! generated public keys. Tests, benchmarks and `sks demo` provision through it exactly as a
//! remote issuer would.
//!
//! ```text
//!  IssuerIdentity (CA + KeyManagementKey) ─session()─▶ Issuer
//!  Issuer ── req::* with MAC (sks_core::layout) ──▶ any SksApi (engine, loopback, TCP)
//!         ◀── resp::* ── verify attestations (sks_core::layout) ─┘
//!  demo::run = Appendix B end to end through an Issuer
//! ```
//!
//! Every MAC and attestation input is built by `sks_core::layout`, the same code the engine
//! uses to check it. This crate depends on `sks-core` alone and must not depend on a storage
//! backend (`sks-sqlite`) or the command line (`sks`); the core SKS does not depend on it, and
//! production paths that only serve keys (`sks serve`) do not use it.

pub mod demo;
mod identity;
mod spec;

pub use identity::IssuerIdentity;
pub use sks_core::pin::PinPolicy;
pub use spec::KeyEntrySpec;

use sks_core::api::{req, resp};
use sks_core::codec::{Blob, List8};
use sks_core::consts::*;
use sks_core::crypto::keys::{PrivateKey, PublicKey};
use sks_core::crypto::{CryptoError, SessionKey};
use sks_core::layout::{self, MacInput, PinReference};
use sks_core::secret::ct_eq;
use sks_core::secret::Secret;
use sks_core::x509::{certificate_spki, issue_certificate};
use std::collections::HashMap;
use std::time::Duration;

/// An issuer-side failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A session attestation, key attestation or close attestation did not verify.
    #[error("attestation verification failed: {0}")]
    Attestation(&'static str),
    /// A key or certificate could not be handled.
    #[error("issuer key error: {0}")]
    Key(String),
    /// A call was made in the wrong order (no session yet).
    #[error("issuer state error: {0}")]
    State(&'static str),
    /// A session primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A value did not fit its length prefix in the wire or MAC encoding.
    #[error("issuer encoding: {0}")]
    Encoding(#[from] sks_core::codec::DecodeError),
}

struct LiveSession {
    session_key: SessionKey,
    mac_counter: u16,
    client_session_id: String,
    device_id: Vec<u8>,
    provisioning_handle: u32,
    pending_attestations: HashMap<String, u16>,
    close_attestation: Option<u16>,
}

/// The issuer of one provisioning session (create a new one per session).
pub struct Issuer {
    /// IssuerURI.
    pub issuer_uri: String,
    /// ServerSessionID.
    pub server_session_id: String,
    /// PrivacyEnabled.
    pub privacy_enabled: bool,
    /// ClientTime.
    pub client_time: u32,
    /// SessionLifeTime.
    pub session_life_time: u32,
    /// SessionKeyLimit.
    pub session_key_limit: u16,
    ephemeral: p256::SecretKey,
    key_management_key: Option<PrivateKey>,
    ca_key: p256::SecretKey,
    ca_name: String,
    ca_certificate: Vec<u8>,
    serial: u64,
    live: Option<LiveSession>,
}

/// A request whose last argument is the MAC over the others (§6).
trait Macced {
    fn mac_mut(&mut self) -> &mut Vec<u8>;
}

macro_rules! macced {
    ($($name:ident),*) => {
        $(impl Macced for req::$name {
            fn mac_mut(&mut self) -> &mut Vec<u8> {
                &mut self.mac
            }
        })*
    };
}

macced!(
    CreatePukPolicy,
    CreatePinPolicy,
    CreateKeyEntry,
    SetCertificatePath,
    ImportSymmetricKey,
    ImportPrivateKey,
    AddExtension,
    PostDeleteKey,
    PostUnlockKey,
    PostUpdateKey,
    PostCloneKeyProtection
);

/// The key imports: the key material is encrypted with the session key, and the MAC covers
/// the key's end-entity certificate `ee` (byte layouts §6.8, §6.9).
macro_rules! import_builders {
    ($($(#[$doc:meta])* $fname:ident($arg:ident) -> $req:ident.$field:ident, $layout:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fname(
                &mut self,
                key_handle: u32,
                ee: &[u8],
                $arg: &[u8],
            ) -> Result<req::$req, IssuerError> {
                let request = req::$req {
                    key_handle,
                    $field: self.encrypt($arg)?,
                    mac: Vec::new(),
                };
                self.with_mac(request, |r| layout::$layout(r, ee))
            }
        )*
    };
}

/// The post-provisioning operations that bind a new key to a target key: authorised by the
/// target's end-entity certificate, MACed over the new key's (§7.4 \[52\], \[53\]).
macro_rules! new_key_post_ops {
    ($($(#[$doc:meta])* $fname:ident -> $req:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fname(
                &mut self,
                new_key: u32,
                new_ee: &[u8],
                target: u32,
                target_ee: &[u8],
            ) -> Result<req::$req, IssuerError> {
                let request = req::$req {
                    key_handle: new_key,
                    target_key_handle: target,
                    authorization: self.authorization(target_ee)?,
                    mac: Vec::new(),
                };
                self.with_mac(request, |r| layout::$fname(r, new_ee))
            }
        )*
    };
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer_uri", &self.issuer_uri)
            .field("server_session_id", &self.server_session_id)
            .field("privacy_enabled", &self.privacy_enabled)
            .finish()
    }
}

impl Issuer {
    fn live(&mut self) -> Result<&mut LiveSession, IssuerError> {
        self.live.as_mut().ok_or(IssuerError::State("no session"))
    }

    /// MAC with the next MACSequenceCounter value (§6.2).
    fn mac(&mut self, input: &MacInput) -> Result<Vec<u8>, IssuerError> {
        let l = self.live()?;
        let n = l.mac_counter;
        l.mac_counter = n.wrapping_add(1);
        Ok(l.session_key.mac(input.method, n, &input.data)?.to_vec())
    }

    /// Fills in the MAC of `request` over the layout `input` builds from it (§6), with the
    /// next counter value.
    fn with_mac<R: Macced>(
        &mut self,
        mut request: R,
        input: impl FnOnce(&R) -> layout::MacResult,
    ) -> Result<R, IssuerError> {
        *request.mac_mut() = self.mac(&input(&request)?)?;
        Ok(request)
    }

    /// Reserves the next counter value for an attestation the SKS will return (§4.3).
    fn reserve_attestation(&mut self) -> Result<u16, IssuerError> {
        let l = self.live()?;
        let n = l.mac_counter;
        l.mac_counter = n.wrapping_add(1);
        Ok(n)
    }

    /// The ProvisioningHandle of the accepted session.
    pub fn provisioning_handle(&self) -> Result<u32, IssuerError> {
        self.live
            .as_ref()
            .map(|l| l.provisioning_handle)
            .ok_or(IssuerError::State("no session"))
    }

    /// The KeyManagementKey (SPKI); empty when this issuer has none (the wire's "absent").
    pub fn key_management_key_spki(&self) -> Result<Vec<u8>, IssuerError> {
        match &self.key_management_key {
            Some(k) => k
                .public_key()
                .to_spki()
                .map_err(|e| IssuerError::Key(e.to_string())),
            None => Ok(Vec::new()),
        }
    }

    /// The createProvisioningSession request.
    pub fn create_session_request(&self) -> Result<req::CreateProvisioningSession, IssuerError> {
        Ok(req::CreateProvisioningSession {
            algorithm: ALG_SESSION_S1.to_owned(),
            privacy_enabled: self.privacy_enabled,
            server_session_id: self.server_session_id.clone(),
            server_ephemeral_key: PublicKey::P256(self.ephemeral.public_key())
                .to_spki()
                .map_err(|e| IssuerError::Key(e.to_string()))?,
            issuer_uri: self.issuer_uri.clone(),
            key_management_key: self.key_management_key_spki()?,
            client_time: self.client_time,
            session_life_time: self.session_life_time,
            session_key_limit: self.session_key_limit,
        })
    }

    /// "Server Response Validation": derive SessionKey and verify the session attestation
    /// with the device certificate (E2ES) or by comparison (PEP).
    pub fn accept_session(
        &mut self,
        out: &resp::CreateProvisioningSession,
        device_certificate: &[u8],
    ) -> Result<(), IssuerError> {
        let client_key = match PublicKey::from_spki(&out.client_ephemeral_key) {
            Ok(PublicKey::P256(k)) => k,
            _ => return Err(IssuerError::Key("ClientEphemeralKey is not P-256".into())),
        };
        let z =
            p256::ecdh::diffie_hellman(self.ephemeral.to_nonzero_scalar(), client_key.as_affine());
        let device_id = if self.privacy_enabled {
            ANONYMOUS.to_vec()
        } else {
            device_certificate.to_vec()
        };
        let session_key = SessionKey::derive(
            z.raw_secret_bytes(),
            &out.client_session_id,
            &self.server_session_id,
            &self.issuer_uri,
            &device_id,
        )?;
        let request = self.create_session_request()?;
        let h = session_key.plain_hmac(&layout::session_attestation(
            &request,
            &out.client_ephemeral_key,
        )?)?;
        let ok = if self.privacy_enabled {
            ct_eq(&h, &out.attestation)
        } else {
            let spki = certificate_spki(device_certificate).map_err(|e| IssuerError::Key(e.0))?;
            let key = PublicKey::from_spki(&spki).map_err(|e| IssuerError::Key(e.to_string()))?;
            key.verify_sha256(&h, &out.attestation).unwrap_or(false)
        };
        if !ok {
            return Err(IssuerError::Attestation("session"));
        }
        self.live = Some(LiveSession {
            session_key,
            mac_counter: 0,
            client_session_id: out.client_session_id.clone(),
            device_id,
            provisioning_handle: out.provisioning_handle,
            pending_attestations: HashMap::new(),
            close_attestation: None,
        });
        Ok(())
    }

    /// §6.1 encryption with the session's EncryptionKey.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, IssuerError> {
        Ok(self.live()?.session_key.encrypt(plaintext)?)
    }

    /// createPUKPolicy.
    pub fn puk_policy(
        &mut self,
        id: &str,
        puk: &[u8],
        format: PinFormat,
        retry_limit: u16,
    ) -> Result<req::CreatePukPolicy, IssuerError> {
        let request = req::CreatePukPolicy {
            provisioning_handle: self.provisioning_handle()?,
            id: id.to_owned(),
            puk_value: self.encrypt(puk)?,
            format: format.into(),
            retry_limit,
            mac: Vec::new(),
        };
        self.with_mac(request, layout::create_puk_policy)
    }

    /// createPINPolicy.
    /// `puk` is the governing PUK policy: (handle, ID).
    pub fn pin_policy(
        &mut self,
        p: &PinPolicy,
        puk: Option<(u32, &str)>,
    ) -> Result<req::CreatePinPolicy, IssuerError> {
        self.pin_policy_with(p, puk, |_| {})
    }

    /// createPINPolicy with the wire fields edited before the MAC is computed, to send values a
    /// [`PinPolicy`] cannot hold (tests of the SKS's rejections).
    pub fn pin_policy_with(
        &mut self,
        p: &PinPolicy,
        puk: Option<(u32, &str)>,
        edit: impl FnOnce(&mut req::CreatePinPolicy),
    ) -> Result<req::CreatePinPolicy, IssuerError> {
        let puk_handle = puk.map_or(0, |(handle, _)| handle);
        let mut request = p.to_request(self.provisioning_handle()?, puk_handle);
        edit(&mut request);
        let puk_id = puk.map(|(_, id)| id);
        self.with_mac(request, |r| layout::create_pin_policy(r, puk_id))
    }

    /// createKeyEntry; reserves the next counter value for the key attestation.
    pub fn key_entry(&mut self, k: &KeyEntrySpec) -> Result<req::CreateKeyEntry, IssuerError> {
        self.key_entry_with(k, |_| {})
    }

    /// createKeyEntry with the wire fields edited before the MAC is computed, to send values a
    /// [`KeyEntrySpec`] cannot hold (tests of the SKS's rejections).
    pub fn key_entry_with(
        &mut self,
        k: &KeyEntrySpec,
        edit: impl FnOnce(&mut req::CreateKeyEntry),
    ) -> Result<req::CreateKeyEntry, IssuerError> {
        let pin_reference = k
            .pin_policy
            .as_ref()
            .map(|(_, id, user_defined)| PinReference {
                id,
                user_defined: *user_defined,
            });
        let issuer_set = pin_reference.is_some_and(|p| !p.user_defined);
        let pin_value = if issuer_set {
            self.encrypt(&k.pin_value)?
        } else {
            k.pin_value.clone()
        };
        let mut request = req::CreateKeyEntry {
            provisioning_handle: self.provisioning_handle()?,
            id: k.id.clone(),
            algorithm: ALG_KEY_K1.to_owned(),
            server_seed: k.server_seed.clone(),
            device_pin_protection: k.device_pin,
            pin_policy_handle: k.pin_policy.as_ref().map(|(h, _, _)| *h).unwrap_or(0),
            pin_value: Secret::new(pin_value),
            enable_pin_caching: k.protection.enable_pin_caching,
            biometric_protection: k.protection.biometric.into(),
            export_protection: k.protection.export_protection.into(),
            delete_protection: k.protection.delete_protection.into(),
            app_usage: k.protection.app_usage.into(),
            friendly_name: k.friendly_name.clone(),
            key_algorithm: k.key_algorithm.clone(),
            key_parameters: k.key_parameters.clone(),
            endorsed_algorithms: List8(k.endorsed.clone()),
            mac: Vec::new(),
        };
        edit(&mut request);
        let request = self.with_mac(request, |r| layout::create_key_entry(r, pin_reference))?;
        let n = self.reserve_attestation()?;
        self.live()?.pending_attestations.insert(k.id.clone(), n);
        Ok(request)
    }

    /// Verifies the key attestation `ID || PublicKey` (byte layouts §6.6.2).
    pub fn verify_key_attestation(
        &mut self,
        id: &str,
        out: &resp::CreateKeyEntry,
    ) -> Result<(), IssuerError> {
        let l = self.live()?;
        let n = l
            .pending_attestations
            .remove(id)
            .ok_or(IssuerError::State("no such key request"))?;
        let data = layout::key_attestation(id, &out.public_key)?;
        if ct_eq(&l.session_key.attest(n, &data)?, &out.attestation) {
            Ok(())
        } else {
            Err(IssuerError::Attestation("key"))
        }
    }

    /// Issues an end-entity certificate for a public key (the "external certification").
    pub fn certify(&mut self, subject_cn: &str, public_key: &[u8]) -> Result<Vec<u8>, IssuerError> {
        self.serial += 1;
        issue_certificate(
            &self.ca_key,
            Some(&self.ca_name),
            &format!("CN={subject_cn}"),
            public_key,
            self.serial,
            Duration::from_secs(365 * 86400),
        )
        .map_err(|e| IssuerError::Key(e.0))
    }

    /// The issuer CA certificate.
    pub fn ca_certificate(&self) -> &[u8] {
        &self.ca_certificate
    }

    /// setCertificatePath.
    pub fn certificate_path(
        &mut self,
        key_handle: u32,
        id: &str,
        public_key: &[u8],
        path: Vec<Vec<u8>>,
    ) -> Result<req::SetCertificatePath, IssuerError> {
        let request = req::SetCertificatePath {
            key_handle,
            certificate_path: List8(path),
            mac: Vec::new(),
        };
        self.with_mac(request, |r| layout::set_certificate_path(r, public_key, id))
    }

    import_builders! {
        /// importSymmetricKey.
        symmetric_key(key) -> ImportSymmetricKey.symmetric_key, import_symmetric_key;
        /// importPrivateKey.
        private_key(pkcs8) -> ImportPrivateKey.private_key, import_private_key;
    }

    /// addExtension; SubType 0x01 data is encrypted here. `sub_type_value` is the byte as sent
    /// ([`SubType`] values, or any other byte to test the SKS's rejection).
    pub fn extension(
        &mut self,
        key_handle: u32,
        ee: &[u8],
        type_uri: &str,
        sub_type_value: u8,
        qualifier: &str,
        data: &[u8],
    ) -> Result<req::AddExtension, IssuerError> {
        let data = if SubType::try_from(sub_type_value) == Ok(SubType::EncryptedExtension) {
            self.encrypt(data)?
        } else {
            data.to_vec()
        };
        let request = req::AddExtension {
            key_handle,
            type_uri: type_uri.to_owned(),
            sub_type: sub_type_value,
            qualifier: qualifier.to_owned(),
            extension_data: Blob(data),
            mac: Vec::new(),
        };
        self.with_mac(request, |r| layout::add_extension(r, ee))
    }

    /// Target Key Reference (§6.4): Sign(KMK, HMAC(SessionKey || DeviceID, target EE cert)).
    pub fn authorization(&mut self, target_ee: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let l = self.live.as_ref().ok_or(IssuerError::State("no session"))?;
        let hash = l
            .session_key
            .target_key_reference(&l.device_id, target_ee)?;
        let kmk = self
            .key_management_key
            .as_ref()
            .ok_or(IssuerError::State("no KeyManagementKey"))?;
        kmk.sign_sha256(&hash)
            .map_err(|e| IssuerError::Key(e.to_string()))
    }

    /// postDeleteKey.
    pub fn post_delete_key(
        &mut self,
        target: u32,
        target_ee: &[u8],
    ) -> Result<req::PostDeleteKey, IssuerError> {
        let authorization = self.authorization(target_ee)?;
        self.post_delete_key_with(target, authorization)
    }

    /// postDeleteKey with a caller-supplied Authorization (for testing rejected signatures).
    pub fn post_delete_key_with(
        &mut self,
        target: u32,
        authorization: Vec<u8>,
    ) -> Result<req::PostDeleteKey, IssuerError> {
        let request = req::PostDeleteKey {
            provisioning_handle: self.provisioning_handle()?,
            target_key_handle: target,
            authorization,
            mac: Vec::new(),
        };
        self.with_mac(request, layout::post_delete_key)
    }

    /// postUnlockKey.
    pub fn post_unlock_key(
        &mut self,
        target: u32,
        target_ee: &[u8],
    ) -> Result<req::PostUnlockKey, IssuerError> {
        let request = req::PostUnlockKey {
            provisioning_handle: self.provisioning_handle()?,
            target_key_handle: target,
            authorization: self.authorization(target_ee)?,
            mac: Vec::new(),
        };
        self.with_mac(request, layout::post_unlock_key)
    }

    new_key_post_ops! {
        /// postUpdateKey.
        post_update_key -> PostUpdateKey;
        /// postCloneKeyProtection.
        post_clone_key_protection -> PostCloneKeyProtection;
    }

    /// closeProvisioningSession; reserves the next counter value for the close attestation.
    pub fn close(&mut self, nonce: &[u8]) -> Result<req::CloseProvisioningSession, IssuerError> {
        let (csid, ph) = {
            let l = self.live()?;
            (l.client_session_id.clone(), l.provisioning_handle)
        };
        let mut request = req::CloseProvisioningSession {
            provisioning_handle: ph,
            nonce: nonce.to_vec(),
            mac: Vec::new(),
        };
        let mac_input = layout::close_provisioning_session(
            &request,
            &csid,
            &self.server_session_id,
            &self.issuer_uri,
        )?;
        request.mac = self.mac(&mac_input)?;
        let n = self.reserve_attestation()?;
        self.live()?.close_attestation = Some(n);
        Ok(request)
    }

    /// Verifies the close attestation `Nonce || sks.s1`.
    pub fn verify_close(
        &mut self,
        nonce: &[u8],
        out: &resp::CloseProvisioningSession,
    ) -> Result<(), IssuerError> {
        let l = self.live()?;
        let n = l
            .close_attestation
            .ok_or(IssuerError::State("close not requested"))?;
        let data = layout::close_attestation(nonce)?;
        if ct_eq(&l.session_key.attest(n, &data)?, &out.attestation) {
            Ok(())
        } else {
            Err(IssuerError::Attestation("close"))
        }
    }

    /// signProvisioningSessionData verification value.
    pub fn expected_session_signature(&self, data: &[u8]) -> Result<[u8; 32], IssuerError> {
        let l = self.live.as_ref().ok_or(IssuerError::State("no session"))?;
        Ok(l.session_key.external_signature(data)?)
    }
}

/// Builds PropertyBag ExtensionData from (name, value, writable) triples.
pub fn property_bag(props: &[(&str, &str, bool)]) -> Result<Vec<u8>, IssuerError> {
    Ok(sks_core::layout::property_bag(props.iter().map(
        |(name, value, writable)| (name.as_bytes(), *writable, value.as_bytes()),
    ))?)
}
