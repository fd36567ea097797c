//! AES-CMAC (NIST SP 800-38B), the MAC of SCP03 (GPC Amd D §4.1.3).

use cmac::{Cmac, Mac};

use crate::{AesKey, BLOCK_LEN};

/// Incremental AES-CMAC over the AES variant matching the key length.
///
/// Useful for MAC chaining (Amd D §6.2.4): feed the chaining value, then the
/// header, then the data, without concatenating buffers. A state keyed once
/// and cloned per message skips the key schedule and subkey derivation.
#[derive(Clone)]
pub struct CmacState(Inner);

#[derive(Clone)]
enum Inner {
    A128(Cmac<aes::Aes128>),
    A192(Cmac<aes::Aes192>),
    A256(Cmac<aes::Aes256>),
}

impl std::fmt::Debug for CmacState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CmacState([redacted])")
    }
}

impl CmacState {
    /// Starts a CMAC computation under `key`.
    pub fn new(key: &AesKey) -> CmacState {
        let k = key.expose_secret();
        let mk = |k: &[u8]| -> Inner {
            // AesKey only holds 16, 24 or 32 bytes, which each variant accepts.
            match k.len() {
                16 => Inner::A128(<Cmac<aes::Aes128> as cmac::digest::KeyInit>::new(
                    cmac::digest::generic_array::GenericArray::from_slice(k),
                )),
                24 => Inner::A192(<Cmac<aes::Aes192> as cmac::digest::KeyInit>::new(
                    cmac::digest::generic_array::GenericArray::from_slice(k),
                )),
                _ => Inner::A256(<Cmac<aes::Aes256> as cmac::digest::KeyInit>::new(
                    cmac::digest::generic_array::GenericArray::from_slice(k),
                )),
            }
        };
        CmacState(mk(k))
    }

    /// Absorbs more message bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::A128(m) => m.update(data),
            Inner::A192(m) => m.update(data),
            Inner::A256(m) => m.update(data),
        }
    }

    /// Finishes and returns the full 16-byte tag.
    pub fn finalize(self) -> [u8; BLOCK_LEN] {
        let tag = match self.0 {
            Inner::A128(m) => m.finalize().into_bytes(),
            Inner::A192(m) => m.finalize().into_bytes(),
            Inner::A256(m) => m.finalize().into_bytes(),
        };
        let mut out = [0u8; BLOCK_LEN];
        out.copy_from_slice(&tag);
        out
    }
}

/// One-shot AES-CMAC with a full 16-byte tag (NIST SP 800-38B; GPC Amd D §4.1.3).
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; BLOCK_LEN] {
    let mut m = CmacState::new(key);
    m.update(data);
    m.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_matches_one_shot() {
        let key = AesKey::from_slice(&[9u8; 32]).unwrap();
        let data: Vec<u8> = (0u8..100).collect();
        for split in [0usize, 1, 15, 16, 17, 50, 100] {
            let mut m = CmacState::new(&key);
            m.update(&data[..split]);
            m.update(&data[split..]);
            assert_eq!(m.finalize(), aes_cmac(&key, &data), "split {split}");
        }
    }
}
