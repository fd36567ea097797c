//! Constants of SKS 1.00: algorithm URIs (§4), literals (§6, byte layouts §1.2),
//! enumerations (§5, byte layouts §9) and limits (byte layouts §8.2).

/// API level 100 = "1.00" (getDeviceInfo, byte layouts §9.1).
pub const API_LEVEL: u16 = 100;

/// Session creation algorithm `sks.s1` (§4.2, createProvisioningSession).
pub const ALG_SESSION_S1: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.sks.s1";
/// Key entry/attestation algorithm `sks.k1` (§4.2, createKeyEntry).
pub const ALG_KEY_K1: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.sks.k1";
/// The special "no operation" endorsed algorithm (§4.2).
pub const ALG_NONE: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.none";

/// AES-128-CBC, IV generated internally and prepended (§4.1).
pub const ALG_AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
/// AES-192-CBC, IV generated internally and prepended (§4.1).
pub const ALG_AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
/// AES-256-CBC, IV generated internally and prepended (§4.1).
pub const ALG_AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
/// AES-CBC with PKCS#5 padding, IV in Parameters (§4.1).
pub const ALG_AES_CBC_PKCS5: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.aes.cbc.pkcs5";
/// AES-ECB without padding (§4.1).
pub const ALG_AES_ECB_NOPAD: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.aes.ecb.nopad";
/// HMAC-SHA1 (§4.1).
pub const ALG_HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
/// HMAC-SHA256 (§4.1).
pub const ALG_HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
/// HMAC-SHA384 (§4.3, optional).
pub const ALG_HMAC_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384";
/// HMAC-SHA512 (§4.3, optional).
pub const ALG_HMAC_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512";
/// RSA PKCS#1 v1.5 decryption (§4.1).
pub const ALG_RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
/// Raw (unpadded) RSA decryption (§4.1).
pub const ALG_RSA_RAW: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa.raw";
/// SP800-56A ECC CDH (§4.1).
pub const ALG_ECDH_RAW: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.ecdh.raw";
/// RSA PKCS#1 v1.5 with SHA-1 (§4.1).
pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
/// RSA PKCS#1 v1.5 with SHA-256 (§4.1).
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// ECDSA with SHA-256 (§4.1).
pub const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// ECDSA with SHA-384 (§4.3, optional).
pub const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
/// RSA PKCS#1 type-1 padding without DigestInfo (§4.1, signHashedData).
pub const ALG_RSA_NONE: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa.none";
/// ECDSA on caller-hashed data of any length (§4.1).
pub const ALG_ECDSA_NONE: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.ecdsa.none";
/// RSA-1024 key generation, exponent 65537 (§4.1).
pub const ALG_KEY_RSA1024: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa1024";
/// RSA-2048 key generation, exponent 65537 (§4.1).
pub const ALG_KEY_RSA2048: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa2048";
/// RSA-1024 key generation with the exponent in KeyParameters (§4.3).
pub const ALG_KEY_RSA1024_EXP: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa1024.exp";
/// RSA-2048 key generation with the exponent in KeyParameters (§4.3).
pub const ALG_KEY_RSA2048_EXP: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.rsa2048.exp";
/// P-256 key generation (§4.1).
pub const ALG_KEY_EC_P256: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.ec.p256";
/// P-384 key generation (§4.3, optional).
pub const ALG_KEY_EC_P384: &str = "http://xmlns.webpki.org/keygen2/1.0#algorithm.ec.p384";

/// What an algorithm URI can be used for (byte layouts §9.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgClass {
    /// Symmetric encryption with the allowed AES key lengths in bytes.
    SymmetricEncryption(&'static [usize]),
    /// HMAC.
    Hmac,
    /// Asymmetric decryption (RSA only).
    AsymmetricDecryption,
    /// Key agreement (EC only).
    KeyAgreement,
    /// Asymmetric signature; `rsa` tells RSA from EC; `hash_len` is the data length, if fixed.
    Signature {
        /// True for RSA algorithms, false for ECDSA.
        rsa: bool,
        /// Required length of the hashed data, if the algorithm names a hash.
        hash_len: Option<usize>,
    },
    /// Asymmetric key generation (createKeyEntry KeyAlgorithm).
    KeyGeneration,
    /// Special algorithms (sks.s1, sks.k1, none).
    Special,
}

