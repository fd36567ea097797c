//! closeProvisioningSession \[3\]: checks and the atomic commit (§2.5, byte layouts §8.7).
//! All checks run before any change; the deferred post-provisioning operations then execute
//! in call order. The caller ([`super::Sks`]) persists the result as one storage batch.

use super::Core;
use crate::api::{req, resp};
use crate::consts::{algorithm_class, AlgClass, PostOperation, ALG_NONE};
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::layout;
use crate::model::{KeyEntry, PostOp};
use std::collections::BTreeSet;

fn option(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Option, msg)
}

/// EndorsedAlgorithms versus key material (byte layouts §8.5, close part).
fn check_endorsed_material(k: &KeyEntry, public: &PublicKey) -> SksResult<()> {
    for uri in k.endorsed.iter().filter(|u| u.as_str() != ALG_NONE) {
        let class = algorithm_class(uri);
        let ok = match (&k.symmetric_key, class) {
            (Some(s), Some(AlgClass::SymmetricEncryption(lens))) => lens.contains(&s.len()),
            (Some(_), Some(AlgClass::Hmac)) => true,
            (Some(_), _) => false,
            (None, Some(AlgClass::Signature { rsa, .. })) => rsa == public.is_rsa(),
            (None, Some(AlgClass::AsymmetricDecryption)) => public.is_rsa(),
            (None, Some(AlgClass::KeyAgreement)) => !public.is_rsa(),
            (None, _) => false,
        };
        if !ok {
            let kind = if k.symmetric_key.is_some() {
                "Symmetric"
            } else if public.is_rsa() {
                "RSA"
            } else {
                "EC"
            };
            return Err(option(format!(
                "{kind} key {} does not match algorithm: {uri}",
                k.id
            )));
        }
    }
    Ok(())
}

impl Core {
    /// closeProvisioningSession \[3\].
    pub(crate) fn close_provisioning_session(
        &mut self,
        a: req::CloseProvisioningSession,
    ) -> SksResult<resp::CloseProvisioningSession> {
        let ph = a.provisioning_handle;
        let attestation = self.in_open_session(ph, |c, _| {
            if a.nonce.is_empty() || a.nonce.len() > 32 {
                return Err(option("\"Nonce\" must be 1-32 bytes"));
            }
            let mac_input = {
                let s = c.session(ph)?;
                layout::close_provisioning_session(
                    &a,
                    &s.client_session_id,
                    &s.server_session_id,
                    &s.issuer_uri,
                )?
            };
            c.verify_mac(ph, &mac_input, &a.mac)?;
            let attestation = c.attest(ph, &layout::close_attestation(&a.nonce)?)?;
            c.check_close(ph)?;
            Ok(attestation)
        })?;
        self.commit(ph);
        Ok(resp::CloseProvisioningSession {
            attestation: attestation.to_vec(),
        })
    }

    fn check_close(&self, ph: u32) -> SksResult<()> {
        // The session is open, so each of its objects was created in it, after its handle; an
        // object referring to another was created after the one it refers to (`Table::after`).
        let st = &self.state;
        for puk in st.puks.after(ph).filter(|p| p.session == ph) {
            if !st.pins.after(puk.handle).any(|p| p.puk == puk.handle) {
                return Err(option(format!("Unreferenced object \"{}\"", puk.id)));
            }
        }
        for pin in st.pins.after(ph).filter(|p| p.session == ph) {
            if !st
                .keys
                .after(pin.handle)
                .any(|k| k.pin_policy == pin.handle)
            {
                return Err(option(format!("Unreferenced object \"{}\"", pin.policy.id)));
            }
        }
        let ops = &st
            .sessions
            .get(&ph)
            .and_then(|s| s.open_state().map(|o| o.post_ops.clone()))
            .ok_or_else(|| {
                err(
                    ErrorCode::NoSession,
                    format!("No open provisioning session {ph}"),
                )
            })?;
        let replaced: BTreeSet<u32> = ops
            .iter()
            .filter(|o| {
                o.method == PostOperation::UpdateKey || o.method == PostOperation::DeleteKey
            })
            .map(|o| o.target)
            .collect();
        for k in st.keys.after(ph).filter(|k| k.session == ph) {
            let ee = k
                .ee_certificate()
                .ok_or_else(|| option(format!("Missing \"setCertificatePath\" for: {}", k.id)))?;
            let spki = crate::x509::certificate_spki(ee)
                .map_err(|_| err(ErrorCode::Crypto, "Malformed certificate"))?;
            let public =
                PublicKey::from_spki(&spki).map_err(|_| option("Unsupported certificate key"))?;
            let private = PrivateKey::from_stored_pkcs8(k.private_key.expose())
                .map_err(|_| err(ErrorCode::Internal, "Stored private key unreadable"))?;
            if private.public_key() != public {
                let msg = match (private.public_key().is_rsa(), public.is_rsa()) {
                    (true, true) => "RSA mismatch",
                    (false, false) => "EC mismatch",
                    _ => "RSA/EC mixup",
                };
                return Err(option(format!(
                    "{msg} between public and private key for: {}",
                    k.id
                )));
            }
            let duplicate = st.certificates.holders(ee).any(|other| {
                other != k.handle
                    && !replaced.contains(&other)
                    && st.keys.get(&other).and_then(KeyEntry::ee_certificate) == Some(ee)
            });
            if duplicate {
                return Err(option(format!("Duplicate certificate in: {}", k.id)));
            }
            check_endorsed_material(k, &public)?;
        }
        for op in ops {
            self.target_key(op.target)?;
        }
        Ok(())
    }

