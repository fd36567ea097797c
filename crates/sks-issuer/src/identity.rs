//! The long-lived part of an issuer: its CA and KeyManagementKey, shared by its sessions.

use super::{Issuer, IssuerError};
use sks_core::crypto::keys::{KeySpec, PrivateKey, PublicKey};
use sks_core::x509::issue_certificate;
use std::time::Duration;

/// A reusable issuer CA plus KeyManagementKey, shared by the sessions of one issuer.
pub struct IssuerIdentity {
    ca_key: p256::SecretKey,
    ca_name: String,
    ca_certificate: Vec<u8>,
    key_management_key: Option<PrivateKey>,
}

impl std::fmt::Debug for IssuerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerIdentity")
            .field("ca_name", &self.ca_name)
            .finish()
    }
}

impl IssuerIdentity {
    /// A new CA (P-256, self-signed) and optionally a KeyManagementKey of the given kind.
    pub fn generate(ca_name: &str, kmk: Option<KeySpec>) -> Result<Self, IssuerError> {
        let ca_key = p256::SecretKey::random(&mut rand_core::OsRng);
        let spki = PublicKey::P256(ca_key.public_key())
            .to_spki()
            .map_err(|e| IssuerError::Key(e.to_string()))?;
        let ca_certificate = issue_certificate(
            &ca_key,
            None,
            ca_name,
            &spki,
            1,
            Duration::from_secs(10 * 365 * 86400),
        )
        .map_err(|e| IssuerError::Key(e.to_string()))?;
        let key_management_key = match kmk {
            Some(spec) => {
                Some(PrivateKey::generate(spec).map_err(|e| IssuerError::Key(e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            ca_key,
            ca_name: ca_name.to_owned(),
            ca_certificate,
            key_management_key,
        })
    }

    /// The CA certificate (DER).
    pub fn ca_certificate(&self) -> &[u8] {
        &self.ca_certificate
    }

    /// Starts an issuer session with this identity.
    pub fn session(&self, issuer_uri: &str, server_session_id: &str) -> Issuer {
        Issuer {
            issuer_uri: issuer_uri.to_owned(),
            server_session_id: server_session_id.to_owned(),
            privacy_enabled: false,
            client_time: u32::try_from(sks_core::engine::system_clock()).unwrap_or(u32::MAX),
            session_life_time: 3600,
            session_key_limit: 100,
            ephemeral: p256::SecretKey::random(&mut rand_core::OsRng),
            key_management_key: self.key_management_key.as_ref().map(PrivateKey::duplicate),
            ca_key: self.ca_key.clone(),
            ca_name: self.ca_name.clone(),
            ca_certificate: self.ca_certificate.clone(),
            serial: 1000,
            live: None,
        }
    }
}