const AES_ALL: &[usize] = &[16, 24, 32];

/// The algorithm table of this SKS, listed by getDeviceInfo (§4, byte layouts §9.12).
pub const ALGORITHMS: &[(&str, AlgClass)] = &[
    (ALG_AES128_CBC, AlgClass::SymmetricEncryption(&[16])),
    (ALG_AES192_CBC, AlgClass::SymmetricEncryption(&[24])),
    (ALG_AES256_CBC, AlgClass::SymmetricEncryption(&[32])),
    (ALG_AES_CBC_PKCS5, AlgClass::SymmetricEncryption(AES_ALL)),
    (ALG_AES_ECB_NOPAD, AlgClass::SymmetricEncryption(AES_ALL)),
    (ALG_HMAC_SHA1, AlgClass::Hmac),
    (ALG_HMAC_SHA256, AlgClass::Hmac),
    (ALG_HMAC_SHA384, AlgClass::Hmac),
    (ALG_HMAC_SHA512, AlgClass::Hmac),
    (ALG_RSA_1_5, AlgClass::AsymmetricDecryption),
    (ALG_RSA_RAW, AlgClass::AsymmetricDecryption),
    (ALG_ECDH_RAW, AlgClass::KeyAgreement),
    (
        ALG_RSA_SHA1,
        AlgClass::Signature {
            rsa: true,
            hash_len: Some(20),
        },
    ),
    (
        ALG_RSA_SHA256,
        AlgClass::Signature {
            rsa: true,
            hash_len: Some(32),
        },
    ),
    (
        ALG_ECDSA_SHA256,
        AlgClass::Signature {
            rsa: false,
            hash_len: Some(32),
        },
    ),
    (
        ALG_ECDSA_SHA384,
        AlgClass::Signature {
            rsa: false,
            hash_len: Some(48),
        },
    ),
    (
        ALG_RSA_NONE,
        AlgClass::Signature {
            rsa: true,
            hash_len: None,
        },
    ),
    (
        ALG_ECDSA_NONE,
        AlgClass::Signature {
            rsa: false,
            hash_len: None,
        },
    ),
    (ALG_KEY_RSA1024, AlgClass::KeyGeneration),
    (ALG_KEY_RSA2048, AlgClass::KeyGeneration),
    (ALG_KEY_RSA1024_EXP, AlgClass::KeyGeneration),
    (ALG_KEY_RSA2048_EXP, AlgClass::KeyGeneration),
    (ALG_KEY_EC_P256, AlgClass::KeyGeneration),
    (ALG_KEY_EC_P384, AlgClass::KeyGeneration),
    (ALG_SESSION_S1, AlgClass::Special),
    (ALG_KEY_K1, AlgClass::Special),
    (ALG_NONE, AlgClass::Special),
];

/// Looks an algorithm URI up in [`ALGORITHMS`].
pub fn algorithm_class(uri: &str) -> Option<AlgClass> {
    ALGORITHMS.iter().find(|(u, _)| *u == uri).map(|(_, c)| *c)
}

/// HMAC key suffix for attestations (§6.3).
pub const DEVICE_ATTESTATION: &[u8] = b"Device Attestation";
/// HMAC data deriving the EncryptionKey (§6.1).
pub const ENCRYPTION_KEY: &[u8] = b"Encryption Key";
/// HMAC key suffix of signProvisioningSessionData.
pub const EXTERNAL_SIGNATURE: &[u8] = b"External Signature";
/// Device ID in privacy-enabled mode (§2.7).
pub const ANONYMOUS: &[u8] = b"Anonymous";
/// Placeholder for absent references in MAC data (byte layouts §1.2).
pub const NOT_AVAILABLE: &str = "#N/A";
/// PIN policy reference of device-PIN protected keys.
pub const DEVICE_PIN: &str = "#Device PIN";

