//! Secret AES key types.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{cbc, CryptoError};

/// An AES-128, AES-192 or AES-256 key (GPC Amd D §4.1.1, §6.1).
///
/// Secret: zeroized on drop, `Debug` shows only the size and the key check
/// value, equality is constant time, and there is no `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AesKey {
    bytes: [u8; 32],
    len: u8,
}

impl AesKey {
    /// Builds a key from 16, 24 or 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<AesKey, CryptoError> {
        if !matches!(bytes.len(), 16 | 24 | 32) {
            return Err(CryptoError::InvalidKeyLength { len: bytes.len() });
        }
        let mut key = AesKey {
            bytes: [0; 32],
            len: bytes.len() as u8,
        };
        key.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(key)
    }

    /// Builds a key from hex (upper or lower case, no separators).
    pub fn from_hex(hex_str: &str) -> Result<AesKey, CryptoError> {
        let bytes = zeroize::Zeroizing::new(crate::decode_hex(hex_str)?);
        AesKey::from_slice(&bytes)
    }

    /// Key length in bytes (16, 24 or 32).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: an `AesKey` is never empty (present for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Key length in bits (128, 192 or 256).
    pub fn bits(&self) -> u16 {
        u16::from(self.len) * 8
    }

    /// The raw key bytes. This is the only way to get the secret out; callers
    /// must not log, print or persist the result.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// Key check value: the first 3 bytes of AES-ECB(key, 16 × '01')
    /// (GPC Amd D §7.2.2).
    pub fn kcv(&self) -> [u8; 3] {
        let block = cbc::ecb_encrypt_block(self, &[0x01; 16]);
        [block[0], block[1], block[2]]
    }

    /// An explicit copy of the key, for the rare places that need two owners.
    pub fn duplicate(&self) -> AesKey {
        AesKey {
            bytes: self.bytes,
            len: self.len,
        }
    }

    /// Constant-time comparison with another key.
    pub fn ct_eq(&self, other: &AesKey) -> bool {
        crate::ct_eq(self.expose_secret(), other.expose_secret())
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for AesKey {}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kcv = self.kcv();
        write!(
            f,
            "AesKey(AES-{}, KCV {:02X}{:02X}{:02X})",
            self.bits(),
            kcv[0],
            kcv[1],
            kcv[2]
        )
    }
}

/// A Security Domain's static SCP03 key set: Key-ENC, Key-MAC, Key-DEK (GPC Amd D §6.1).
///
/// The key version number is kept by the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct StaticKeys {
    /// Static secure channel encryption key (Key-ENC).
    pub enc: AesKey,
    /// Static secure channel MAC key (Key-MAC).
    pub mac: AesKey,
    /// Data encryption key (Key-DEK), used for sensitive data (Amd D §6.2.8).
    pub dek: AesKey,
}

impl StaticKeys {
    /// Builds a key set; the three keys must have the same length (Amd D §6.1).
    pub fn new(enc: AesKey, mac: AesKey, dek: AesKey) -> Result<StaticKeys, CryptoError> {
        if enc.len() != mac.len() || enc.len() != dek.len() {
            return Err(CryptoError::KeySetLengthMismatch);
        }
        Ok(StaticKeys { enc, mac, dek })
    }

    /// Builds a key set from three hex strings.
    pub fn from_hex(enc: &str, mac: &str, dek: &str) -> Result<StaticKeys, CryptoError> {
        StaticKeys::new(
            AesKey::from_hex(enc)?,
            AesKey::from_hex(mac)?,
            AesKey::from_hex(dek)?,
        )
    }

    /// An explicit copy of the key set.
    pub fn duplicate(&self) -> StaticKeys {
        StaticKeys {
            enc: self.enc.duplicate(),
            mac: self.mac.duplicate(),
            dek: self.dek.duplicate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_are_validated() {
        for len in [0usize, 1, 8, 15, 17, 23, 25, 31, 33, 64] {
            assert_eq!(
                AesKey::from_slice(&vec![0u8; len]).unwrap_err(),
                CryptoError::InvalidKeyLength { len }
            );
        }
        for (len, bits) in [(16usize, 128u16), (24, 192), (32, 256)] {
            let k = AesKey::from_slice(&vec![7u8; len]).unwrap();
            assert_eq!(k.len(), len);
            assert_eq!(k.bits(), bits);
            assert_eq!(k.expose_secret(), vec![7u8; len].as_slice());
        }
    }

    #[test]
    fn debug_is_redacted() {
        let k = AesKey::from_hex("404142434445464748494A4B4C4D4E4F").unwrap();
        let s = format!("{k:?}");
        assert_eq!(s, "AesKey(AES-128, KCV 504A77)");
        let ks = StaticKeys::from_hex(
            "404142434445464748494A4B4C4D4E4F",
            "404142434445464748494A4B4C4D4E4F",
            "404142434445464748494A4B4C4D4E4F",
        )
        .unwrap();
        let s = format!("{ks:?}");
        assert!(!s.contains("4041"), "{s}");
        assert!(!s.to_lowercase().contains("4041"), "{s}");
    }

    #[test]
    fn equality_and_duplicate() {
        let a = AesKey::from_hex("000102030405060708090A0B0C0D0E0F").unwrap();
        let b = a.duplicate();
        assert_eq!(a, b);
        let c = AesKey::from_hex("000102030405060708090A0B0C0D0E0E").unwrap();
        assert_ne!(a, c);
        let d = AesKey::from_slice(&[0u8; 24]).unwrap();
        assert_ne!(a, d);
    }

    #[test]
    fn bad_hex_is_rejected_without_echoing_input() {
        let e = AesKey::from_hex("zz0102").unwrap_err();
        assert!(matches!(e, CryptoError::InvalidHex { .. }));
        assert!(!e.to_string().contains("zz0102"));
    }

    #[test]
    fn key_set_lengths_must_match() {
        let e = StaticKeys::from_hex(
            "000102030405060708090A0B0C0D0E0F",
            "000102030405060708090A0B0C0D0E0F0001020304050607",
            "000102030405060708090A0B0C0D0E0F",
        )
        .unwrap_err();
        assert_eq!(e, CryptoError::KeySetLengthMismatch);
    }
}
