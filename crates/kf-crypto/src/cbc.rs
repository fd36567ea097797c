//! AES-CBC (NIST SP 800-38A) as used by SCP03 (GPC Amd D §4.1.2, §6.2.6–§6.2.8).

use crate::cipher::AesCipher;
use crate::{AesKey, CryptoError, BLOCK_LEN};

// One-shot forms for single operations under a key; a session that reuses
// keys should hold an [`AesCipher`] instead.

/// Encrypts one block with AES-ECB (used for the SCP03 ICVs and key check values).
pub fn ecb_encrypt_block(key: &AesKey, block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    AesCipher::new(key).encrypt_block(block)
}

/// CBC-encrypts data whose length is a multiple of 16 (no padding added).
pub fn encrypt_no_pad(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(plain.len());
    AesCipher::new(key).cbc_encrypt_with(iv, plain, &mut out, |_| ())?;
    Ok(out)
}

/// CBC-decrypts data whose length is a multiple of 16 (no padding removed).
pub fn decrypt_no_pad(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    cipher_text: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    AesCipher::new(key).cbc_decrypt(iv, cipher_text)
}

/// Pads with ISO 9797-1 method 2 (Amd D §4.1.4) and CBC-encrypts. Always adds
/// padding, a full block when the input is aligned.
pub fn encrypt_m2(key: &AesKey, iv: &[u8; BLOCK_LEN], plain: &[u8]) -> Vec<u8> {
    AesCipher::new(key).cbc_encrypt_m2(iv, plain)
}

/// CBC-decrypts and strictly removes method-2 padding.
pub fn decrypt_m2(
    key: &AesKey,
    iv: &[u8; BLOCK_LEN],
    cipher_text: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    AesCipher::new(key).cbc_decrypt_m2(iv, cipher_text)
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
