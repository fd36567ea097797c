//! ISO/IEC 9797-1 padding method 2, as SCP03 uses it (GPC Amd D §4.1.4):
//! append '80', then '00' up to a multiple of the block length.

use crate::CryptoError;

/// Pads `data` with '80' and zeros to a multiple of `block` bytes. A full block
/// of padding is added when `data` is already aligned. A `block` of 0 is treated as 1.
pub fn pad_m2(data: &[u8], block: usize) -> Vec<u8> {
    let block = block.max(1);
    let padded_len = (data.len() / block + 1) * block;
    let mut out = Vec::with_capacity(padded_len);
    out.extend_from_slice(data);
    out.push(0x80);
    out.resize(padded_len, 0x00);
    out
}

/// Removes method-2 padding strictly: the data must end in '80' followed by
/// zero bytes only (at most 15 of them, so the padding fits in one AES block).
pub fn unpad_m2(data: &[u8]) -> Result<&[u8], CryptoError> {
    let mut zeros = 0usize;
    for (pos, &b) in data.iter().enumerate().rev() {
        match b {
            0x00 => {
                zeros += 1;
                if zeros >= crate::BLOCK_LEN {
                    return Err(CryptoError::InvalidPadding);
                }
            }
            0x80 => return Ok(&data[..pos]),
            _ => return Err(CryptoError::InvalidPadding),
        }
    }
    Err(CryptoError::InvalidPadding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pads_a_full_block_when_aligned() {
        assert_eq!(pad_m2(&[], 16), {
            let mut v = vec![0u8; 16];
            v[0] = 0x80;
            v
        });
        let p = pad_m2(&[1u8; 16], 16);
        assert_eq!(p.len(), 32);
        assert_eq!(p[16], 0x80);
        assert_eq!(pad_m2(&[1, 2, 3], 8), vec![1, 2, 3, 0x80, 0, 0, 0, 0]);
    }

    #[test]
    fn unpad_rejects_malformed_padding() {
        assert_eq!(unpad_m2(&[]), Err(CryptoError::InvalidPadding));
        assert_eq!(unpad_m2(&[0, 0]), Err(CryptoError::InvalidPadding));
        assert_eq!(unpad_m2(&[1, 0x80, 1]), Err(CryptoError::InvalidPadding));
        let mut too_long = vec![0x80];
        too_long.extend_from_slice(&[0u8; 16]);
        assert_eq!(unpad_m2(&too_long), Err(CryptoError::InvalidPadding));
        assert_eq!(unpad_m2(&[5, 0x80, 0, 0]).unwrap(), &[5]);
        assert_eq!(unpad_m2(&[0x80]).unwrap(), &[] as &[u8]);
    }

    proptest! {
        #[test]
        fn pad_then_unpad_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let p = pad_m2(&data, 16);
            prop_assert_eq!(p.len() % 16, 0);
            prop_assert!(p.len() > data.len());
            prop_assert_eq!(unpad_m2(&p).unwrap(), data.as_slice());
        }

        #[test]
        fn unpad_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Only the absence of a panic is under test; errors are expected.
            let _ = unpad_m2(&data);
        }
    }
}
