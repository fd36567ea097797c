//! Post-provisioning operations (§7.4 \[50\]–\[53\], byte layouts §6.11, §6.12, §7, §8.6):
//! validated and authorized by a Target Key Reference when called, queued, and executed
//! only by closeProvisioningSession.

use super::Core;
use crate::api::{method_id, req, resp};
use crate::codec::Writer;
use crate::consts::grouping;
use crate::crypto::keys::{KeyError, PublicKey};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::model::PostOp;

fn option(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Option, msg)
}

fn method_name(method: u8) -> &'static str {
    match method {
        method_id::PostDeleteKey => "postDeleteKey",
        method_id::PostUnlockKey => "postUnlockKey",
        method_id::PostUpdateKey => "postUpdateKey",
        _ => "postCloneKeyProtection",
    }
}

impl Core {
    /// `getTargetKey` (byte layouts §8.6): exists, closed, owner session has a KeyManagementKey.
    pub(crate) fn target_key(&self, target: u32) -> SksResult<u32> {
        let k = self
            .state
            .keys
            .get(&target)
            .ok_or_else(|| err(ErrorCode::NoKey, format!("Target key {target} not found")))?;
        let owner = self
            .state
            .sessions
            .get(&k.session)
            .ok_or_else(|| err(ErrorCode::Internal, "Key without session"))?;
        if owner.is_open() {
            return Err(option(format!(
                "Target key {target} belongs to an open session"
            )));
        }
        if owner.key_management_key.is_empty() {
            return Err(option(format!("Target key {target} is not updatable")));
        }
        Ok(owner.handle)
    }

    /// Privacy check, MAC, and the Target Key Reference signature (byte layouts §7).
    fn authorize_post_op(
        &mut self,
        ph: u32,
        method: u8,
        target: u32,
        mac_data: &[u8],
        authorization: &[u8],
        mac: &[u8],
    ) -> SksResult<()> {
        let owner = self.target_key(target)?;
        let (owner_privacy, kmk) = {
            let o = self.session_mut(owner)?;
            (o.privacy_enabled, o.key_management_key.clone())
        };
        let privacy = self.session_mut(ph)?.privacy_enabled;
        if privacy != owner_privacy {
            return Err(option(
                "Inconsistent use of the \"PrivacyEnabled\" attribute",
            ));
        }
        self.verify_mac(ph, method_name(method), mac_data, mac)?;
        self.key_op(ph)?;
        let target_cert = self
            .state
            .keys
            .get(&target)
            .and_then(|k| k.ee_certificate().map(<[u8]>::to_vec))
            .ok_or_else(|| option("Target key lacks a certificate"))?;
        let device_id = self.device_id(privacy);
        let hash = self
            .open_state_mut(ph)?
            .session_key
            .target_key_reference(&device_id, &target_cert);
        let kmk = PublicKey::from_spki(&kmk)
            .map_err(|_| err(ErrorCode::Crypto, "Bad KeyManagementKey"))?;
        match kmk.verify_sha256(&hash, authorization) {
            Ok(true) => Ok(()),
            Ok(false) => Err(option("\"Authorization\" signature did not verify")),
            Err(KeyError::Signature) | Err(_) => Err(err(
                ErrorCode::Crypto,
                "Malformed \"Authorization\" signature",
            )),
        }
    }

    /// Conflict rules of byte layouts §8.6, then queue.
    fn queue_post_op(&mut self, ph: u32, op: PostOp) -> SksResult<()> {
        let s = self.open_state_mut(ph)?;
        for q in &s.post_ops {
            if op.new_key != 0 && q.new_key == op.new_key {
                return Err(option("New key used for multiple operations"));
            }
            if q.target == op.target {
                let del = method_id::PostDeleteKey;
                if q.method == del || op.method == del {
                    return Err(option("Delete wasn't exclusive"));
                }
                if q.method == op.method && op.method == method_id::PostUnlockKey {
                    return Err(option("Multiple unlocks"));
                }
                if q.method == op.method && op.method == method_id::PostUpdateKey {
                    return Err(option("Multiple updates"));
                }
            }
        }
        s.post_ops.push(op);
        Ok(())
    }

