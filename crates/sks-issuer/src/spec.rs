//! Issuer-side parameters of createKeyEntry (a PIN policy is `sks_core::pin::PinPolicy`).

use sks_core::consts::*;
use sks_core::model::KeyProtection;

/// Parameters of a key entry (createKeyEntry).
#[derive(Debug, Clone)]
pub struct KeyEntrySpec {
    /// ID.
    pub id: String,
    /// KeyAlgorithm URI.
    pub key_algorithm: String,
    /// KeyParameters.
    pub key_parameters: Vec<u8>,
    /// PIN policy: (handle, ID, user_defined).
    pub pin_policy: Option<(u32, String, bool)>,
    /// Clear PIN value (encrypted here when the policy is issuer-set).
    pub pin_value: Vec<u8>,
    /// DevicePINProtection.
    pub device_pin: bool,
    /// Caching, biometric, export and delete protection, AppUsage.
    pub protection: KeyProtection,
    /// FriendlyName.
    pub friendly_name: String,
    /// ServerSeed.
    pub server_seed: Vec<u8>,
    /// Endorsed algorithms (sent in the given order).
    pub endorsed: Vec<String>,
}

impl KeyEntrySpec {
    /// An unprotected P-256 key.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            key_algorithm: ALG_KEY_EC_P256.to_owned(),
            key_parameters: Vec::new(),
            pin_policy: None,
            pin_value: Vec::new(),
            device_pin: false,
            protection: KeyProtection::default(),
            friendly_name: String::new(),
            server_seed: Vec::new(),
            endorsed: Vec::new(),
        }
    }
}
