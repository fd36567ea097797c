//! Dispatch over AES-128/192/256 chosen by key length.

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};

use crate::{AesKey, BLOCK_LEN};

/// A keyed AES block cipher; the `aes` crate zeroizes its round keys on drop.
pub(crate) enum BlockCipher {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl BlockCipher {
    pub(crate) fn new(key: &AesKey) -> Self {
        let k = key.expose_secret();
        // AesKey guarantees one of the three lengths, so the arms below are total.
        match k.len() {
            16 => BlockCipher::A128(Aes128::new(GenericArray::from_slice(k))),
            24 => BlockCipher::A192(Aes192::new(GenericArray::from_slice(k))),
            _ => BlockCipher::A256(Aes256::new(GenericArray::from_slice(k))),
        }
    }

    pub(crate) fn encrypt(&self, block: &mut [u8; BLOCK_LEN]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            BlockCipher::A128(c) => c.encrypt_block(b),
            BlockCipher::A192(c) => c.encrypt_block(b),
            BlockCipher::A256(c) => c.encrypt_block(b),
        }
    }

    pub(crate) fn decrypt(&self, block: &mut [u8; BLOCK_LEN]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            BlockCipher::A128(c) => c.decrypt_block(b),
            BlockCipher::A192(c) => c.decrypt_block(b),
            BlockCipher::A256(c) => c.decrypt_block(b),
        }
    }
}
