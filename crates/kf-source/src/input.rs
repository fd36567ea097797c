//! The per-fob provisioning input every source produces and the pipeline consumes.
//!
//! Secret parts (static keys, private scalar, BLE IRK, the DEK-encrypted key blob)
//! are newtypes that zeroize on drop, print as `[redacted]` and have no `Clone`.

use std::fmt;

use kf_crypto::{AesKey, StaticKeys};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::SourceError;

/// Length of a P-256 private scalar.
pub const SCALAR_LEN: usize = 32;
/// Length of a BLE identity resolving key (Bluetooth Core Spec Vol 3 Part H §2.4.2.1).
pub const IRK_LEN: usize = 16;
/// Length of the SPID as written in DGI A001: 40 ASCII hex characters (provisioning specification).
pub const SPID_LEN: usize = 40;

/// A P-256 private scalar (secret). Guaranteed to be a valid scalar in `1..n`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PrivateScalar([u8; SCALAR_LEN]);

impl PrivateScalar {
    /// Builds a scalar from exactly 32 big-endian bytes; rejects 0 and values ≥ n.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrivateScalar, SourceError> {
        // p256 accepts shorter slices (left-padding them); the fob wants exactly 32.
        if bytes.len() != SCALAR_LEN {
            return Err(SourceError::InvalidScalar);
        }
        let key = p256::SecretKey::from_slice(bytes).map_err(|_| SourceError::InvalidScalar)?;
        Ok(PrivateScalar::from_secret_key(&key))
    }

    /// Copies the scalar out of a `p256` secret key.
    pub fn from_secret_key(key: &p256::SecretKey) -> PrivateScalar {
        let mut out = [0u8; SCALAR_LEN];
        let bytes = zeroize::Zeroizing::new(key.to_bytes());
        out.copy_from_slice(&bytes);
        PrivateScalar(out)
    }

    /// The raw scalar. Callers must not log, print or persist it.
    pub fn expose_secret(&self) -> &[u8; SCALAR_LEN] {
        &self.0
    }

    /// The public key of this scalar.
    pub fn public_key(&self) -> Result<p256::PublicKey, SourceError> {
        let key = p256::SecretKey::from_slice(&self.0).map_err(|_| SourceError::InvalidScalar)?;
        Ok(key.public_key())
    }

    /// An explicit copy (the pipeline and the source may both need one).
    pub fn duplicate(&self) -> PrivateScalar {
        PrivateScalar(self.0)
    }
}

impl fmt::Debug for PrivateScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateScalar([redacted])")
    }
}

/// The DGI A003 value as some KLMS deployments deliver it: the scalar already
/// encrypted with the fob's static DEK (AES-CBC, IV 0, ISO 9797-1 M2; 48 bytes).
/// Treated as secret: it is one DEK away from the private key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct EncryptedScalar(Vec<u8>);

impl EncryptedScalar {
    /// Wraps a 48-byte blob ([`kf_profile::ENCRYPTED_SCALAR_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<EncryptedScalar, SourceError> {
        if bytes.len() != kf_profile::ENCRYPTED_SCALAR_LEN {
            return Err(SourceError::InvalidEncryptedScalar { len: bytes.len() });
        }
        Ok(EncryptedScalar(bytes.to_vec()))
    }

    /// The ciphertext. Callers must not log it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for EncryptedScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptedScalar({} bytes, [redacted])", self.0.len())
    }
}

/// The private key to write into DGI A003.
#[derive(Debug)]
#[non_exhaustive]
pub enum PrivateKeyMaterial {
    /// The clear scalar; the perso plan encrypts it with the static DEK.
    Scalar(PrivateScalar),
    /// Already DEK-encrypted by the KLMS; written as is.
    DekEncrypted(EncryptedScalar),
}

/// A BLE identity resolving key (secret: it lets anyone track the fob).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BleIrk([u8; IRK_LEN]);

impl BleIrk {
    /// Builds an IRK from exactly 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<BleIrk, SourceError> {
        let arr: [u8; IRK_LEN] = bytes
            .try_into()
            .map_err(|_| SourceError::InvalidIrk { len: bytes.len() })?;
        Ok(BleIrk(arr))
    }

    /// The raw key. Callers must not log it.
    pub fn expose_secret(&self) -> &[u8; IRK_LEN] {
        &self.0
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> BleIrk {
        BleIrk(self.0)
    }
}

impl fmt::Debug for BleIrk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BleIrk([redacted])")
    }
}

/// The SPID (DGI A001): 40 ASCII hex characters, kept exactly as delivered.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Spid(String);

impl Spid {
    /// Validates 40 ASCII hex digits (either case).
    pub fn new(text: &str) -> Result<Spid, SourceError> {
        if text.len() != SPID_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SourceError::InvalidSpid { len: text.len() });
        }
        Ok(Spid(text.to_owned()))
    }

    /// The SPID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DGI A001 value: the ASCII bytes of the hex text.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Spid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spid({})", self.0)
    }
}

