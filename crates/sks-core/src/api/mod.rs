//! The method list of §7.4: one request struct (module [`req`]) and one output struct
//! (module [`resp`]) per method, the [`Request`]/[`Response`] enums, their wire encoding
//! (`[method id][arguments]`, `[status][outputs]` or `[status≠0][error string]`, §7.2)
//! and the [`SksApi`] trait with one typed function per method.

use crate::codec::{Blob, DecodeError, List16, List8, Reader, WireType, Writer};
use crate::error::{ErrorCode, SksError};
pub use crate::pin::PinPolicyBytes;
use crate::secret::Secret;

#[macro_use]
mod macros;

/// Encodes an error response `[status][error string]` (§7.2).
pub fn encode_error(e: &SksError) -> Vec<u8> {
    let mut w = Writer::new();
    w.byte(e.code().status()).string(e.message());
    // `SksError::new` caps the message at MAX_ERROR_STRING bytes, well within a string's
    // 65535; were it ever longer, the frame is the same error without its description.
    w.into_bytes()
        .unwrap_or_else(|_| vec![e.code().status(), 0, 0])
}

/// Encodes a call result as a response frame.
pub fn encode_result(r: &Result<Response, SksError>) -> Vec<u8> {
    match r {
        // An output over its length prefix is an internal error, never cut to fit.
        Ok(resp) => resp
            .encode()
            .unwrap_or_else(|e| encode_error(&SksError::new(ErrorCode::Internal, e.to_string()))),
        Err(e) => encode_error(e),
    }
}

wire_struct! {
    /// The arguments that open signHashedData, asymmetricKeyDecrypt, keyAgreement and
    /// performHMAC (§7.4 \[100\]–\[103\]); symmetricKeyEncrypt sends Mode between Algorithm
    /// and Parameters and so carries them one by one.
    KeyUse {
        /// Key.
        key_handle: u32,
        /// Algorithm URI.
        algorithm: String,
        /// Parameters (empty for every algorithm these methods take).
        parameters: Vec<u8>,
        /// PIN or empty.
        authorization: Secret,
    }
}

