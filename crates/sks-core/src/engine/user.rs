//! User API management methods: enumerate/attributes/protection info/extensions
//! (\[71\]–\[74\]) and deleteKey, exportKey, unlockKey, changePIN, setPIN (\[80\]–\[84\]).

use super::provision::{encode_property_bag, parse_property_bag};
use super::Core;
use crate::api::{req, resp};
use crate::codec::{Blob, List16, List8};
use crate::consts::{
    key_backup, protection_status as ps, AppUsage, SubType, MAX_LENGTH_EXTENSION_DATA,
};
use crate::error::{err, ErrorCode, SksResult};
use crate::model::PinPolicyEntry;
use crate::pin;
use crate::secret::Secret;

impl Core {
    /// getKeyAttributes \[71\].
    pub(crate) fn get_key_attributes(
        &mut self,
        a: req::GetKeyAttributes,
    ) -> SksResult<resp::GetKeyAttributes> {
        let k = self.closed_key(a.key_handle)?;
        Ok(resp::GetKeyAttributes {
            symmetric_key_length: match &k.symmetric_key {
                Some(s) => u16::try_from(s.len())
                    .map_err(|_| err(ErrorCode::Internal, "Stored symmetric key too long"))?,
                None => 0,
            },
            certificate_path: List8(k.certificate_path.clone()),
            app_usage: k.protection.app_usage.into(),
            friendly_name: k.friendly_name.clone(),
            endorsed_algorithms: List8(k.endorsed.clone()),
            extension_types: List16(k.extensions.iter().map(|e| e.type_uri.clone()).collect()),
        })
    }

    /// getKeyProtectionInfo \[72\].
    pub(crate) fn get_key_protection_info(
        &mut self,
        a: req::GetKeyProtectionInfo,
    ) -> SksResult<resp::GetKeyProtectionInfo> {
        let k = self.closed_key(a.key_handle)?;
        let mut out = resp::GetKeyProtectionInfo {
            enable_pin_caching: k.protection.enable_pin_caching,
            biometric_protection: k.protection.biometric.into(),
            export_protection: k.protection.export_protection.into(),
            delete_protection: k.protection.delete_protection.into(),
            key_backup: k.key_backup,
            ..Default::default()
        };
        if k.device_pin {
            out.protection_status = ps::DEVICE_PIN;
        } else if let Some(p) = self.state.pins.get(&k.pin_policy) {
            out.protection_status = ps::PIN_PROTECTED;
            let q = p.policy.attributes;
            if k.pin_error_count >= q.retry_limit {
                out.protection_status |= ps::PIN_BLOCKED;
            }
            out.pin_policy = q.into();
            out.pin_error_count = k.pin_error_count;
            if let Some(puk) = self.state.puks.get(&p.puk) {
                out.protection_status |= ps::PUK_PROTECTED;
                if puk.retry_limit > 0 && puk.error_count >= puk.retry_limit {
                    out.protection_status |= ps::PUK_BLOCKED;
                }
                out.puk_format = puk.format.into();
                out.puk_retry_limit = puk.retry_limit;
                out.puk_error_count = puk.error_count;
            }
        }
        Ok(out)
    }

    /// getExtension \[73\].
    pub(crate) fn get_extension(&mut self, a: req::GetExtension) -> SksResult<resp::GetExtension> {
        let k = self.closed_key(a.key_handle)?;
        let e = k
            .extensions
            .iter()
            .find(|e| e.type_uri == a.type_uri)
            .ok_or_else(|| {
                err(
                    ErrorCode::Option,
                    format!("No such extension: {}", a.type_uri),
                )
            })?;
        Ok(resp::GetExtension {
            sub_type: e.sub_type.into(),
            qualifier: e.qualifier.clone(),
            extension_data: Blob(e.data.clone()),
        })
    }

    /// setProperty \[74\].
    pub(crate) fn set_property(&mut self, a: req::SetProperty) -> SksResult<resp::SetProperty> {
        self.closed_key(a.key_handle)?;
        let k = self.key_mut(a.key_handle)?;
        let e = k
            .extensions
            .iter_mut()
            .find(|e| e.type_uri == a.type_uri && e.sub_type == SubType::PropertyBag)
            .ok_or_else(|| err(ErrorCode::Option, "No such PropertyBag"))?;
        let mut props = parse_property_bag(&e.data)
            .ok_or_else(|| err(ErrorCode::Internal, "Corrupt PropertyBag"))?;
        let prop = props
            .iter_mut()
            .find(|(n, _, _)| n.as_slice() == a.name.as_bytes())
            .ok_or_else(|| err(ErrorCode::Option, format!("No such property: {}", a.name)))?;
        if !prop.1 {
            return Err(err(
                ErrorCode::NotAllowed,
                format!("Property \"{}\" is not writable", a.name),
            ));
        }
        prop.2 = a.value.into_bytes();
        let data = encode_property_bag(&props)?;
        if data.len() > MAX_LENGTH_EXTENSION_DATA || prop_too_long(&props) {
            return Err(err(ErrorCode::Option, "Property value too long"));
        }
        e.data = data;
        Ok(resp::SetProperty {})
    }