impl fmt::Display for Spid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The static SCP03 key set of a fob with its key version number.
#[derive(Debug)]
pub struct CardKeys {
    /// Key version number sent in INITIALIZE UPDATE P1 (GPC Amd D §7.1.1).
    pub kvn: u8,
    /// Static ENC/MAC/DEK.
    pub keys: StaticKeys,
}

impl CardKeys {
    /// The development-sample keys of the provisioning specification at KVN 255 (public test keys).
    pub fn dev_sample() -> Result<CardKeys, SourceError> {
        let keys = StaticKeys::new(
            AesKey::from_slice(&kf_profile::DEV_SAMPLE_ENC)?,
            AesKey::from_slice(&kf_profile::DEV_SAMPLE_MAC)?,
            AesKey::from_slice(&kf_profile::DEV_SAMPLE_DEK)?,
        )?;
        Ok(CardKeys {
            kvn: kf_profile::DEV_SAMPLE_KVN,
            keys,
        })
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> CardKeys {
        CardKeys {
            kvn: self.kvn,
            keys: self.keys.duplicate(),
        }
    }
}

/// The items written into the key-fob applet's DGIs (provisioning specification, "DGI Tags").
#[derive(Debug)]
pub struct PersonalizationItems {
    /// A001.
    pub spid: Spid,
    /// A002: device certificate, DER.
    pub device_certificate: Vec<u8>,
    /// A003: private key (clear scalar or DEK-encrypted blob).
    pub private_key: PrivateKeyMaterial,
    /// A004: intermediate CA certificate, DER.
    pub ica_certificate: Vec<u8>,
    /// A005: CMS/root CA certificate, DER.
    pub root_certificate: Vec<u8>,
    /// A006: BLE IRK.
    pub ble_irk: BleIrk,
}

/// Everything the station needs to provision one fob.
#[derive(Debug)]
pub struct ProvisioningInput {
    /// The fob UID read from the reader (`FF CA 00 00 00`).
    pub fob_uid: Vec<u8>,
    /// Transaction identifier for the audit record.
    pub transaction_id: String,
    /// Static SCP03 keys and their KVN.
    pub card_keys: CardKeys,
    /// DGI content.
    pub items: PersonalizationItems,
    /// Public key of the device certificate, for the verification stage.
    pub device_public_key: p256::PublicKey,
    /// Where the content came from (e.g. the container package directory name), for reports.
    pub origin: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALAR: [u8; 32] = [0x11; 32];

    #[test]
    fn secrets_print_redacted() {
        let s = PrivateScalar::from_bytes(&SCALAR).unwrap();
        let irk = BleIrk::from_bytes(&[0x22; 16]).unwrap();
        let enc = EncryptedScalar::from_bytes(&[0x33; 48]).unwrap();
        let text = format!("{s:?} {irk:?} {enc:?}");
        assert!(
            !text.contains("11") && !text.contains("22") && !text.contains("33"),
            "{text}"
        );
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn scalars_out_of_range_are_refused() {
        assert!(matches!(
            PrivateScalar::from_bytes(&[0; 32]),
            Err(SourceError::InvalidScalar)
        ));
        assert!(matches!(
            PrivateScalar::from_bytes(&[0xFF; 32]),
            Err(SourceError::InvalidScalar)
        ));
        assert!(matches!(
            PrivateScalar::from_bytes(&[1; 31]),
            Err(SourceError::InvalidScalar)
        ));
        let s = PrivateScalar::from_bytes(&SCALAR).unwrap();
        assert_eq!(s.expose_secret(), &SCALAR);
        assert_eq!(s.public_key().unwrap(), s.duplicate().public_key().unwrap());
    }

    #[test]
    fn item_lengths_are_checked() {
        assert!(matches!(
            BleIrk::from_bytes(&[0; 15]),
            Err(SourceError::InvalidIrk { len: 15 })
        ));
        assert!(matches!(
            EncryptedScalar::from_bytes(&[0; 32]),
            Err(SourceError::InvalidEncryptedScalar { len: 32 })
        ));
        assert!(Spid::new("59918C0096F859EC8BF6DA454E2E554A14DD4BD1").is_ok());
        assert!(Spid::new("59918c0096f859ec8bf6da454e2e554a14dd4bd1").is_ok());
        assert!(matches!(
            Spid::new("59918C"),
            Err(SourceError::InvalidSpid { len: 6 })
        ));
        assert!(matches!(
            Spid::new("59918C0096F859EC8BF6DA454E2E554A14DD4BDG"),
            Err(SourceError::InvalidSpid { len: 40 })
        ));
    }

    #[test]
    fn dev_sample_keys_are_the_seed_keys() {
        let k = CardKeys::dev_sample().unwrap();
        assert_eq!(k.kvn, 0xFF);
        assert_eq!(k.keys.enc.expose_secret(), kf_profile::DEV_SAMPLE_ENC);
        assert_eq!(k.keys.dek.expose_secret(), kf_profile::DEV_SAMPLE_DEK);
        assert_eq!(k.duplicate().keys, k.keys);
    }
}