/// Largest decoded PIN/PUK (§5.6).
pub const MAX_LENGTH_PIN_PUK: usize = 128;
/// Longest ID (§7.1).
pub const MAX_LENGTH_ID: usize = 32;
/// Longest URI (§7.1).
pub const MAX_LENGTH_URI: usize = 1000;
/// Longest Logotype qualifier (addExtension).
pub const MAX_LENGTH_QUALIFIER: usize = 128;
/// Longest symmetric key (importSymmetricKey).
pub const MAX_LENGTH_SYMMETRIC_KEY: usize = 128;
/// CryptoDataSize (getDeviceInfo); also the certificate and private key limit.
pub const MAX_LENGTH_CRYPTO_DATA: usize = 16384;
/// ExtensionDataSize (getDeviceInfo).
pub const MAX_LENGTH_EXTENSION_DATA: usize = 65536;
/// Encryption overhead allowance (byte layouts §5).
pub const AES_CBC_PKCS5_PADDING: usize = 32;
/// Longest FriendlyName in characters (createKeyEntry).
pub const MAX_LENGTH_FRIENDLY_NAME: usize = 128;
/// Largest PIN/PUK RetryLimit.
pub const MAX_RETRY_LIMIT: u16 = 10000;

/// PIN pattern restriction bits (§5.5).
pub mod pattern {
    /// 1124 is invalid.
    pub const TWO_IN_A_ROW: u8 = 0x01;
    /// 1114 is invalid.
    pub const THREE_IN_A_ROW: u8 = 0x02;
    /// 1234 and 9876 are invalid.
    pub const SEQUENCE: u8 = 0x04;
    /// All PIN bytes must be unique.
    pub const REPEATED: u8 = 0x08;
    /// Letters and digits (and for string also lowercase and other) required.
    pub const MISSING_GROUP: u8 = 0x10;
    /// Every bit §5.5 defines; createPINPolicy refuses any other.
    pub const DEFINED: u8 = TWO_IN_A_ROW | THREE_IN_A_ROW | SEQUENCE | REPEATED | MISSING_GROUP;
}

/// A byte that is not one of the values the spec enumerates for its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} value 0x{value:02X} is not defined")]
pub struct UnknownValue {
    /// The field, as the spec names it (e.g. `Grouping`).
    pub field: &'static str,
    /// The byte received.
    pub value: u8,
}

/// A `byte` field whose values the spec enumerates: its byte (`u8::from`) and the checked
/// conversion back (`TryFrom<u8>`, failing with [`UnknownValue`]). `codec` gives every such
/// type its wire encoding (that byte, checked when read), so this module needs no codec.
pub trait ByteEnum: Copy + Into<u8> + TryFrom<u8, Error = UnknownValue> {}

