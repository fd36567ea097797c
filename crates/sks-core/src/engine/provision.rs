//! Object creation inside an open session: createPUKPolicy \[7\], createPINPolicy \[8\],
//! createKeyEntry \[9\], setCertificatePath \[11\], importSymmetricKey \[12\],
//! importPrivateKey \[13\] and addExtension \[14\] (byte layouts §6.4–§6.10).

use super::key_entry::supported_key;
use super::Core;
use crate::api::{req, resp};
use crate::codec::{DecodeError, Reader};
use crate::consts::*;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::layout;
use crate::model::{Extension, KeyEntry, PinPolicyEntry, PukPolicy};
use crate::pin::{self, PinPolicy, PinPolicyAttributes};
use crate::secret::Secret;

fn option(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Option, msg)
}

/// One PropertyBag property: (Name, Writable, Value).
pub(crate) type Property = (Vec<u8>, bool, Vec<u8>);

/// Parses PropertyBag ExtensionData (byte layouts §6.10.1): Name, Writable, Value triples.
pub(crate) fn parse_property_bag(data: &[u8]) -> Option<Vec<Property>> {
    let mut r = Reader::new(data);
    let mut props = Vec::new();
    while r.remaining() > 0 {
        let name = r.array().ok()?;
        if name.is_empty() || name.len() > 255 {
            return None;
        }
        let writable = r.boolean().ok()?;
        let value = r.array().ok()?;
        props.push((name, writable, value));
    }
    (!props.is_empty()).then_some(props)
}

/// Serializes a PropertyBag.
pub(crate) fn encode_property_bag(props: &[Property]) -> Result<Vec<u8>, DecodeError> {
    crate::layout::property_bag(props.iter().map(|(n, wr, v)| (&n[..], *wr, &v[..])))
}

/// importSymmetricKey and importPrivateKey: the key, its encrypted value and the MAC.
trait ImportRequest {
    /// Longest plain value; the encrypted one may add [`AES_CBC_PKCS5_PADDING`].
    const LIMIT: usize;
    fn key_handle(&self) -> u32;
    fn encrypted(&self) -> &[u8];
    fn mac(&self) -> &[u8];
    fn mac_input(&self, ee_certificate: &[u8]) -> layout::MacResult;
}

macro_rules! import_request {
    ($($name:ident.$field:ident: $limit:expr, $layout:ident;)*) => {
        $(impl ImportRequest for req::$name {
            const LIMIT: usize = $limit;
            fn key_handle(&self) -> u32 {
                self.key_handle
            }
            fn encrypted(&self) -> &[u8] {
                &self.$field
            }
            fn mac(&self) -> &[u8] {
                &self.mac
            }
            fn mac_input(&self, ee_certificate: &[u8]) -> layout::MacResult {
                layout::$layout(self, ee_certificate)
            }
        })*
    };
}

import_request! {
    ImportSymmetricKey.symmetric_key: MAX_LENGTH_SYMMETRIC_KEY, import_symmetric_key;
    ImportPrivateKey.private_key: MAX_LENGTH_CRYPTO_DATA, import_private_key;
}

impl Core {
    fn ee_certificate(&self, kh: u32) -> SksResult<Vec<u8>> {
        self.state
            .keys
            .get(&kh)
            .and_then(|k| k.ee_certificate().map(<[u8]>::to_vec))
            .ok_or_else(|| option("Missing \"setCertificatePath\""))
    }

    /// createPUKPolicy \[7\] (byte layouts §6.4).
    pub(crate) fn create_puk_policy(
        &mut self,
        a: req::CreatePukPolicy,
    ) -> SksResult<resp::CreatePukPolicy> {
        self.in_open_session(a.provisioning_handle, |c, ph| {
            let format =
                PinFormat::try_from(a.format).map_err(|_| option("Invalid PUK \"Format\""))?;
            if a.retry_limit > MAX_RETRY_LIMIT {
                return Err(option("PUK \"RetryLimit\" out of range"));
            }
            c.verify_mac(ph, &layout::create_puk_policy(&a)?, &a.mac)?;
            let value = c.decrypt(ph, &a.puk_value)?;
            if value.is_empty() || value.len() > MAX_LENGTH_PIN_PUK {
                return Err(option("PUK length error"));
            }
            pin::check_syntax(format, value.expose()).map_err(|e| option(e.to_string()))?;
            c.check_new_id(ph, &a.id)?;
            let handle = c.add_object(|handle| PukPolicy {
                handle,
                session: ph,
                id: a.id,
                value,
                format,
                retry_limit: a.retry_limit,
                error_count: 0,
            })?;
            Ok(resp::CreatePukPolicy {
                puk_policy_handle: handle,
            })
        })
    }