    /// Executes the queued operations and transfers ownership (byte layouts §8.7 steps 7-10).
    /// Contains no failure points.
    fn commit(&mut self, ph: u32) {
        let ops: Vec<PostOp> = match self.state.sessions.open_state_mut(&ph) {
            Some(o) => std::mem::take(&mut o.post_ops),
            None => return,
        };
        let mut old_sessions = BTreeSet::new();
        for op in &ops {
            if let Some(t) = self.state.keys.get(&op.target) {
                if t.session != ph {
                    old_sessions.insert(t.session);
                }
            }
        }
        for op in &ops {
            match op.method {
                PostOperation::DeleteKey => self.remove_key(op.target),
                PostOperation::UnlockKey => {
                    for h in self.pin_sync_set(op.target) {
                        if let Some(k) = self.state.keys.get_mut(&h) {
                            k.pin_error_count = 0;
                        }
                    }
                    let puk = self
                        .state
                        .keys
                        .get(&op.target)
                        .and_then(|k| self.state.pins.get(&k.pin_policy))
                        .map(|p| p.puk);
                    if let Some(p) = puk.and_then(|h| self.state.puks.get_mut(&h)) {
                        p.error_count = 0;
                    }
                }
                PostOperation::UpdateKey | PostOperation::CloneKeyProtection => {
                    self.inherit_protection(op.new_key, op.target);
                    if op.method == PostOperation::UpdateKey {
                        if let Some(mut k) = self.state.keys.remove(&op.new_key) {
                            self.state.keys.remove(&op.target);
                            k.handle = op.target;
                            self.state.keys.insert(op.target, k);
                        }
                    }
                }
            }
        }
        for old in old_sessions {
            self.state.keys.transfer(old, ph);
            self.state.pins.transfer(old, ph);
            self.state.puks.transfer(old, ph);
            self.state.sessions.remove(&old);
        }
        self.state.sessions.close(&ph);
        if self.state.keys.owned_by(ph).next().is_none() {
            self.state.sessions.remove(&ph);
        }
    }

    fn inherit_protection(&mut self, new_key: u32, target: u32) {
        let Some(t) = self.state.keys.get(&target) else {
            return;
        };
        let (policy, value, count, dev) = (
            t.pin_policy,
            t.pin_value.duplicate(),
            t.pin_error_count,
            t.device_pin,
        );
        if let Some(k) = self.state.keys.get_mut(&new_key) {
            k.pin_policy = policy;
            k.pin_value = value;
            k.pin_error_count = count;
            k.device_pin = dev;
        }
    }

    /// Deletes a key, then orphaned PIN/PUK policies (§3.2, byte layouts §10 item 12) and a
    /// closed session left without keys (§3.3).
    pub(crate) fn remove_key(&mut self, kh: u32) {
        let Some(k) = self.state.keys.remove(&kh) else {
            return;
        };
        // A reference names an older object, so the referrers are after it (`Table::after`).
        if k.pin_policy != 0
            && !self
                .state
                .keys
                .after(k.pin_policy)
                .any(|o| o.pin_policy == k.pin_policy)
        {
            if let Some(p) = self.state.pins.remove(&k.pin_policy) {
                if p.puk != 0 && !self.state.pins.after(p.puk).any(|o| o.puk == p.puk) {
                    self.state.puks.remove(&p.puk);
                }
            }
        }
        let closed = self
            .state
            .sessions
            .get(&k.session)
            .map(|s| !s.is_open())
            .unwrap_or(false);
        if closed && self.state.keys.owned_by(k.session).next().is_none() {
            self.state.sessions.remove(&k.session);
        }
    }
}