sks_methods! {
    /// getDeviceInfo \[1\]: core characteristics of the SKS.
    1 GetDeviceInfo get_device_info {} -> {
        /// 100 = 1.00.
        api_level: u16,
        /// DeviceType bit fields.
        device_type: u8,
        /// Firmware update URL or empty.
        update_url: String,
        /// Vendor name.
        vendor_name: String,
        /// Vendor description.
        vendor_description: String,
        /// Device certificate path, device certificate first.
        certificate_path: List8<Vec<u8>>,
        /// Supported algorithm URIs.
        supported_algorithms: List16<String>,
        /// Maximum Data size of cryptographic methods.
        crypto_data_size: u32,
        /// Maximum ExtensionData size.
        extension_data_size: u32,
        /// Device PIN support.
        device_pin_support: bool,
        /// Biometric support.
        biometric_support: bool,
    };
    /// createProvisioningSession \[2\]: ECDH session key creation (`sks.s1`).
    2 CreateProvisioningSession create_provisioning_session {
        /// Session algorithm URI (sks.s1).
        algorithm: String,
        /// Privacy enabled (PEP) mode.
        privacy_enabled: bool,
        /// Server session ID.
        server_session_id: String,
        /// Server ephemeral P-256 key (SPKI DER).
        server_ephemeral_key: Vec<u8>,
        /// Issuer URI.
        issuer_uri: String,
        /// KeyManagementKey (SPKI DER) or empty.
        key_management_key: Vec<u8>,
        /// Client time (UNIX seconds).
        client_time: u32,
        /// Session lifetime in seconds.
        session_life_time: u32,
        /// SessionKey operation limit.
        session_key_limit: u16,
    } -> {
        /// SKS-created session ID.
        client_session_id: String,
        /// SKS ephemeral key (SPKI DER).
        client_ephemeral_key: Vec<u8>,
        /// Session attestation.
        attestation: Vec<u8>,
        /// Provisioning handle.
        provisioning_handle: u32,
    };
    /// closeProvisioningSession \[3\]: checks and atomic commit.
    3 CloseProvisioningSession close_provisioning_session {
        /// Open session.
        provisioning_handle: u32,
        /// 1-32 byte nonce.
        nonce: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {
        /// Close attestation.
        attestation: Vec<u8>,
    };
    /// enumerateProvisioningSessions \[4\].
    4 EnumerateProvisioningSessions enumerate_provisioning_sessions {
        /// Enumeration handle (0 starts).
        provisioning_handle: u32,
        /// True: open sessions; false: closed sessions.
        provisioning_state: bool,
    } -> {
        /// Next handle, 0 at the end.
        provisioning_handle: u32,
        /// Session algorithm.
        algorithm: String,
        /// Privacy enabled.
        privacy_enabled: bool,
        /// KeyManagementKey or empty.
        key_management_key: Vec<u8>,
        /// Client time.
        client_time: u32,
        /// Session lifetime.
        session_life_time: u32,
        /// Server session ID.
        server_session_id: String,
        /// Client session ID.
        client_session_id: String,
        /// Issuer URI.
        issuer_uri: String,
    };
    /// abortProvisioningSession \[5\].
    5 AbortProvisioningSession abort_provisioning_session {
        /// Open session.
        provisioning_handle: u32,
    } -> {};
    /// signProvisioningSessionData \[6\].
    6 SignProvisioningSessionData sign_provisioning_session_data {
        /// Open session.
        provisioning_handle: u32,
        /// Data to sign.
        data: Vec<u8>,
    } -> {
        /// HMAC signature.
        signature: Vec<u8>,
    };
    /// createPUKPolicy \[7\].
    7 CreatePukPolicy create_puk_policy {
        /// Open session.
        provisioning_handle: u32,
        /// Object ID.
        id: String,
        /// Encrypted PUK value.
        puk_value: Vec<u8>,
        /// PUK format.
        format: u8,
        /// Retry limit, 0 = unlimited with delay.
        retry_limit: u16,
        /// MAC.
        mac: Vec<u8>,
    } -> {
        /// PUK policy handle.
        puk_policy_handle: u32,
    };
    /// createPINPolicy \[8\].
    8 CreatePinPolicy create_pin_policy {
        /// Open session.
        provisioning_handle: u32,
        /// Object ID.
        id: String,
        /// Governing PUK policy or 0.
        puk_policy_handle: u32,
        /// The policy's attributes.
        policy: PinPolicyBytes,
        /// MAC.
        mac: Vec<u8>,
    } -> {
        /// PIN policy handle.
        pin_policy_handle: u32,
    };
    /// createKeyEntry \[9\].
    9 CreateKeyEntry create_key_entry {
        /// Open session.
        provisioning_handle: u32,
        /// Object ID.
        id: String,
        /// Attestation algorithm (sks.k1).
        algorithm: String,
        /// Server RNG seed, 0-32 bytes.
        server_seed: Vec<u8>,
        /// Device PIN protection.
        device_pin_protection: bool,
        /// PIN policy handle or 0.
        pin_policy_handle: u32,
        /// User PIN (clear) or issuer PIN (encrypted), or empty.
        pin_value: Secret,
        /// PIN caching allowed.
        enable_pin_caching: bool,
        /// Biometric protection.
        biometric_protection: u8,
        /// Export protection.
        export_protection: u8,
        /// Delete protection.
        delete_protection: u8,
        /// Application usage.
        app_usage: u8,
        /// Friendly name.
        friendly_name: String,
        /// Key generation algorithm URI.
        key_algorithm: String,
        /// Key parameters (RSA exponent for `.exp`).
        key_parameters: Vec<u8>,
        /// Sorted endorsed algorithm URIs.
        endorsed_algorithms: List8<String>,
        /// MAC.
        mac: Vec<u8>,
    } -> {
        /// Key handle.
        key_handle: u32,
        /// Generated public key (SPKI DER).
        public_key: Vec<u8>,
        /// Key attestation.
        attestation: Vec<u8>,
    };
    /// getKeyHandle \[10\].
    10 GetKeyHandle get_key_handle {
        /// Open session.
        provisioning_handle: u32,
        /// Key ID.
        id: String,
    } -> {
        /// Key handle.
        key_handle: u32,
    };
    /// setCertificatePath \[11\].
    11 SetCertificatePath set_certificate_path {
        /// Key of an open session.
        key_handle: u32,
        /// DER certificates, end-entity first.
        certificate_path: List8<Vec<u8>>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// importSymmetricKey \[12\].
    12 ImportSymmetricKey import_symmetric_key {
        /// Key of an open session.
        key_handle: u32,
        /// Encrypted symmetric key.
        symmetric_key: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// importPrivateKey \[13\].
    13 ImportPrivateKey import_private_key {
        /// Key of an open session.
        key_handle: u32,
        /// Encrypted PKCS#8 private key.
        private_key: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// addExtension \[14\].
    14 AddExtension add_extension {
        /// Key of an open session.
        key_handle: u32,
        /// Extension type URI.
        type_uri: String,
        /// Sub-type.
        sub_type: u8,
        /// Qualifier (Logotype MIME type).
        qualifier: String,
        /// Extension data.
        extension_data: Blob,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// postDeleteKey \[50\].
    50 PostDeleteKey post_delete_key {
        /// Open session.
        provisioning_handle: u32,
        /// Target key.
        target_key_handle: u32,
        /// Target Key Reference signature.
        authorization: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// postUnlockKey \[51\].
    51 PostUnlockKey post_unlock_key {
        /// Open session.
        provisioning_handle: u32,
        /// Target key.
        target_key_handle: u32,
        /// Target Key Reference signature.
        authorization: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// postUpdateKey \[52\].
    52 PostUpdateKey post_update_key {
        /// New key of an open session.
        key_handle: u32,
        /// Target key.
        target_key_handle: u32,
        /// Target Key Reference signature.
        authorization: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// postCloneKeyProtection \[53\].
    53 PostCloneKeyProtection post_clone_key_protection {
        /// New key of an open session.
        key_handle: u32,
        /// Target key.
        target_key_handle: u32,
        /// Target Key Reference signature.
        authorization: Vec<u8>,
        /// MAC.
        mac: Vec<u8>,
    } -> {};
    /// enumerateKeys \[70\].
    70 EnumerateKeys enumerate_keys {
        /// Enumeration handle (0 starts).
        key_handle: u32,
    } -> {
        /// Next key handle, 0 at the end.
        key_handle: u32,
        /// Owning session.
        provisioning_handle: u32,
    };
    /// getKeyAttributes \[71\].
    71 GetKeyAttributes get_key_attributes {
        /// Key.
        key_handle: u32,
    } -> {
        /// Symmetric key length in bytes, 0 for asymmetric keys.
        symmetric_key_length: u16,
        /// Certificate path.
        certificate_path: List8<Vec<u8>>,
        /// Application usage.
        app_usage: u8,
        /// Friendly name.
        friendly_name: String,
        /// Endorsed algorithms.
        endorsed_algorithms: List8<String>,
        /// Extension type URIs.
        extension_types: List16<String>,
    };
    /// getKeyProtectionInfo \[72\].
    72 GetKeyProtectionInfo get_key_protection_info {
        /// Key.
        key_handle: u32,
    } -> {
        /// ProtectionStatus bits.
        protection_status: u8,
        /// PUK format.
        puk_format: u8,
        /// PUK retry limit.
        puk_retry_limit: u16,
        /// PUK error count.
        puk_error_count: u16,
        /// The PIN policy's attributes.
        pin_policy: PinPolicyBytes,
        /// PIN error count.
        pin_error_count: u16,
        /// PIN caching.
        enable_pin_caching: bool,
        /// Biometric protection.
        biometric_protection: u8,
        /// Export protection.
        export_protection: u8,
        /// Delete protection.
        delete_protection: u8,
        /// KeyBackup bits.
        key_backup: u8,
    };
    /// getExtension \[73\].
    73 GetExtension get_extension {
        /// Key.
        key_handle: u32,
        /// Extension type URI.
        type_uri: String,
    } -> {
        /// Sub-type.
        sub_type: u8,
        /// Qualifier.
        qualifier: String,
        /// Extension data.
        extension_data: Blob,
    };
    /// setProperty \[74\].
    74 SetProperty set_property {
        /// Key.
        key_handle: u32,
        /// PropertyBag type URI.
        type_uri: String,
        /// Property name.
        name: String,
        /// New value.
        value: String,
    } -> {};
    /// deleteKey \[80\].
    80 DeleteKey delete_key {
        /// Key.
        key_handle: u32,
        /// Empty, PIN or PUK.
        authorization: Secret,
    } -> {};
    /// exportKey \[81\].
    81 ExportKey export_key {
        /// Key.
        key_handle: u32,
        /// Empty, PIN or PUK.
        authorization: Secret,
    } -> {
        /// PKCS#8 private key or raw symmetric key.
        key: Secret,
    };
    /// unlockKey \[82\].
    82 UnlockKey unlock_key {
        /// Key.
        key_handle: u32,
        /// PUK.
        authorization: Secret,
    } -> {};
    /// changePIN \[83\].
    83 ChangePin change_pin {
        /// Key.
        key_handle: u32,
        /// Current PIN.
        authorization: Secret,
        /// New PIN.
        new_pin: Secret,
    } -> {};
    /// setPIN \[84\].
    84 SetPin set_pin {
        /// Key.
        key_handle: u32,
        /// PUK.
        authorization: Secret,
        /// New PIN.
        new_pin: Secret,
    } -> {};
    /// updateFirmware \[90\].
    90 UpdateFirmware update_firmware {
        /// Firmware chunk.
        chunk: Blob,
    } -> {
        /// Next URL or empty.
        next_url: String,
    };
    /// signHashedData \[100\].
    100 SignHashedData sign_hashed_data {
        /// Key, signature algorithm, Parameters, PIN.
        key: KeyUse,
        /// Hashed data.
        data: Vec<u8>,
    } -> {
        /// Signature.
        result: Vec<u8>,
    };
    /// asymmetricKeyDecrypt \[101\].
    101 AsymmetricKeyDecrypt asymmetric_key_decrypt {
        /// Key, decryption algorithm, Parameters, PIN.
        key: KeyUse,
        /// Encrypted data.
        data: Vec<u8>,
    } -> {
        /// Decrypted data.
        result: Secret,
    };
    /// keyAgreement \[102\].
    102 KeyAgreement key_agreement {
        /// Key, key agreement algorithm, Parameters, PIN.
        key: KeyUse,
        /// Peer public key (SPKI DER).
        public_key: Vec<u8>,
    } -> {
        /// Shared secret Z.
        result: Secret,
    };
    /// performHMAC \[103\].
    103 PerformHmac perform_hmac {
        /// Key, HMAC algorithm, Parameters, PIN.
        key: KeyUse,
        /// Data.
        data: Blob,
    } -> {
        /// HMAC value.
        result: Vec<u8>,
    };
    /// symmetricKeyEncrypt \[104\].
    104 SymmetricKeyEncrypt symmetric_key_encrypt {
        /// Key.
        key_handle: u32,
        /// Encryption algorithm.
        algorithm: String,
        /// True: encrypt; false: decrypt.
        mode: bool,
        /// IV for aes.cbc.pkcs5, else empty.
        parameters: Vec<u8>,
        /// PIN or empty.
        authorization: Secret,
        /// Data.
        data: Blob,
    } -> {
        /// Result.
        result: Blob,
    };
}