    /// createPINPolicy \[8\] (byte layouts §6.5).
    pub(crate) fn create_pin_policy(
        &mut self,
        a: req::CreatePinPolicy,
    ) -> SksResult<resp::CreatePinPolicy> {
        self.in_open_session(a.provisioning_handle, |c, ph| {
            // A PUK policy has a Format too: the message says whose.
            let policy = <PinPolicyAttributes>::try_from(a.policy).map_err(|e| match e.field {
                "Format" => option("Invalid PIN \"Format\""),
                field => option(format!("Invalid \"{field}\"")),
            })?;
            if policy.retry_limit == 0 || policy.retry_limit > MAX_RETRY_LIMIT {
                return Err(option("PIN \"RetryLimit\" out of range"));
            }
            if policy.pattern_restrictions & !pattern::DEFINED != 0 {
                return Err(option("Invalid \"PatternRestrictions\""));
            }
            let puk_id = if a.puk_policy_handle == 0 {
                None
            } else {
                match c.state.puks.get(&a.puk_policy_handle) {
                    Some(p) if p.session == ph => Some(p.id.clone()),
                    _ => return Err(option("Referenced PUK policy object not found")),
                }
            };
            if policy.pattern_restrictions & pattern::MISSING_GROUP != 0
                && policy.format != PinFormat::Alphanumeric
                && policy.format != PinFormat::String
            {
                return Err(option(
                    "\"missing-group\" requires alphanumeric or string format",
                ));
            }
            if policy.min_length < 1
                || usize::from(policy.max_length) > MAX_LENGTH_PIN_PUK
                || policy.max_length < policy.min_length
            {
                return Err(option("PIN length limits out of range"));
            }
            let mac_input = layout::create_pin_policy(&a, puk_id.as_deref())?;
            c.verify_mac(ph, &mac_input, &a.mac)?;
            c.check_new_id(ph, &a.id)?;
            let handle = c.add_object(|handle| PinPolicyEntry {
                handle,
                session: ph,
                puk: a.puk_policy_handle,
                policy: PinPolicy {
                    id: a.id,
                    attributes: policy,
                },
            })?;
            Ok(resp::CreatePinPolicy {
                pin_policy_handle: handle,
            })
        })
    }

    /// setCertificatePath \[11\] (byte layouts §6.7).
    pub(crate) fn set_certificate_path(
        &mut self,
        a: req::SetCertificatePath,
    ) -> SksResult<resp::SetCertificatePath> {
        let ph = self.open_key(a.key_handle)?;
        self.guarded(ph, |c| {
            let path = &a.certificate_path.0;
            if path.is_empty() {
                return Err(option("Empty certificate path"));
            }
            if path
                .iter()
                .any(|cert| cert.len() > MAX_LENGTH_CRYPTO_DATA || cert.is_empty())
            {
                return Err(option("Certificate length error"));
            }
            let (public_key, id) = {
                let k = c.key_mut(a.key_handle)?;
                (k.public_key.clone(), k.id.clone())
            };
            let mac_input = layout::set_certificate_path(&a, &public_key, &id)?;
            c.verify_mac(ph, &mac_input, &a.mac)?;
            let spki = crate::x509::certificate_spki(&path[0])
                .map_err(|_| err(ErrorCode::Crypto, "Malformed end-entity certificate"))?;
            let ee_key = PublicKey::from_spki(&spki)
                .map_err(|_| option("Unsupported end-entity public key"))?;
            if !supported_key(&ee_key) {
                return Err(option("Unsupported end-entity public key"));
            }
            let k = c.key_mut(a.key_handle)?;
            if !k.certificate_path.is_empty() {
                return Err(option("Multiple calls to \"setCertificatePath\""));
            }
            k.certificate_path = a.certificate_path.0;
            let st = &mut c.state;
            if let Some(ee) = st
                .keys
                .get(&a.key_handle)
                .and_then(KeyEntry::ee_certificate)
            {
                st.certificates.add(a.key_handle, ee);
            }
            Ok(resp::SetCertificatePath {})
        })
    }

