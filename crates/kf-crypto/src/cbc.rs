//! AES-CBC (NIST SP 800-38A) as used by SCP03 (GPC Amd D §4.1.2, §6.2.6–§6.2.8).

use crate::cipher::BlockCipher;
use crate::padding::{pad_m2, unpad_m2};
use crate::{AesKey, CryptoError, BLOCK_LEN};

/// Encrypts one block with AES-ECB (used for the SCP03 ICVs and key check values).
pub fn ecb_encrypt_block(key: &AesKey, block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let mut b = *block;
    BlockCipher::new(key).encrypt(&mut b);
    b
}

/// CBC-encrypts data whose length is a multiple of 16 (no padding added).
pub fn encrypt_no_pad(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if plain.len() % BLOCK_LEN != 0 {
        return Err(CryptoError::NotBlockAligned { len: plain.len() });
    }
    let cipher = BlockCipher::new(key);
    let mut chain = *iv;
    let mut out = Vec::with_capacity(plain.len());
    for chunk in plain.chunks_exact(BLOCK_LEN) {
        for (c, p) in chain.iter_mut().zip(chunk) {
            *c ^= p;
        }
        cipher.encrypt(&mut chain);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

/// CBC-decrypts data whose length is a multiple of 16 (no padding removed).
pub fn decrypt_no_pad(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    cipher_text: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if cipher_text.len() % BLOCK_LEN != 0 {
        return Err(CryptoError::NotBlockAligned {
            len: cipher_text.len(),
        });
    }
    let cipher = BlockCipher::new(key);
    let mut prev = *iv;
    let mut out = Vec::with_capacity(cipher_text.len());
    for chunk in cipher_text.chunks_exact(BLOCK_LEN) {
        let mut block = [0u8; BLOCK_LEN];
        block.copy_from_slice(chunk);
        let saved = block;
        cipher.decrypt(&mut block);
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        out.extend_from_slice(&block);
        prev = saved;
    }
    Ok(out)
}

/// Pads with ISO 9797-1 method 2 (Amd D §4.1.4) and CBC-encrypts. Always adds
/// padding, a full block when the input is aligned.
pub fn encrypt_m2(key: &AesKey, iv: &[u8; BLOCK_LEN], plain: &[u8]) -> Vec<u8> {
    let padded = zeroize::Zeroizing::new(pad_m2(plain, BLOCK_LEN));
    // The padded length is a multiple of the block length by construction.
    encrypt_no_pad(key, iv, &padded).unwrap_or_default()
}

/// CBC-decrypts and strictly removes method-2 padding.
pub fn decrypt_m2(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    cipher_text: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if cipher_text.is_empty() {
        return Err(CryptoError::NotBlockAligned { len: 0 });
    }
    let plain = zeroize::Zeroizing::new(decrypt_no_pad(key, iv, cipher_text)?);
    Ok(unpad_m2(&plain)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, first two blocks.
    #[test]
    fn nist_sp800_38a_cbc_aes128() {
        let key = AesKey::from_hex("2B7E151628AED2A6ABF7158809CF4F3C").unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090A0B0C0D0E0F")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode("6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51")
            .unwrap();
        let ct = encrypt_no_pad(&key, &iv, &plain).unwrap();
        assert_eq!(
            hex::encode_upper(&ct),
            "7649ABAC8119B246CEE98E9B12E9197D5086CB9B507219EE95DB113A917678B2"
        );
        assert_eq!(decrypt_no_pad(&key, &iv, &ct).unwrap(), plain);
    }

    #[test]
    fn unaligned_input_is_rejected() {
        let key = AesKey::from_slice(&[1u8; 24]).unwrap();
        assert_eq!(
            encrypt_no_pad(&key, &[0; 16], &[0; 15]),
            Err(CryptoError::NotBlockAligned { len: 15 })
        );
        assert_eq!(
            decrypt_no_pad(&key, &[0; 16], &[0; 17]),
            Err(CryptoError::NotBlockAligned { len: 17 })
        );
        assert_eq!(
            decrypt_m2(&key, &[0; 16], &[]),
            Err(CryptoError::NotBlockAligned { len: 0 })
        );
    }

    #[test]
    fn m2_round_trip_all_key_sizes() {
        for len in [16usize, 24, 32] {
            let key = AesKey::from_slice(&vec![0x5Au8; len]).unwrap();
            for n in [0usize, 1, 15, 16, 17, 255] {
                let data = vec![0xA5u8; n];
                let ct = encrypt_m2(&key, &[3; 16], &data);
                assert_eq!(ct.len(), (n / 16 + 1) * 16);
                assert_eq!(decrypt_m2(&key, &[3; 16], &ct).unwrap(), data);
            }
        }
    }
}
