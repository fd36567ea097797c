//! A prepared AES cipher (128/192/256 chosen by key length) and the CBC mode
//! of SCP03 on top of it (NIST SP 800-38A; GPC Amd D §4.1.2, §6.2.6–§6.2.7).
//!
//! A session wraps and unwraps many APDUs under the same keys, so the key
//! schedule is computed once here instead of once per operation.

use std::fmt;

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use zeroize::{Zeroize, Zeroizing};

use crate::padding::unpad_m2;
use crate::{AesKey, CryptoError, BLOCK_LEN};

/// Blocks handed to the AES backend at once when decrypting CBC: AES-NI
/// pipelines up to eight independent blocks.
const PAR_BLOCKS: usize = 8;

type Block = GenericArray<u8, aes::cipher::consts::U16>;

/// An AES key schedule prepared once for many block operations. The `aes`
/// crate zeroizes its round keys on drop; `Debug` shows no key material.
#[derive(Clone)]
pub struct AesCipher(Inner);

#[derive(Clone)]
enum Inner {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl fmt::Debug for AesCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = match self.0 {
            Inner::A128(_) => 128,
            Inner::A192(_) => 192,
            Inner::A256(_) => 256,
        };
        write!(f, "AesCipher(AES-{bits}, [redacted])")
    }
}

impl AesCipher {
    /// Expands `key` into encryption and decryption round keys.
    pub fn new(key: &AesKey) -> AesCipher {
        let k = key.expose_secret();
        // AesKey guarantees one of the three lengths, so the arms below are total.
        AesCipher(match k.len() {
            16 => Inner::A128(Aes128::new(GenericArray::from_slice(k))),
            24 => Inner::A192(Aes192::new(GenericArray::from_slice(k))),
            _ => Inner::A256(Aes256::new(GenericArray::from_slice(k))),
        })
    }

    /// Encrypts one block in place (AES-ECB).
    pub fn encrypt_in_place(&self, block: &mut [u8; BLOCK_LEN]) {
        let b = GenericArray::from_mut_slice(block);
        match &self.0 {
            Inner::A128(c) => c.encrypt_block(b),
            Inner::A192(c) => c.encrypt_block(b),
            Inner::A256(c) => c.encrypt_block(b),
        }
    }

    /// Encrypts one block (AES-ECB; the SCP03 ICVs and key check values).
    pub fn encrypt_block(&self, block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
        let mut b = *block;
        self.encrypt_in_place(&mut b);
        b
    }

    fn decrypt_par(&self, blocks: &mut [Block]) {
        match &self.0 {
            Inner::A128(c) => c.decrypt_blocks(blocks),
            Inner::A192(c) => c.decrypt_blocks(blocks),
            Inner::A256(c) => c.decrypt_blocks(blocks),
        }
    }

    /// CBC-encrypts block-aligned `plain`, appending to `out` and handing each
    /// ciphertext block to `each_block` as soon as it exists.
    pub fn cbc_encrypt_with(
        &self,
        iv: &[u8; BLOCK_LEN],
        plain: &[u8],
        out: &mut Vec<u8>,
        mut each_block: impl FnMut(&[u8; BLOCK_LEN]),
    ) -> Result<(), CryptoError> {
        if plain.len() % BLOCK_LEN != 0 {
            return Err(CryptoError::NotBlockAligned { len: plain.len() });
        }
        out.reserve(plain.len());
        self.cbc_chain(iv, plain, out, &mut each_block);
        Ok(())
    }

    /// CBC over whole blocks starting from `iv`; returns the last ciphertext block.
    fn cbc_chain(
        &self,
        iv: &[u8; BLOCK_LEN],
        aligned: &[u8],
        out: &mut Vec<u8>,
        each_block: &mut impl FnMut(&[u8; BLOCK_LEN]),
    ) -> [u8; BLOCK_LEN] {
        let mut chain = *iv;
        for chunk in aligned.chunks_exact(BLOCK_LEN) {
            xor_into(&mut chain, chunk);
            self.encrypt_in_place(&mut chain);
            out.extend_from_slice(&chain);
            each_block(&chain);
        }
        chain
    }