    /// The steps importSymmetricKey and importPrivateKey share (byte layouts §6.8, §6.9): an
    /// open key without an earlier import, an encrypted value within the request's limit, the
    /// MAC over the key's EE certificate, decryption; `store` checks the plain value and puts
    /// it in the key entry, which is then marked as backed up by the server.
    fn import_key<A: ImportRequest>(
        &mut self,
        a: &A,
        store: impl FnOnce(Secret, &mut KeyEntry) -> SksResult<()>,
    ) -> SksResult<()> {
        let kh = a.key_handle();
        let ph = self.open_key(kh)?;
        self.guarded(ph, |c| {
            let ee = c.ee_certificate(kh)?;
            if a.encrypted().len() > A::LIMIT + AES_CBC_PKCS5_PADDING {
                return Err(option("Imported key too long"));
            }
            if c.key_mut(kh)?.key_backup & key_backup::SERVER != 0 {
                return Err(option("Multiple key imports"));
            }
            c.verify_mac(ph, &a.mac_input(&ee)?, a.mac())?;
            let value = c.decrypt(ph, a.encrypted())?;
            let k = c.key_mut(kh)?;
            store(value, k)?;
            k.key_backup |= key_backup::SERVER;
            Ok(())
        })
    }

    /// importSymmetricKey \[12\] (byte layouts §6.8).
    pub(crate) fn import_symmetric_key(
        &mut self,
        a: req::ImportSymmetricKey,
    ) -> SksResult<resp::ImportSymmetricKey> {
        self.import_key(&a, |key, k| {
            if key.is_empty() || key.len() > MAX_LENGTH_SYMMETRIC_KEY {
                return Err(option("Symmetric key length error"));
            }
            k.symmetric_key = Some(key);
            Ok(())
        })?;
        Ok(resp::ImportSymmetricKey {})
    }

    /// importPrivateKey \[13\] (byte layouts §6.9).
    pub(crate) fn import_private_key(
        &mut self,
        a: req::ImportPrivateKey,
    ) -> SksResult<resp::ImportPrivateKey> {
        self.import_key(&a, |der, k| {
            let private = PrivateKey::from_pkcs8(der.expose())
                .map_err(|_| err(ErrorCode::Crypto, "Malformed PKCS#8 private key"))?;
            if !supported_key(&private.public_key()) {
                return Err(option("Unsupported imported key"));
            }
            k.private_key = private
                .to_pkcs8()
                .map_err(|e| err(ErrorCode::Crypto, e.to_string()))?;
            Ok(())
        })?;
        Ok(resp::ImportPrivateKey {})
    }

    /// addExtension \[14\] (byte layouts §6.10).
    pub(crate) fn add_extension(&mut self, a: req::AddExtension) -> SksResult<resp::AddExtension> {
        let ph = self.open_key(a.key_handle)?;
        self.guarded(ph, |c| {
            let sub_type =
                SubType::try_from(a.sub_type).map_err(|_| option("Invalid \"SubType\""))?;
            if a.type_uri.is_empty() || a.type_uri.len() > MAX_LENGTH_URI {
                return Err(option("\"Type\" length error"));
            }
            if c.key_mut(a.key_handle)?
                .extensions
                .iter()
                .any(|e| e.type_uri == a.type_uri)
            {
                return Err(option(format!("Duplicate extension: {}", a.type_uri)));
            }
            let encrypted = sub_type == SubType::EncryptedExtension;
            let limit =
                MAX_LENGTH_EXTENSION_DATA + if encrypted { AES_CBC_PKCS5_PADDING } else { 0 };
            if a.extension_data.0.len() > limit {
                return Err(option("\"ExtensionData\" too long"));
            }
            let logotype = sub_type == SubType::Logotype;
            if a.qualifier.is_empty() == logotype || a.qualifier.len() > MAX_LENGTH_QUALIFIER {
                return Err(option("\"Qualifier\" error"));
            }
            if sub_type == SubType::PropertyBag && parse_property_bag(&a.extension_data.0).is_none()
            {
                return Err(option("Malformed PropertyBag"));
            }
            let ee = c.ee_certificate(a.key_handle)?;
            c.verify_mac(ph, &layout::add_extension(&a, &ee)?, &a.mac)?;
            let data = if encrypted {
                let d = c.decrypt(ph, &a.extension_data.0)?;
                if d.len() > MAX_LENGTH_EXTENSION_DATA {
                    return Err(option("\"ExtensionData\" too long"));
                }
                d.expose().to_vec()
            } else {
                a.extension_data.0
            };
            c.key_mut(a.key_handle)?.extensions.push(Extension {
                type_uri: a.type_uri,
                sub_type,
                qualifier: a.qualifier,
                data,
            });
            Ok(resp::AddExtension {})
        })
    }
}
