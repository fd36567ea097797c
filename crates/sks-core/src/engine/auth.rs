//! User-API authorization (byte layouts §8.10): PIN and PUK checks with error counters,
//! lock-out, the PUK "no limit, delay" rule, and PIN synchronisation sets (§5.7).

use super::Core;
use crate::api::{Request, Response};
use crate::consts::{BiometricProtection, Protection};
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::model::KeyEntry;
use crate::pin::same_pin_group;
use crate::secret::Secret;

/// A PUK check that must wait before acting: the PUK policy handle and the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PukDelay {
    puk: u32,
    delay: std::time::Duration,
}

impl PukDelay {
    /// The PUK policy whose check is delayed; checks of one policy must not overlap their
    /// delays, or parallel attempts would multiply the search rate.
    pub fn puk_policy(&self) -> u32 {
        self.puk
    }

    /// How long to wait before acting.
    pub fn delay(&self) -> std::time::Duration {
        self.delay
    }
}

impl Core {
    /// Keys sharing the PIN value and error counter of `kh` (byte layouts §8.4), incl. `kh`.
    pub(crate) fn pin_sync_set(&self, kh: u32) -> Vec<u32> {
        let Some(k) = self.state.keys.get(&kh) else {
            return Vec::new();
        };
        let Some(p) = self.state.pins.get(&k.pin_policy) else {
            return vec![kh];
        };
        // Keys naming the policy were created after it (`Table::after`).
        self.state
            .keys
            .after(p.handle)
            .filter(|o| {
                o.handle == kh
                    || (o.pin_policy == p.handle
                        && same_pin_group(
                            p.policy.attributes.grouping,
                            k.protection.app_usage,
                            o.protection.app_usage,
                        ))
            })
            .map(|o| o.handle)
            .collect()
    }

    fn set_pin_error_count(&mut self, kh: u32, count: u16) {
        for h in self.pin_sync_set(kh) {
            if let Some(k) = self.state.keys.get_mut(&h) {
                k.pin_error_count = count;
            }
        }
    }

    /// Authorization of a cryptographic User API call (signHashedData, asymmetricKeyDecrypt,
    /// keyAgreement, symmetricKeyEncrypt, performHMAC): the key's BiometricProtection (§5.3)
    /// combined with the PIN check. The biometric factor is the sensor input
    /// [`Config::biometric`](super::Config::biometric); it applies to these calls only
    /// ("only intended to be applied to User API methods like signHashedData"), so deleteKey,
    /// exportKey and changePIN use [`Core::verify_pin`] alone.
    ///
    /// | BiometricProtection | Authorized when |
    /// |---|---|
    /// | none | the PIN check passes |
    /// | alternative | the sensor verified the user and no PIN is supplied, or the PIN check passes |
    /// | combined | the sensor verified the user **and** the PIN check passes |
    /// | exclusive | the sensor verified the user (the key has no PIN; a supplied one is redundant) |
    ///
    /// A missing biometric verification is ERROR_AUTHORIZATION and is checked before the PIN,
    /// so it never touches the PIN error counter.
    pub(crate) fn verify_user(&mut self, kh: u32, pin: &Secret) -> SksResult<()> {
        let bio = self.auth_key(kh)?.protection.biometric;
        let sensed = || (self.config.biometric)(kh);
        match bio {
            BiometricProtection::None => {}
            BiometricProtection::Alternative => {
                if pin.is_empty() && sensed() {
                    return Ok(());
                }
            }
            BiometricProtection::Combined | BiometricProtection::Exclusive => {
                if !sensed() {
                    return Err(err(
                        ErrorCode::Authorization,
                        "Biometric verification missing",
                    ));
                }
            }
        }
        self.verify_pin(kh, pin)
    }

    /// The key an authorization is checked for.
    fn auth_key(&self, kh: u32) -> SksResult<&KeyEntry> {
        self.state
            .keys
            .get(&kh)
            .ok_or_else(|| err(ErrorCode::NoKey, "Key not found"))
    }

