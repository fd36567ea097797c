//! Session-level methods: getDeviceInfo \[1\], createProvisioningSession \[2\],
//! enumerateProvisioningSessions \[4\], abortProvisioningSession \[5\],
//! signProvisioningSessionData \[6\], getKeyHandle \[10\], enumerateKeys \[70\], updateFirmware \[90\].

use super::{check_id_syntax, Core};
use crate::api::{req, resp};
use crate::codec::{List16, List8};
use crate::consts::*;
use crate::crypto::keys::PublicKey;
use crate::crypto::{random_bytes, SessionKey};
use crate::error::{err, ErrorCode, SksResult};
use crate::layout;
use crate::model::{OpenState, Session, SessionState};

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Core {
    /// getDeviceInfo \[1\].
    pub(crate) fn get_device_info(
        &mut self,
        _a: req::GetDeviceInfo,
    ) -> SksResult<resp::GetDeviceInfo> {
        Ok(resp::GetDeviceInfo {
            api_level: API_LEVEL,
            device_type: DEVICE_TYPE_SOFTWARE_EMBEDDED,
            update_url: String::new(),
            vendor_name: self.config.vendor_name.clone(),
            vendor_description: self.config.vendor_description.clone(),
            certificate_path: List8(self.device.certificate_path()),
            supported_algorithms: List16(ALGORITHMS.iter().map(|(u, _)| (*u).to_owned()).collect()),
            crypto_data_size: MAX_LENGTH_CRYPTO_DATA as u32,
            extension_data_size: MAX_LENGTH_EXTENSION_DATA as u32,
            device_pin_support: false,
            biometric_support: self.config.biometric_support,
        })
    }

    /// createProvisioningSession \[2\] with `sks.s1` (byte layouts §2, §3).
    pub(crate) fn create_provisioning_session(
        &mut self,
        a: req::CreateProvisioningSession,
    ) -> SksResult<resp::CreateProvisioningSession> {
        if a.algorithm != ALG_SESSION_S1 {
            return Err(err(ErrorCode::Algorithm, "Unsupported session algorithm"));
        }
        if a.issuer_uri.is_empty() || a.issuer_uri.len() > MAX_LENGTH_URI {
            return Err(err(ErrorCode::Option, "\"IssuerURI\" length error"));
        }
        let server_key = match PublicKey::from_spki(&a.server_ephemeral_key) {
            Ok(PublicKey::P256(k)) => k,
            _ => {
                return Err(err(
                    ErrorCode::Option,
                    "\"ServerEphemeralKey\" must be a P-256 key",
                ))
            }
        };
        if !a.key_management_key.is_empty() {
            match PublicKey::from_spki(&a.key_management_key) {
                Ok(PublicKey::P256(_)) => {}
                Ok(k @ PublicKey::Rsa(_)) if matches!(k.rsa_bits(), Some(1024 | 2048)) => {}
                _ => return Err(err(ErrorCode::Option, "Unsupported \"KeyManagementKey\"")),
            }
        }
        check_id_syntax(&a.server_session_id)?;
        if self.state.sessions.open_count() >= self.config.max_open_sessions {
            return Err(err(
                ErrorCode::Storage,
                format!(
                    "Too many open provisioning sessions (limit {}); close or abort one first",
                    self.config.max_open_sessions
                ),
            ));
        }

        let client_session_id = loop {
            let mut id = String::from("C");
            for b in random_bytes(31)? {
                id.push(char::from(ID_ALPHABET[usize::from(b & 63)]));
            }
            if !self.state.sessions.has_client_session_id(&id) {
                break id;
            }
        };
        let ephemeral = p256::SecretKey::random(&mut rand_core::OsRng);
        let client_ephemeral_key = PublicKey::P256(ephemeral.public_key())
            .to_spki()
            .map_err(|_| err(ErrorCode::Internal, "Key encoding failed"))?;
        let z = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), server_key.as_affine());
        let device_id = self.device_id(a.privacy_enabled);
        let session_key = SessionKey::derive(
            z.raw_secret_bytes(),
            &client_session_id,
            &a.server_session_id,
            &a.issuer_uri,
            &device_id,
        )?;

        let h = session_key.plain_hmac(&layout::session_attestation(&a, &client_ephemeral_key)?)?;
        let attestation = if a.privacy_enabled {
            h.to_vec()
        } else {
            self.device
                .sign(&h)
                .map_err(|_| err(ErrorCode::Internal, "Attestation signing failed"))?
        };

        let handle = self.alloc_handle()?;
        let opened_at = self.now();
        self.state.sessions.insert(Session {
            handle,
            privacy_enabled: a.privacy_enabled,
            client_session_id: client_session_id.clone(),
            server_session_id: a.server_session_id,
            issuer_uri: a.issuer_uri,
            key_management_key: a.key_management_key,
            client_time: a.client_time,
            session_life_time: a.session_life_time,
            state: SessionState::Open(OpenState {
                session_key,
                mac_counter: 0,
                key_ops_left: a.session_key_limit,
                opened_at,
                post_ops: Vec::new(),
            }),
        });
        Ok(resp::CreateProvisioningSession {
            client_session_id,
            client_ephemeral_key,
            attestation,
            provisioning_handle: handle,
        })
    }

    /// enumerateProvisioningSessions \[4\] (byte layouts §8.8).
    pub(crate) fn enumerate_provisioning_sessions(
        &mut self,
        a: req::EnumerateProvisioningSessions,
    ) -> SksResult<resp::EnumerateProvisioningSessions> {
        // An unknown handle (never issued, or its session is gone) ends the walk (§8.8).
        let next = walk_after(&self.state.sessions, a.provisioning_handle, |s| {
            s.is_open() == a.provisioning_state
        });
        let Some(s) = next.filter(|_| a.provisioning_handle != u32::MAX) else {
            return Ok(resp::EnumerateProvisioningSessions::default());
        };
        Ok(resp::EnumerateProvisioningSessions {
            provisioning_handle: s.handle,
            algorithm: ALG_SESSION_S1.to_owned(),
            privacy_enabled: s.privacy_enabled,
            key_management_key: s.key_management_key.clone(),
            client_time: s.client_time,
            session_life_time: s.session_life_time,
            server_session_id: s.server_session_id.clone(),
            client_session_id: s.client_session_id.clone(),
            issuer_uri: s.issuer_uri.clone(),
        })
    }

    /// abortProvisioningSession \[5\].
    pub(crate) fn abort_provisioning_session(
        &mut self,
        a: req::AbortProvisioningSession,
    ) -> SksResult<resp::AbortProvisioningSession> {
        self.open_session(a.provisioning_handle)?;
        self.abort_session(a.provisioning_handle);
        Ok(resp::AbortProvisioningSession {})
    }

    /// signProvisioningSessionData \[6\] (byte layouts §6.3).
    pub(crate) fn sign_provisioning_session_data(
        &mut self,
        a: req::SignProvisioningSessionData,
    ) -> SksResult<resp::SignProvisioningSessionData> {
        self.in_open_session(a.provisioning_handle, |c, ph| {
            c.key_op(ph)?;
            let s = c.open_state_mut(ph)?;
            Ok(resp::SignProvisioningSessionData {
                signature: s.session_key.external_signature(&a.data)?.to_vec(),
            })
        })
    }

    /// getKeyHandle \[10\]: an unknown ID aborts the session.
    pub(crate) fn get_key_handle(&mut self, a: req::GetKeyHandle) -> SksResult<resp::GetKeyHandle> {
        let ph = a.provisioning_handle;
        // An open session's keys are the ones created in it, after it (`Table::after`); keys
        // of older sessions join it only when it closes.
        self.in_open_session(ph, |c, _| {
            c.state
                .keys
                .after(ph)
                .find(|k| k.session == ph && k.id == a.id)
                .map(|k| resp::GetKeyHandle {
                    key_handle: k.handle,
                })
                .ok_or_else(|| err(ErrorCode::Option, format!("Key {} missing", a.id)))
        })
    }

    /// enumerateKeys \[70\]: keys of closed sessions, in handle order; an unknown handle ends
    /// the walk (byte layouts §8.8).
    pub(crate) fn enumerate_keys(
        &mut self,
        a: req::EnumerateKeys,
    ) -> SksResult<resp::EnumerateKeys> {
        // An unknown handle (never issued, or its key is deleted) ends the walk (§8.8).
        let sessions = &self.state.sessions;
        let next = walk_after(&self.state.keys, a.key_handle, |k| {
            sessions
                .get(&k.session)
                .map(|s| !s.is_open())
                .unwrap_or(false)
        });
        Ok(next
            .map(|k| resp::EnumerateKeys {
                key_handle: k.handle,
                provisioning_handle: k.session,
            })
            .unwrap_or_default())
    }

    /// updateFirmware \[90\]: UpdateURL is empty, so the method is not available.
    pub(crate) fn update_firmware(
        &mut self,
        _a: req::UpdateFirmware,
    ) -> SksResult<resp::UpdateFirmware> {
        Err(err(
            ErrorCode::NotAvailable,
            "Firmware update is not available (UpdateURL is empty)",
        ))
    }
}

/// One step of a §8.8 walk over `map`: the first entry after `handle` that
/// `keep` accepts. A `handle` that is neither 0 nor in `map` ends the walk.
fn walk_after<V>(
    map: &std::collections::BTreeMap<u32, V>,
    handle: u32,
    keep: impl Fn(&V) -> bool,
) -> Option<&V> {
    if handle != 0 && !map.contains_key(&handle) {
        return None;
    }
    map.range(handle.saturating_add(1)..)
        .map(|(_, v)| v)
        .find(|v| keep(v))
}
