//! Post-provisioning operations (§7.4 \[50\]–\[53\], byte layouts §6.11, §6.12, §7, §8.6):
//! validated and authorized by a Target Key Reference when called, queued, and executed
//! only by closeProvisioningSession.

use super::Core;
use crate::api::{req, resp};
use crate::consts::{Grouping, PostOperation};
use crate::crypto::keys::{KeyError, PublicKey};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::layout::{self, MacInput};
use crate::model::PostOp;

fn option(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Option, msg)
}

/// The parts every post-provisioning call shares.
struct PostCall<'a> {
    /// Which operation.
    method: PostOperation,
    /// TargetKeyHandle.
    target: u32,
    /// Authorization (the Target Key Reference signature, byte layouts §7).
    authorization: &'a [u8],
    /// MAC.
    mac: &'a [u8],
}

/// The [`PostCall`] of a post-provisioning request (all four name the fields alike).
macro_rules! post_call {
    ($method:expr, $a:ident) => {
        PostCall {
            method: $method,
            target: $a.target_key_handle,
            authorization: &$a.authorization,
            mac: &$a.mac,
        }
    };
}

/// The four post-operation methods: each names its [`PostOperation`], the key whose session
/// queues it (the open session's handle, or the new key's) and its MAC input.
macro_rules! post_methods {
    ($($(#[$doc:meta])* $fname:ident($a:ident: $name:ident, $op:ident)
        => $how:ident($key:expr, $mac:expr);)*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $fname(&mut self, $a: req::$name) -> SksResult<resp::$name> {
                let call = post_call!(PostOperation::$op, $a);
                self.$how($key, call, $mac)?;
                Ok(resp::$name {})
            }
        )*
    };
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
        call: &PostCall<'_>,
        mac_input: &MacInput,
    ) -> SksResult<()> {
        let target = call.target;
        let owner = self.target_key(target)?;
        let (owner_privacy, kmk) = {
            let o = self.session(owner)?;
            (o.privacy_enabled, o.key_management_key.clone())
        };
        let privacy = self.session(ph)?.privacy_enabled;
        if privacy != owner_privacy {
            return Err(option(
                "Inconsistent use of the \"PrivacyEnabled\" attribute",
            ));
        }
        self.verify_mac(ph, mac_input, call.mac)?;
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
            .target_key_reference(&device_id, &target_cert)?;
        let kmk = PublicKey::from_spki(&kmk)
            .map_err(|_| err(ErrorCode::Crypto, "Bad KeyManagementKey"))?;
        match kmk.verify_sha256(&hash, call.authorization) {
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
                let del = PostOperation::DeleteKey;
                if q.method == del || op.method == del {
                    return Err(option("Delete wasn't exclusive"));
                }
                if q.method == op.method && op.method == PostOperation::UnlockKey {
                    return Err(option("Multiple unlocks"));
                }
                if q.method == op.method && op.method == PostOperation::UpdateKey {
                    return Err(option("Multiple updates"));
                }
            }
        }
        s.post_ops.push(op);
        Ok(())
    }

    fn delete_or_unlock(
        &mut self,
        ph: u32,
        call: PostCall<'_>,
        mac_input: MacInput,
    ) -> SksResult<()> {
        let (method, target) = (call.method, call.target);
        self.in_open_session(ph, |c, _| {
            c.target_key(target)?;
            if method == PostOperation::UnlockKey
                && c.state
                    .keys
                    .get(&target)
                    .map(|k| k.pin_policy == 0)
                    .unwrap_or(true)
            {
                return Err(option(format!("Key {target} is not PIN protected")));
            }
            c.authorize_post_op(ph, &call, &mac_input)?;
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
        new_key: u32,
        call: PostCall<'_>,
        mac_input: impl FnOnce(&[u8]) -> layout::MacResult,
    ) -> SksResult<()> {
        let (method, target) = (call.method, call.target);
        let ph = self.open_key(new_key)?;
        self.guarded(ph, |c| {
            c.target_key(target)?;
            let (new_usage, new_pin, new_dev, new_ee) = {
                let k = c.key_mut(new_key)?;
                (
                    k.protection.app_usage,
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
                (t.protection.app_usage, t.pin_policy)
            };
            if method == PostOperation::UpdateKey && new_usage != t_usage {
                return Err(option("Updated keys must have the same \"AppUsage\""));
            }
            if method == PostOperation::CloneKeyProtection && t_pin != 0 {
                let g = c
                    .state
                    .pins
                    .get(&t_pin)
                    .map(|p| p.policy.attributes.grouping);
                if g != Some(Grouping::Shared) {
                    return Err(option(
                        "Cloned key protection must have PIN grouping \"shared\"",
                    ));
                }
            }
            let ee = new_ee.ok_or_else(|| option("Missing \"setCertificatePath\""))?;
            c.authorize_post_op(ph, &call, &mac_input(&ee)?)?;
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

    post_methods! {
        /// postDeleteKey \[50\].
        post_delete_key(a: PostDeleteKey, DeleteKey)
            => delete_or_unlock(a.provisioning_handle, layout::post_delete_key(&a)?);
        /// postUnlockKey \[51\].
        post_unlock_key(a: PostUnlockKey, UnlockKey)
            => delete_or_unlock(a.provisioning_handle, layout::post_unlock_key(&a)?);
        /// postUpdateKey \[52\].
        post_update_key(a: PostUpdateKey, UpdateKey)
            => update_or_clone(a.key_handle, |ee| layout::post_update_key(&a, ee));
        /// postCloneKeyProtection \[53\].
        post_clone_key_protection(a: PostCloneKeyProtection, CloneKeyProtection)
            => update_or_clone(a.key_handle, |ee| layout::post_clone_key_protection(&a, ee));
    }
}