    /// Pads `plain` with ISO 9797-1 method 2 (always, a full block when it is
    /// aligned; Amd D §4.1.4) and CBC-encrypts it, appending to `out` and
    /// handing each ciphertext block to `each_block` as soon as it exists.
    ///
    /// The callback lets a MAC over the ciphertext (SCP03's C-MAC and R-MAC)
    /// run block by block beside the encryption: the two AES chains are
    /// independent after each block, so the CPU overlaps them.
    pub fn cbc_encrypt_m2_with(
        &self,
        iv: &[u8; BLOCK_LEN],
        plain: &[u8],
        out: &mut Vec<u8>,
        mut each_block: impl FnMut(&[u8; BLOCK_LEN]),
    ) {
        let full = plain.len() / BLOCK_LEN * BLOCK_LEN;
        out.reserve(full + BLOCK_LEN);
        let mut chain = self.cbc_chain(iv, &plain[..full], out, &mut each_block);
        let rest = &plain[full..];
        let mut last = Zeroizing::new([0u8; BLOCK_LEN]);
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 0x80;
        xor_into(&mut chain, &last[..]);
        self.encrypt_in_place(&mut chain);
        out.extend_from_slice(&chain);
        each_block(&chain);
    }

    /// [`Self::cbc_encrypt_m2_with`] into a new vector.
    pub fn cbc_encrypt_m2(&self, iv: &[u8; BLOCK_LEN], plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() / BLOCK_LEN * BLOCK_LEN + BLOCK_LEN);
        self.cbc_encrypt_m2_with(iv, plain, &mut out, |_| ());
        out
    }

    /// CBC-decrypts block-aligned data (no padding removed). Blocks are
    /// decrypted [`PAR_BLOCKS`] at a time: CBC decryption has no chain.
    pub fn cbc_decrypt(
        &self,
        iv: &[u8; BLOCK_LEN],
        cipher_text: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if cipher_text.len() % BLOCK_LEN != 0 {
            return Err(CryptoError::NotBlockAligned {
                len: cipher_text.len(),
            });
        }
        let mut out = Vec::with_capacity(cipher_text.len());
        let mut prev: &[u8] = iv;
        let mut group = [Block::default(); PAR_BLOCKS];
        for chunk in cipher_text.chunks(PAR_BLOCKS * BLOCK_LEN) {
            let n = chunk.len() / BLOCK_LEN;
            for (slot, c) in group.iter_mut().zip(chunk.chunks_exact(BLOCK_LEN)) {
                slot.copy_from_slice(c);
            }
            self.decrypt_par(&mut group[..n]);
            for (plain, c) in group[..n].iter().zip(chunk.chunks_exact(BLOCK_LEN)) {
                out.extend(plain.iter().zip(prev).map(|(p, q)| p ^ q));
                prev = c;
            }
        }
        group.iter_mut().for_each(|b| b.as_mut_slice().zeroize());
        Ok(out)
    }

    /// CBC-decrypts and strictly removes method-2 padding.
    pub fn cbc_decrypt_m2(
        &self,
        iv: &[u8; BLOCK_LEN],
        cipher_text: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if cipher_text.is_empty() {
            return Err(CryptoError::NotBlockAligned { len: 0 });
        }
        let mut plain = Zeroizing::new(self.cbc_decrypt(iv, cipher_text)?);
        let len = unpad_m2(&plain)?.len();
        plain.truncate(len);
        Ok(std::mem::take(&mut *plain))
    }
}