/// Declares a [`ByteEnum`]: the enum, `u8::from` and the checked `TryFrom<u8>`.
macro_rules! byte_enum {
    ($(#[$doc:meta])* $name:ident = $field:literal {
        $($(#[$vdoc:meta])* $variant:ident = $value:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)*
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v as u8
            }
        }

        impl TryFrom<u8> for $name {
            type Error = UnknownValue;
            fn try_from(value: u8) -> Result<Self, UnknownValue> {
                match value {
                    $($value => Ok(Self::$variant),)*
                    _ => Err(UnknownValue { field: $field, value }),
                }
            }
        }

        impl ByteEnum for $name {}
    };
}

byte_enum! {
    /// PIN/PUK formats (§5.6, byte layouts §9.3).
    PinFormat = "Format" {
        /// 0-9.
        Numeric = 0x00,
        /// 0-9, A-Z.
        Alphanumeric = 0x01,
        /// Any UTF-8 string.
        String = 0x02,
        /// Binary.
        Binary = 0x03,
    }
}

byte_enum! {
    /// PIN grouping (§5.7, byte layouts §9.3).
    Grouping = "Grouping" {
        /// No restrictions.
        None = 0x00,
        /// All keys share the same PIN.
        Shared = 0x01,
        /// Signature keys share one PIN, all others another.
        SignaturePlusStandard = 0x02,
        /// One PIN per AppUsage.
        Unique = 0x03,
    }
}

byte_enum! {
    /// PIN input methods (§5.4, byte layouts §9.3).
    InputMethod = "InputMethod" {
        /// Through the User API only.
        Programmatic = 0x01,
        /// Through a trusted GUI.
        TrustedGui = 0x02,
        /// No restrictions.
        Any = 0x03,
    }
}

byte_enum! {
    /// Export and delete protection (§5.1, §5.2, byte layouts §9.6).
    Protection = "Protection" {
        /// No authorization needed.
        None = 0x00,
        /// PIN required.
        Pin = 0x01,
        /// PUK required.
        Puk = 0x02,
        /// Not allowed at all.
        NotAllowed = 0x03,
    }
}

byte_enum! {
    /// Biometric protection (§5.3, byte layouts §9.5).
    BiometricProtection = "BiometricProtection" {
        /// None.
        None = 0x00,
        /// PIN or biometrics.
        Alternative = 0x01,
        /// PIN and biometrics.
        Combined = 0x02,
        /// Biometrics only.
        Exclusive = 0x03,
    }
}

byte_enum! {
    /// Application usage (§5.8, byte layouts §9.4).
    AppUsage = "AppUsage" {
        /// Signature applications.
        Signature = 0x00,
        /// Authentication applications.
        Authentication = 0x01,
        /// Encryption applications.
        Encryption = 0x02,
        /// Unrestricted.
        Universal = 0x03,
    }
}

byte_enum! {
    /// The deferred post-provisioning operations, by method ID (§7.4 \[50\]–\[53\]).
    PostOperation = "PostOperation" {
        /// postDeleteKey.
        DeleteKey = 50,
        /// postUnlockKey.
        UnlockKey = 51,
        /// postUpdateKey.
        UpdateKey = 52,
        /// postCloneKeyProtection.
        CloneKeyProtection = 53,
    }
}

byte_enum! {
    /// Extension sub-types (addExtension, byte layouts §9.7).
    SubType = "SubType" {
        /// Plain extension.
        Extension = 0x00,
        /// Encrypted extension, decrypted at provisioning.
        EncryptedExtension = 0x01,
        /// PropertyBag.
        PropertyBag = 0x02,
        /// Logotype; the qualifier is the MIME type.
        Logotype = 0x03,
    }
}

/// getKeyProtectionInfo ProtectionStatus bits.
pub mod protection_status {
    /// Protected by a local PIN policy.
    pub const PIN_PROTECTED: u8 = 0x01;
    /// Protected by a local PUK policy.
    pub const PUK_PROTECTED: u8 = 0x02;
    /// Locked by PIN errors.
    pub const PIN_BLOCKED: u8 = 0x04;
    /// Locked by PUK errors.
    pub const PUK_BLOCKED: u8 = 0x08;
    /// Protected by a device PIN.
    pub const DEVICE_PIN: u8 = 0x10;
}

/// getKeyProtectionInfo KeyBackup bits.
pub mod key_backup {
    /// Supplied through importPrivateKey or importSymmetricKey.
    pub const SERVER: u8 = 0x01;
    /// Exported by exportKey.
    pub const LOCAL: u8 = 0x02;
}

/// DeviceType of this SKS: LOCATION_EMBEDDED | TYPE_SOFTWARE (getDeviceInfo).
pub const DEVICE_TYPE_SOFTWARE_EMBEDDED: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerated_bytes_convert_both_ways_and_reject_the_rest() {
        for v in 0u8..=3 {
            assert_eq!(u8::from(Grouping::try_from(v).unwrap()), v);
            assert_eq!(u8::from(PinFormat::try_from(v).unwrap()), v);
        }
        assert_eq!(
            Grouping::try_from(4),
            Err(UnknownValue {
                field: "Grouping",
                value: 4
            })
        );
        assert_eq!(
            InputMethod::try_from(0),
            Err(UnknownValue {
                field: "InputMethod",
                value: 0
            })
        );
        assert_eq!(InputMethod::try_from(2), Ok(InputMethod::TrustedGui));
        assert_eq!(
            UnknownValue {
                field: "AppUsage",
                value: 0x10
            }
            .to_string(),
            "AppUsage value 0x10 is not defined"
        );
    }
}