    fn delete_or_unlock(
        &mut self,
        method: u8,
        ph: u32,
        target: u32,
        authorization: &[u8],
        mac: &[u8],
    ) -> SksResult<()> {
        self.open_session(ph)?;
        self.guarded(ph, |c| {
            c.target_key(target)?;
            if method == method_id::PostUnlockKey
                && c.state
                    .keys
                    .get(&target)
                    .map(|k| k.pin_policy == 0)
                    .unwrap_or(true)
            {
                return Err(option(format!("Key {target} is not PIN protected")));
            }
            let mut w = Writer::new();
            w.array(authorization);
            c.authorize_post_op(ph, method, target, w.as_bytes(), authorization, mac)?;
            c.queue_post_op(
                ph,
                PostOp {
                    method,
                    target,
                    new_key: 0,
                },
            )
        })
    }

    fn update_or_clone(
        &mut self,
        method: u8,
        new_key: u32,
        target: u32,
        authorization: &[u8],
        mac: &[u8],
    ) -> SksResult<()> {
        let ph = self.open_key(new_key)?;
        self.guarded(ph, |c| {
            c.target_key(target)?;
            let (new_usage, new_pin, new_dev, new_ee) = {
                let k = c.key_mut(new_key)?;
                (
                    k.app_usage,
                    k.pin_policy,
                    k.device_pin,
                    k.ee_certificate().map(<[u8]>::to_vec),
                )
            };
            if new_pin != 0 || new_dev {
                return Err(option("New key must not be PIN protected"));
            }
            let (t_usage, t_pin) = {
                let t = c.key_mut(target)?;
                (t.app_usage, t.pin_policy)
            };
            if method == method_id::PostUpdateKey && new_usage != t_usage {
                return Err(option("Updated keys must have the same \"AppUsage\""));
            }
            if method == method_id::PostCloneKeyProtection && t_pin != 0 {
                let g = c.state.pins.get(&t_pin).map(|p| p.grouping);
                if g != Some(grouping::SHARED) {
                    return Err(option(
                        "Cloned key protection must have PIN grouping \"shared\"",
                    ));
                }
            }
            let ee = new_ee.ok_or_else(|| option("Missing \"setCertificatePath\""))?;
            let mut w = Writer::new();
            w.array(&ee).array(authorization);
            c.authorize_post_op(ph, method, target, w.as_bytes(), authorization, mac)?;
            c.queue_post_op(
                ph,
                PostOp {
                    method,
                    target,
                    new_key,
                },
            )
        })
    }

    /// postDeleteKey \[50\].
    pub(crate) fn post_delete_key(
        &mut self,
        a: req::PostDeleteKey,
    ) -> SksResult<resp::PostDeleteKey> {
        self.delete_or_unlock(
            method_id::PostDeleteKey,
            a.provisioning_handle,
            a.target_key_handle,
            &a.authorization,
            &a.mac,
        )?;
        Ok(resp::PostDeleteKey {})
    }

    /// postUnlockKey \[51\].
    pub(crate) fn post_unlock_key(
        &mut self,
        a: req::PostUnlockKey,
    ) -> SksResult<resp::PostUnlockKey> {
        self.delete_or_unlock(
            method_id::PostUnlockKey,
            a.provisioning_handle,
            a.target_key_handle,
            &a.authorization,
            &a.mac,
        )?;
        Ok(resp::PostUnlockKey {})
    }

    /// postUpdateKey \[52\].
    pub(crate) fn post_update_key(
        &mut self,
        a: req::PostUpdateKey,
    ) -> SksResult<resp::PostUpdateKey> {
        self.update_or_clone(
            method_id::PostUpdateKey,
            a.key_handle,
            a.target_key_handle,
            &a.authorization,
            &a.mac,
        )?;
        Ok(resp::PostUpdateKey {})
    }

    /// postCloneKeyProtection \[53\].
    pub(crate) fn post_clone_key_protection(
        &mut self,
        a: req::PostCloneKeyProtection,
    ) -> SksResult<resp::PostCloneKeyProtection> {
        self.update_or_clone(
            method_id::PostCloneKeyProtection,
            a.key_handle,
            a.target_key_handle,
            &a.authorization,
            &a.mac,
        )?;
        Ok(resp::PostCloneKeyProtection {})
    }
}
