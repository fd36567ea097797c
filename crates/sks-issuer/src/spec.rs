//! Issuer-side parameter sets for createPINPolicy and createKeyEntry.

use sks_core::consts::*;

/// Parameters of a PIN policy (createPINPolicy).
#[derive(Debug, Clone)]
pub struct PinPolicySpec {
    /// ID.
    pub id: String,
    /// Governing PUK: (handle, ID).
    pub puk: Option<(u32, String)>,
    /// UserDefined.
    pub user_defined: bool,
    /// UserModifiable.
    pub user_modifiable: bool,
    /// Format.
    pub format: u8,
    /// RetryLimit.
    pub retry_limit: u16,
    /// Grouping.
    pub grouping: u8,
    /// PatternRestrictions.
    pub patterns: u8,
    /// MinLength.
    pub min_length: u16,
    /// MaxLength.
    pub max_length: u16,
    /// InputMethod.
    pub input_method: u8,
}

impl PinPolicySpec {
    /// A numeric, user-defined, modifiable policy: 4-8 digits, 3 retries, shared grouping.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            puk: None,
            user_defined: true,
            user_modifiable: true,
            format: format::NUMERIC,
            retry_limit: 3,
            grouping: grouping::SHARED,
            patterns: 0,
            min_length: 4,
            max_length: 8,
            input_method: input_method::ANY,
        }
    }
}

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
    pub biometric: u8,
    /// ExportProtection.
    pub export_protection: u8,
    /// DeleteProtection.
    pub delete_protection: u8,
    /// AppUsage.
    pub app_usage: u8,
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
            biometric: 0,
            export_protection: protection::NONE,
            delete_protection: protection::NONE,
            app_usage: app_usage::UNIVERSAL,
            friendly_name: String::new(),
            server_seed: Vec::new(),
            endorsed: Vec::new(),
        }
    }
}