    /// deleteKey \[80\].
    pub(crate) fn delete_key(&mut self, a: req::DeleteKey) -> SksResult<resp::DeleteKey> {
        let protection = self.closed_key(a.key_handle)?.protection.delete_protection;
        self.verify_protection(a.key_handle, protection, &a.authorization)?;
        self.remove_key(a.key_handle);
        Ok(resp::DeleteKey {})
    }

    /// exportKey \[81\]: PKCS#8 for private keys, raw bytes for symmetric keys; sets KeyBackup LOCAL.
    pub(crate) fn export_key(&mut self, a: req::ExportKey) -> SksResult<resp::ExportKey> {
        let protection = self.closed_key(a.key_handle)?.protection.export_protection;
        self.verify_protection(a.key_handle, protection, &a.authorization)?;
        let k = self.key_mut(a.key_handle)?;
        k.key_backup |= key_backup::LOCAL;
        let key = match &k.symmetric_key {
            Some(s) => s.duplicate(),
            None => k.private_key.duplicate(),
        };
        Ok(resp::ExportKey { key })
    }

    /// unlockKey \[82\].
    pub(crate) fn unlock_key(&mut self, a: req::UnlockKey) -> SksResult<resp::UnlockKey> {
        self.closed_key(a.key_handle)?;
        self.verify_puk(a.key_handle, &a.authorization)?;
        for h in self.pin_sync_set(a.key_handle) {
            if let Some(k) = self.state.keys.get_mut(&h) {
                k.pin_error_count = 0;
            }
        }
        Ok(resp::UnlockKey {})
    }

    fn local_policy(&self, kh: u32) -> SksResult<PinPolicyEntry> {
        let k = self.closed_key(kh)?;
        self.state.pins.get(&k.pin_policy).cloned().ok_or_else(|| {
            err(
                ErrorCode::NotAllowed,
                "Key is not protected by a local PIN policy",
            )
        })
    }

    fn store_new_pin(&mut self, kh: u32, new_pin: &Secret, reset: bool) -> SksResult<()> {
        let policy = self.local_policy(kh)?;
        if !policy.policy.attributes.user_modifiable {
            return Err(err(ErrorCode::NotAllowed, "PIN is not user modifiable"));
        }
        pin::check_pin(&policy.policy.attributes, new_pin.expose())
            .map_err(|e| err(ErrorCode::Option, e.to_string()))?;
        let set = self.pin_sync_set(kh);
        let usage = self.closed_key(kh)?.protection.app_usage;
        // changePIN/setPIN rule: only keys already holding the new PIN take part (§8.4).
        let others: Vec<(AppUsage, &[u8])> = self
            .state
            .keys
            .values()
            .filter(|k| k.pin_policy == policy.handle && !set.contains(&k.handle))
            .filter(|k| k.pin_value.ct_eq(new_pin.expose()))
            .map(|k| (k.protection.app_usage, k.pin_value.expose()))
            .collect();
        pin::check_grouping(
            policy.policy.attributes.grouping,
            usage,
            new_pin.expose(),
            others,
        )
        .map_err(|e| err(ErrorCode::Option, e.to_string()))?;
        for h in set {
            if let Some(k) = self.state.keys.get_mut(&h) {
                k.pin_value = new_pin.duplicate();
                if reset {
                    k.pin_error_count = 0;
                }
            }
        }
        Ok(())
    }

    /// changePIN \[83\].
    pub(crate) fn change_pin(&mut self, a: req::ChangePin) -> SksResult<resp::ChangePin> {
        self.local_policy(a.key_handle)?;
        self.verify_pin(a.key_handle, &a.authorization)?;
        self.store_new_pin(a.key_handle, &a.new_pin, false)?;
        Ok(resp::ChangePin {})
    }

    /// setPIN \[84\].
    pub(crate) fn set_pin(&mut self, a: req::SetPin) -> SksResult<resp::SetPin> {
        self.local_policy(a.key_handle)?;
        self.verify_puk(a.key_handle, &a.authorization)?;
        self.store_new_pin(a.key_handle, &a.new_pin, true)?;
        Ok(resp::SetPin {})
    }
}

fn prop_too_long(props: &[super::provision::Property]) -> bool {
    props
        .iter()
        .any(|(_, _, v)| v.len() > usize::from(u16::MAX))
}
