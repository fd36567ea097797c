//! createKeyEntry \[9\] (byte layouts §6.6): KeyAlgorithm/KeyParameters, PIN resolution,
//! protection rules, EndorsedAlgorithms, the MAC layout, key generation and the attestation.

use super::Core;
use crate::api::{req, resp};
use crate::consts::*;
use crate::crypto::keys::{KeySpec, PrivateKey, PublicKey, MAX_RSA_EXPONENT};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::layout::{self, PinReference};
use crate::model::{KeyEntry, KeyProtection, PinPolicyEntry};
use crate::pin;

fn option(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Option, msg)
}

/// Parses KeyAlgorithm + KeyParameters (byte layouts §10 item 15).
fn key_spec(uri: &str, params: &[u8]) -> SksResult<KeySpec> {
    let (spec, exp) = match uri {
        ALG_KEY_EC_P256 => (KeySpec::P256, false),
        ALG_KEY_EC_P384 => (KeySpec::P384, false),
        ALG_KEY_RSA1024 => (
            KeySpec::Rsa {
                bits: 1024,
                exponent: 65537,
            },
            false,
        ),
        ALG_KEY_RSA2048 => (
            KeySpec::Rsa {
                bits: 2048,
                exponent: 65537,
            },
            false,
        ),
        ALG_KEY_RSA1024_EXP => (
            KeySpec::Rsa {
                bits: 1024,
                exponent: 0,
            },
            true,
        ),
        ALG_KEY_RSA2048_EXP => (
            KeySpec::Rsa {
                bits: 2048,
                exponent: 0,
            },
            true,
        ),
        _ => {
            return Err(err(
                ErrorCode::Algorithm,
                format!("Unsupported \"KeyAlgorithm\": {uri}"),
            ))
        }
    };
    if !exp {
        if !params.is_empty() {
            return Err(option("Unexpected \"KeyParameters\""));
        }
        return Ok(spec);
    }
    if params.is_empty() || params.len() > 8 {
        return Err(option("Missing or oversized \"KeyParameters\""));
    }
    let e = params
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e < 3 || e % 2 == 0 {
        return Err(option("Invalid RSA exponent"));
    }
    if e > MAX_RSA_EXPONENT {
        return Err(option("Unsupported RSA exponent: larger than 2^33-1"));
    }
    match spec {
        KeySpec::Rsa { bits, .. } => Ok(KeySpec::Rsa { bits, exponent: e }),
        other => Ok(other),
    }
}