/// XORs `data` into `acc` (CBC chaining, CMAC).
pub(crate) fn xor_into(acc: &mut [u8; BLOCK_LEN], data: &[u8]) {
    for (a, d) in acc.iter_mut().zip(data) {
        *a ^= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(len: usize) -> AesKey {
        AesKey::from_slice(&(0..len as u8).collect::<Vec<_>>()).unwrap()
    }

    // One block with the `aes` crate's type for the key's length.
    fn reference_block(k: &AesKey, block: &mut Block, encrypt: bool) {
        let key = k.expose_secret();
        macro_rules! run {
            ($aes:ty) => {{
                let c = <$aes>::new_from_slice(key).unwrap();
                if encrypt {
                    c.encrypt_block(block)
                } else {
                    c.decrypt_block(block)
                }
            }};
        }
        match key.len() {
            16 => run!(Aes128),
            24 => run!(Aes192),
            _ => run!(Aes256),
        }
    }

    // Reference CBC decryption one block at a time.
    fn serial_decrypt(k: &AesKey, iv: &[u8; 16], ct: &[u8]) -> Vec<u8> {
        let mut prev = iv.to_vec();
        let mut out = Vec::new();
        for chunk in ct.chunks_exact(16) {
            let mut b = Block::clone_from_slice(chunk);
            reference_block(k, &mut b, false);
            out.extend(b.iter().zip(&prev).map(|(p, q)| p ^ q));
            prev = chunk.to_vec();
        }
        out
    }

    // Reference CBC encryption of ISO/IEC 9797-1 method 2 padded data (`80`, then
    // zeros to the block), one block at a time.
    fn serial_encrypt_m2(k: &AesKey, iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
        let mut padded = plain.to_vec();
        padded.push(0x80);
        padded.resize(padded.len().div_ceil(16) * 16, 0);
        let mut prev = Block::clone_from_slice(iv);
        let mut out = Vec::new();
        for chunk in padded.chunks_exact(16) {
            let mut b = Block::clone_from_slice(chunk);
            b.iter_mut().zip(prev.iter()).for_each(|(x, p)| *x ^= p);
            reference_block(k, &mut b, true);
            out.extend_from_slice(&b);
            prev = b;
        }
        out
    }

    proptest! {
        // Lengths cross the 8-block groups of the parallel decryption.
        #[test]
        fn parallel_decrypt_matches_serial(
            plain in proptest::collection::vec(any::<u8>(), 0..400),
            iv in any::<[u8; 16]>(),
            key_len in prop::sample::select(vec![16usize, 24, 32]),
        ) {
            let k = key(key_len);
            let c = AesCipher::new(&k);
            let ct = c.cbc_encrypt_m2(&iv, &plain);
            prop_assert_eq!(&ct, &serial_encrypt_m2(&k, &iv, &plain));
            prop_assert_eq!(ct.len(), plain.len() / 16 * 16 + 16);
            let padded = c.cbc_decrypt(&iv, &ct).unwrap();
            prop_assert_eq!(&padded, &serial_decrypt(&k, &iv, &ct));
            prop_assert_eq!(c.cbc_decrypt_m2(&iv, &ct).unwrap(), plain);
        }
    }

    #[test]
    fn callback_sees_each_ciphertext_block_in_order() {
        for len in [16usize, 24, 32] {
            let c = AesCipher::new(&key(len));
            for n in [0usize, 1, 15, 16, 17, 239] {
                let plain = vec![0x42u8; n];
                let mut out = Vec::new();
                let mut seen = Vec::new();
                c.cbc_encrypt_m2_with(&[7; 16], &plain, &mut out, |b| seen.extend_from_slice(b));
                assert_eq!(seen, out);
                assert_eq!(out, serial_encrypt_m2(&key(len), &[7; 16], &plain));
            }
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let text = format!("{:?}", AesCipher::new(&key(16)));
        assert_eq!(text, "AesCipher(AES-128, [redacted])");
    }

    #[test]
    fn unaligned_or_empty_is_rejected() {
        let c = AesCipher::new(&key(16));
        let unaligned = |len| CryptoError::NotBlockAligned { len };
        assert_eq!(c.cbc_decrypt(&[0; 16], &[0; 17]), Err(unaligned(17)));
        assert_eq!(c.cbc_decrypt_m2(&[0; 16], &[]), Err(unaligned(0)));
        assert_eq!(
            c.cbc_encrypt_with(&[0; 16], &[0; 3], &mut Vec::new(), |_| ()),
            Err(unaligned(3))
        );
    }
}
