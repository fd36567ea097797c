//! AES-CMAC (NIST SP 800-38B), the MAC of SCP03 (GPC Amd D §4.1.3).
//!
//! Built on [`AesCipher`] rather than the `cmac` crate: an SCP03 session MACs
//! every APDU under the same key, so the key schedule and the subkeys K1/K2
//! are prepared once ([`CmacKey`]) and each message starts from a 16-byte
//! state; and the channel feeds the ciphertext one block at a time while CBC
//! produces it, which this loop does in a few instructions per block. The
//! tests check it against the `cmac` crate and the SP 800-38B examples.

use zeroize::{Zeroize, Zeroizing};

use crate::cipher::{xor_into, AesCipher};
use crate::{AesKey, BLOCK_LEN};

/// A CMAC key prepared once: the AES key schedule and the subkeys K1, K2
/// (SP 800-38B §6.1). Secret; `Debug` shows nothing.
#[derive(Clone)]
pub struct CmacKey {
    cipher: AesCipher,
    k1: Zeroizing<[u8; BLOCK_LEN]>,
    k2: Zeroizing<[u8; BLOCK_LEN]>,
}

impl std::fmt::Debug for CmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CmacKey([redacted])")
    }
}

/// Doubling in GF(2^128) with the SP 800-38B constant R128 = 0x87.
fn dbl(block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let v = u128::from_be_bytes(*block);
    let carry = (v >> 127) as u8;
    let mut out = (v << 1).to_be_bytes();
    // Constant time: the reduction is masked, not branched on the secret bit.
    out[BLOCK_LEN - 1] ^= 0x87 & 0u8.wrapping_sub(carry);
    out
}

impl CmacKey {
    /// Prepares `key`.
    pub fn new(key: &AesKey) -> CmacKey {
        let cipher = AesCipher::new(key);
        let l = Zeroizing::new(cipher.encrypt_block(&[0u8; BLOCK_LEN]));
        let k1 = Zeroizing::new(dbl(&l));
        let k2 = Zeroizing::new(dbl(&k1));
        CmacKey { cipher, k1, k2 }
    }

    /// Starts a MAC computation under this key.
    pub fn start(&self) -> CmacRun<'_> {
        CmacRun {
            key: self,
            progress: Progress::default(),
        }
    }
}

/// The running part of a CMAC: the chain value and the last, possibly
/// partial, block, held back until the end decides between K1 and K2.
#[derive(Default, Clone)]
struct Progress {
    state: [u8; BLOCK_LEN],
    last: [u8; BLOCK_LEN],
    filled: usize,
}

impl Progress {
    fn update(&mut self, cipher: &AesCipher, mut data: &[u8]) {
        while !data.is_empty() {
            if self.filled == BLOCK_LEN {
                xor_into(&mut self.state, &self.last);
                cipher.encrypt_in_place(&mut self.state);
                self.filled = 0;
            }
            let take = (BLOCK_LEN - self.filled).min(data.len());
            self.last[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
        }
    }

    fn finalize(&mut self, key: &CmacKey) -> [u8; BLOCK_LEN] {
        if self.filled == BLOCK_LEN {
            xor_into(&mut self.last, &key.k1[..]);
        } else {
            self.last[self.filled] = 0x80;
            self.last[self.filled + 1..].fill(0);
            xor_into(&mut self.last, &key.k2[..]);
        }
        xor_into(&mut self.state, &self.last);
        key.cipher.encrypt_in_place(&mut self.state);
        self.state
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.state.zeroize();
        self.last.zeroize();
    }
}

/// One CMAC computation under a borrowed [`CmacKey`].
pub struct CmacRun<'k> {
    key: &'k CmacKey,
    progress: Progress,
}

impl CmacRun<'_> {
    /// Absorbs more message bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.progress.update(&self.key.cipher, data);
    }

    /// Finishes and returns the full 16-byte tag.
    pub fn finalize(mut self) -> [u8; BLOCK_LEN] {
        self.progress.finalize(self.key)
    }
}

/// Incremental AES-CMAC over the AES variant matching the key length.
///
/// Useful for MAC chaining (Amd D §6.2.4): feed the chaining value, then the
/// header, then the data, without concatenating buffers. For many messages
/// under one key, prepare a [`CmacKey`] instead.
pub struct CmacState {
    key: CmacKey,
    progress: Progress,
}

impl std::fmt::Debug for CmacState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CmacState([redacted])")
    }
}

impl CmacState {
    /// Starts a CMAC computation under `key`.
    pub fn new(key: &AesKey) -> CmacState {
        CmacState {
            key: CmacKey::new(key),
            progress: Progress::default(),
        }
    }

    /// Absorbs more message bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.progress.update(&self.key.cipher, data);
    }

    /// Finishes and returns the full 16-byte tag.
    pub fn finalize(mut self) -> [u8; BLOCK_LEN] {
        self.progress.finalize(&self.key)
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
    use cmac::{Cmac, Mac};
    use proptest::prelude::*;

    fn reference(key: &AesKey, data: &[u8]) -> [u8; 16] {
        let k = key.expose_secret();
        let tag = match k.len() {
            16 => {
                let mut m = <Cmac<aes::Aes128> as Mac>::new_from_slice(k).unwrap();
                m.update(data);
                m.finalize().into_bytes()
            }
            24 => {
                let mut m = <Cmac<aes::Aes192> as Mac>::new_from_slice(k).unwrap();
                m.update(data);
                m.finalize().into_bytes()
            }
            _ => {
                let mut m = <Cmac<aes::Aes256> as Mac>::new_from_slice(k).unwrap();
                m.update(data);
                m.finalize().into_bytes()
            }
        };
        tag.into()
    }

    proptest! {
        // Every key size, lengths across block boundaries, arbitrary splits.
        #[test]
        fn matches_the_cmac_crate(
            key_len in prop_oneof![Just(16usize), Just(24), Just(32)],
            key_seed in any::<[u8; 32]>(),
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let key = AesKey::from_slice(&key_seed[..key_len]).unwrap();
            let expected = reference(&key, &data);
            prop_assert_eq!(aes_cmac(&key, &data), expected);
            let prepared = CmacKey::new(&key);
            let mut run = prepared.start();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut at = 0;
            for c in cuts {
                run.update(&data[at..c]);
                at = c;
            }
            run.update(&data[at..]);
            prop_assert_eq!(run.finalize(), expected);
        }
    }

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

    #[test]
    fn doubling_reduces_with_0x87() {
        let mut top = [0u8; 16];
        top[0] = 0x80;
        let mut expected = [0u8; 16];
        expected[15] = 0x87;
        assert_eq!(dbl(&top), expected);
        let mut one = [0u8; 16];
        one[15] = 1;
        let mut two = [0u8; 16];
        two[15] = 2;
        assert_eq!(dbl(&one), two);
    }
}