    /// PIN check. Keys without a local PIN policy accept only an empty authorization.
    pub(crate) fn verify_pin(&mut self, kh: u32, pin: &Secret) -> SksResult<()> {
        let k = self.auth_key(kh)?;
        let Some(policy) = self.state.pins.get(&k.pin_policy) else {
            if pin.is_empty() {
                return Ok(());
            }
            return Err(err(
                ErrorCode::Authorization,
                "Redundant authorization information",
            ));
        };
        let limit = policy.policy.attributes.retry_limit;
        let count = k.pin_error_count;
        if count >= limit {
            return Err(err(
                ErrorCode::Authorization,
                "Key locked, PIN error count exceeded",
            ));
        }
        // Both outcomes write the counter, even a right PIN whose count is already 0: a
        // store that refuses writes then fails every attempt alike (ERROR_STORAGE), instead
        // of answering OK to the right PIN and ERROR_STORAGE to the wrong ones, which would
        // let PINs be tried without limit while the counter cannot be written.
        if k.pin_value.ct_eq(pin.expose()) {
            self.set_pin_error_count(kh, 0);
            Ok(())
        } else {
            self.set_pin_error_count(kh, count + 1);
            Err(err(ErrorCode::Authorization, "Authorization error"))
        }
    }

    /// PUK check of the key's PIN policy's PUK policy.
    pub(crate) fn verify_puk(&mut self, kh: u32, puk: &Secret) -> SksResult<()> {
        let k = self.auth_key(kh)?;
        let puk_handle = self
            .state
            .pins
            .get(&k.pin_policy)
            .map(|p| p.puk)
            .filter(|h| *h != 0)
            .ok_or_else(|| err(ErrorCode::NotAllowed, format!("Key {kh} has no PUK")))?;
        let paced = self.puk_paced.take() == Some(puk_handle);
        let p = self
            .state
            .puks
            .get_mut(&puk_handle)
            .ok_or_else(|| err(ErrorCode::Internal, "PUK policy missing"))?;
        if p.retry_limit > 0 && p.error_count >= p.retry_limit {
            return Err(err(
                ErrorCode::Authorization,
                "PUK locked, error count exceeded",
            ));
        }
        if p.retry_limit == 0 && !paced {
            // "No limit": the caller must have waited the delay before acting (see
            // `Core::puk_delay_for`); an unpaced attempt is refused without being checked.
            return Err(err(
                ErrorCode::Authorization,
                "PUK attempt without the required delay",
            ));
        }
        if p.value.ct_eq(puk.expose()) {
            p.error_count = 0;
            Ok(())
        } else {
            if p.retry_limit > 0 {
                p.error_count += 1;
            }
            Err(err(ErrorCode::Authorization, "Authorization error"))
        }
    }

    /// The PUK policy a request would check, if that policy has RetryLimit 0 ("no limit,
    /// delay", §createPUKPolicy): such a check may only run after [`Config::puk_delay`] has
    /// passed. The caller waits (without holding anything other callers need), then runs the
    /// call with [`Core::execute_after_delay`].
    ///
    /// [`Config::puk_delay`]: super::Config::puk_delay
    pub fn puk_delay_for(&self, request: &Request) -> Option<PukDelay> {
        let puk_protected = |kh: u32, which: fn(&crate::model::KeyEntry) -> Protection| {
            let k = self.state.keys.get(&kh)?;
            (which(k) == Protection::Puk).then_some(kh)
        };
        let kh = match request {
            Request::UnlockKey(a) => a.key_handle,
            Request::SetPin(a) => a.key_handle,
            Request::DeleteKey(a) => {
                puk_protected(a.key_handle, |k| k.protection.delete_protection)?
            }
            Request::ExportKey(a) => {
                puk_protected(a.key_handle, |k| k.protection.export_protection)?
            }
            _ => return None,
        };
        let k = self.state.keys.get(&kh)?;
        let puk = self.state.pins.get(&k.pin_policy).map(|p| p.puk)?;
        let policy = self.state.puks.get(&puk)?;
        (policy.retry_limit == 0).then_some(PukDelay {
            puk,
            delay: self.config.puk_delay,
        })
    }

    /// Executes `request` after its caller waited `waited.delay()` (see [`Core::puk_delay_for`]).
    pub fn execute_after_delay(
        &mut self,
        request: Request,
        waited: PukDelay,
    ) -> Result<Response, SksError> {
        self.puk_paced = Some(waited.puk);
        let r = self.execute(request);
        self.puk_paced = None;
        r
    }

    /// Export/DeleteProtection authorization (§5.1, §5.2).
    pub(crate) fn verify_protection(
        &mut self,
        kh: u32,
        protection: Protection,
        auth: &Secret,
    ) -> SksResult<()> {
        match protection {
            Protection::None if auth.is_empty() => Ok(()),
            Protection::None => Err(err(
                ErrorCode::Authorization,
                "Redundant authorization information",
            )),
            Protection::Pin => self.verify_pin(kh, auth),
            Protection::Puk => self.verify_puk(kh, auth),
            Protection::NotAllowed => Err(err(
                ErrorCode::NotAllowed,
                "Operation not allowed by key protection",
            )),
        }
    }
}