/// EndorsedAlgorithm checks at createKeyEntry (byte layouts §8.5, §10 item 27).
fn check_endorsed(list: &[String]) -> SksResult<()> {
    for w in list.windows(2) {
        if w[0].as_bytes() >= w[1].as_bytes() {
            return Err(option("Duplicate or incorrectly sorted algorithm"));
        }
    }
    for uri in list {
        if uri == ALG_NONE {
            if list.len() != 1 {
                return Err(option("\"none\" must be the only endorsed algorithm"));
            }
            continue;
        }
        match algorithm_class(uri) {
            Some(AlgClass::KeyGeneration | AlgClass::Special) | None => {
                return Err(option(format!("Unsupported algorithm: {uri}")));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// True if the public key is one this SKS accepts in certificates and imports.
pub(crate) fn supported_key(k: &PublicKey) -> bool {
    match k {
        PublicKey::Rsa(_) => matches!(k.rsa_bits(), Some(1024 | 2048)),
        PublicKey::P256(_) | PublicKey::P384(_) => true,
    }
}

impl Core {
    /// createKeyEntry \[9\] (byte layouts §6.6).
    pub(crate) fn create_key_entry(
        &mut self,
        a: req::CreateKeyEntry,
    ) -> SksResult<resp::CreateKeyEntry> {
        self.in_open_session(a.provisioning_handle, |c, ph| {
            c.create_key_entry_inner(ph, a)
        })
    }

    fn create_key_entry_inner(
        &mut self,
        ph: u32,
        a: req::CreateKeyEntry,
    ) -> SksResult<resp::CreateKeyEntry> {
        if a.algorithm != ALG_KEY_K1 {
            return Err(err(
                ErrorCode::Algorithm,
                "Unsupported key entry \"Algorithm\"",
            ));
        }
        let spec = key_spec(&a.key_algorithm, &a.key_parameters)?;
        if a.server_seed.len() > 32 {
            return Err(option("\"ServerSeed\" must be 0-32 bytes"));
        }
        let out_of_range = |name: &str| option(format!("\"{name}\" out of range"));
        let export_protection = Protection::try_from(a.export_protection)
            .map_err(|_| out_of_range("ExportProtection"))?;
        let delete_protection = Protection::try_from(a.delete_protection)
            .map_err(|_| out_of_range("DeleteProtection"))?;
        let app_usage = AppUsage::try_from(a.app_usage).map_err(|_| out_of_range("AppUsage"))?;
        let biometric = BiometricProtection::try_from(a.biometric_protection)
            .map_err(|_| out_of_range("BiometricProtection"))?;
        if a.friendly_name.chars().count() > MAX_LENGTH_FRIENDLY_NAME {
            return Err(option("\"FriendlyName\" too long"));
        }
        let policy: Option<PinPolicyEntry> = if a.device_pin_protection {
            return Err(option("Device PIN protection is not supported by this SKS"));
        } else if a.pin_policy_handle != 0 {
            let p = match session_pin_policy(self, a.pin_policy_handle, ph) {
                Some(p) => p,
                None => return Err(option("Referenced PIN policy object not found")),
            };
            if a.enable_pin_caching && p.policy.attributes.input_method != InputMethod::TrustedGui {
                return Err(option("\"EnablePINCaching\" requires \"trusted-gui\""));
            }
            Some(p)
        } else {
            if matches!(export_protection, Protection::Pin | Protection::Puk)
                || matches!(delete_protection, Protection::Pin | Protection::Puk)
            {
                return Err(option("Protection object lacks a PIN or PUK object"));
            }
            if a.enable_pin_caching {
                return Err(option("\"EnablePINCaching\" without PIN"));
            }
            if !a.pin_value.is_empty() {
                return Err(option("\"PINValue\" given without PIN policy"));
            }
            None
        };
        if biometric != BiometricProtection::None {
            if !self.config.biometric_support {
                return Err(option("Biometric protection is not supported by this SKS"));
            }
            let has_pin = policy.is_some();
            let ok = if biometric == BiometricProtection::Exclusive {
                !has_pin
            } else {
                has_pin
            };
            if !ok {
                return Err(option("Biometric protection does not match PIN protection"));
            }
        }
        let has_puk = policy.as_ref().is_some_and(|p| p.puk != 0);
        if !has_puk
            && (export_protection == Protection::Puk || delete_protection == Protection::Puk)
        {
            return Err(option("Protection object lacks a PUK object"));
        }
        check_endorsed(&a.endorsed_algorithms.0)?;

        let issuer_set = policy
            .as_ref()
            .is_some_and(|p| !p.policy.attributes.user_defined);
        let pin_reference = policy.as_ref().map(|p| PinReference {
            id: &p.policy.id,
            user_defined: p.policy.attributes.user_defined,
        });
        let mac_input = layout::create_key_entry(&a, pin_reference)?;
        self.verify_mac(ph, &mac_input, &a.mac)?;

        let pin_value = if issuer_set {
            self.decrypt(ph, a.pin_value.expose())?
        } else {
            a.pin_value
        };
        if let Some(p) = &policy {
            pin::check_pin(&p.policy.attributes, pin_value.expose())
                .map_err(|e| option(e.to_string()))?;
            // Keys naming the policy were created after it (`Table::after`).
            let others: Vec<(AppUsage, &[u8])> = self
                .state
                .keys
                .after(p.handle)
                .filter(|k| k.pin_policy == p.handle)
                .map(|k| (k.protection.app_usage, k.pin_value.expose()))
                .collect();
            pin::check_grouping(
                p.policy.attributes.grouping,
                app_usage,
                pin_value.expose(),
                others,
            )
            .map_err(|e| option(e.to_string()))?;
        }
        self.check_new_id(ph, &a.id)?;

        // ServerSeed: the OS RNG alone is used, which cannot reduce entropy (crate docs).
        let private =
            PrivateKey::generate(spec).map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let public_key = private
            .public_key()
            .to_spki()
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let pkcs8 = private
            .to_pkcs8()
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let attestation = self.attest(ph, &layout::key_attestation(&a.id, &public_key)?)?;

        let handle = self.add_object(|handle| KeyEntry {
            handle,
            session: ph,
            id: a.id,
            key_algorithm: a.key_algorithm,
            pin_policy: a.pin_policy_handle,
            device_pin: false,
            pin_value,
            pin_error_count: 0,
            protection: KeyProtection {
                enable_pin_caching: a.enable_pin_caching,
                biometric,
                export_protection,
                delete_protection,
                app_usage,
            },
            friendly_name: a.friendly_name,
            public_key: public_key.clone(),
            private_key: pkcs8,
            symmetric_key: None,
            certificate_path: Vec::new(),
            endorsed: a.endorsed_algorithms.0,
            extensions: Vec::new(),
            key_backup: 0,
        })?;
        Ok(resp::CreateKeyEntry {
            key_handle: handle,
            public_key,
            attestation: attestation.to_vec(),
        })
    }
}

/// A PIN policy of session `ph` (policies of other sessions are not referable).
fn session_pin_policy(core: &Core, handle: u32, ph: u32) -> Option<PinPolicyEntry> {
    core.state
        .pins
        .get(&handle)
        .filter(|p| p.session == ph)
        .cloned()
}
