//! Issuer-side parameters of createKeyEntry (a PIN policy is `sks_core::pin::PinPolicy`).

use sks_core::consts::*;

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
    /// EnablePINCaching.
    pub enable_pin_caching: bool,
    /// BiometricProtection.
    pub biometric: BiometricProtection,
    /// ExportProtection.
    pub export_protection: Protection,
    /// DeleteProtection.
    pub delete_protection: Protection,
    /// AppUsage.
    pub app_usage: AppUsage,
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
            enable_pin_caching: false,
            biometric: BiometricProtection::None,
            export_protection: Protection::None,
            delete_protection: Protection::None,
            app_usage: AppUsage::Universal,
            friendly_name: String::new(),
            server_seed: Vec::new(),
            endorsed: Vec::new(),
        }
    }
}
