//! Key and data derivation: NIST SP 800-108 counter mode with AES-CMAC as PRF,
//! in the two layouts this project uses.
//!
//! * SCP03 (GPC Amd D §4.1.5): `11 × '00' ‖ constant ‖ '00' ‖ L(2) ‖ i ‖ context`,
//!   the counter `i` sits *after* L.
//! * NXP KDF3 (the provisioning specification's layout): `i ‖ label(4) ‖ '00' ‖ UID ‖ L(2)`, the
//!   counter sits *first* ("counter before fixed data").

use zeroize::Zeroizing;

use crate::{aes_cmac, AesKey, CmacState, CryptoError, StaticKeys, BLOCK_LEN};

/// Amd D Table 4-1: card authentication cryptogram.
pub const CONST_CARD_CRYPTOGRAM: u8 = 0x00;
/// Amd D Table 4-1: host authentication cryptogram.
pub const CONST_HOST_CRYPTOGRAM: u8 = 0x01;
/// Amd D Table 4-1: pseudo-random card challenge generation.
pub const CONST_CARD_CHALLENGE: u8 = 0x02;
/// Amd D Table 4-1: derivation of S-ENC.
pub const CONST_S_ENC: u8 = 0x04;
/// Amd D Table 4-1: derivation of S-MAC.
pub const CONST_S_MAC: u8 = 0x06;
/// Amd D Table 4-1: derivation of S-RMAC.
pub const CONST_S_RMAC: u8 = 0x07;

/// KDF3 label of the diversified static ENC key.
pub const LABEL_ENC: [u8; 4] = [0x00, 0x00, 0x00, 0x01];
/// KDF3 label of the diversified static MAC key.
pub const LABEL_MAC: [u8; 4] = [0x00, 0x00, 0x00, 0x02];
/// KDF3 label of the diversified static DEK key.
pub const LABEL_DEK: [u8; 4] = [0x00, 0x00, 0x00, 0x03];

/// Number of PRF blocks for `l_bits`, validating the SP 800-108 limits
/// (1-byte counter, whole bytes).
fn block_count(l_bits: u32) -> Result<usize, CryptoError> {
    if l_bits == 0 || l_bits % 8 != 0 || l_bits > 255 * 128 {
        return Err(CryptoError::InvalidKdfLength { bits: l_bits });
    }
    Ok((l_bits as usize).div_ceil(128))
}

/// SP 800-108 KDF in counter mode, PRF = AES-CMAC, 1-byte counter (starting at
/// 1) placed *before* the fixed input data. Returns `l_bits / 8` bytes.
///
/// This is the generic form the NIST CAVP vectors use
/// (`CTRLOCATION=BEFORE_FIXED`, `RLEN=8_BITS`) and the form of [`nxp_kdf3`].
pub fn sp800_108_counter_before(
    key: &AesKey,
    fixed_input: &[u8],
    l_bits: u32,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let blocks = block_count(l_bits)?;
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * BLOCK_LEN));
    for i in 1..=blocks {
        let mut m = CmacState::new(key);
        m.update(&[i as u8]);
        m.update(fixed_input);
        out.extend_from_slice(&m.finalize());
    }
    out.truncate(l_bits as usize / 8);
    Ok(out)
}

/// The SCP03 data derivation scheme (GPC Amd D §4.1.5).
///
/// Input of PRF call `i`: `11 × '00' ‖ constant ‖ '00' ‖ L (2 bytes, bits) ‖ i ‖ context`.
/// `l_bits` must be 64, 128, 192 or 256 ('0040', '0080', '00C0', '0100');
/// 192 and 256 call the PRF twice (i = 01, 02).
pub fn scp03_kdf(
    key: &AesKey,
    constant: u8,
    l_bits: u16,
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if !matches!(l_bits, 64 | 128 | 192 | 256) {
        return Err(CryptoError::InvalidKdfLength {
            bits: u32::from(l_bits),
        });
    }
    let blocks = usize::from(l_bits).div_ceil(128);
    let mut label = [0u8; 16];
    label[11] = constant;
    // label[12] is the separation indicator '00'.
    label[13..15].copy_from_slice(&l_bits.to_be_bytes());
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * BLOCK_LEN));
    for i in 1..=blocks {
        label[15] = i as u8;
        let mut m = CmacState::new(key);
        m.update(&label);
        m.update(context);
        out.extend_from_slice(&m.finalize());
    }
    out.truncate(usize::from(l_bits) / 8);
    Ok(out)
}

/// Derives a session key of the same length as `key` with the SCP03 KDF
/// (Amd D §6.2.1: S-ENC '04', S-MAC '06', S-RMAC '07').
pub fn scp03_derive_key(key: &AesKey, constant: u8, context: &[u8]) -> Result<AesKey, CryptoError> {
    let bytes = scp03_kdf(key, constant, key.bits(), context)?;
    AesKey::from_slice(&bytes)
}

/// NXP KDF3 in the project layout: PRF input `i ‖ label(4) ‖ '00' ‖ UID ‖ L(2)`
/// with `L` = master key length in bits and `i` = 01, 02 for as many CMAC blocks
/// as the master key length needs. The derived key has the master key's length.
///
/// Difference from NXP AN10922 §2.2: AN10922 pads the CMAC input to 32 bytes
/// with its own 80 00.. padding and subkey K2. For the 10-byte UIDs of this
/// project the message is 18 bytes, where both coincide (standard CMAC also pads
/// a partial last block and uses K2). For shorter inputs (e.g. a 7-byte UID) the
/// two differ, so the UID length is pinned by the caller's data model, not here.
pub fn nxp_kdf3(master: &AesKey, label: [u8; 4], uid: &[u8]) -> Result<AesKey, CryptoError> {
    let l_bits = master.bits();
    let fixed = kdf3_fixed_input(label, uid, l_bits);
    let bytes = sp800_108_counter_before(master, &fixed, u32::from(l_bits))?;
    AesKey::from_slice(&bytes)
}

/// The fixed input data of [`nxp_kdf3`]: `label(4) ‖ '00' ‖ UID ‖ L(2)`, `L` the master key
/// length in bits.
pub fn kdf3_fixed_input(label: [u8; 4], uid: &[u8], l_bits: u16) -> Vec<u8> {
    let mut fixed = Vec::with_capacity(4 + 1 + uid.len() + 2);
    fixed.extend_from_slice(&label);
    fixed.push(0x00);
    fixed.extend_from_slice(uid);
    fixed.extend_from_slice(&l_bits.to_be_bytes());
    fixed
}

/// The PRF input of [`nxp_kdf3`]'s block `i` (1-based; the counter comes before the fixed
/// data): `i ‖ label(4) ‖ '00' ‖ UID ‖ L(2)`. For a PRF computed elsewhere, such as
/// `CKM_AES_CMAC` in a PKCS#11 token holding the master key.
pub fn kdf3_prf_input(i: u8, label: [u8; 4], uid: &[u8], l_bits: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + 4 + 1 + uid.len() + 2);
    m.push(i);
    m.extend_from_slice(&kdf3_fixed_input(label, uid, l_bits));
    m
}

/// The static-key labels in the order of [`StaticKeys::new`] (ENC, MAC, DEK).
pub const STATIC_KEY_LABELS: [[u8; 4]; 3] = [LABEL_ENC, LABEL_MAC, LABEL_DEK];

/// Diversifies a fob's static key set from a master key and UID with
/// [`nxp_kdf3`] and the labels [`LABEL_ENC`], [`LABEL_MAC`], [`LABEL_DEK`].
pub fn diversify_static_keys(master: &AesKey, uid: &[u8]) -> Result<StaticKeys, CryptoError> {
    let [enc, mac, dek] = STATIC_KEY_LABELS;
    StaticKeys::new(
        nxp_kdf3(master, enc, uid)?,
        nxp_kdf3(master, mac, uid)?,
        nxp_kdf3(master, dek, uid)?,
    )
}

/// AN10922 AES-128 diversification primitive as published: `CMAC(key, 01 ‖ M)`
/// for a diversification input `M` of 16..=31 bytes. Shorter `M` would need the
/// AN10922-specific padding, which this project does not use; it is rejected.
pub fn an10922_aes128(key: &AesKey, m: &[u8]) -> Result<AesKey, CryptoError> {
    if !(16..=31).contains(&m.len()) || key.len() != 16 {
        return Err(CryptoError::InvalidKdfLength {
            bits: (m.len() * 8) as u32,
        });
    }
    let mut input = Vec::with_capacity(1 + m.len());
    input.push(0x01);
    input.extend_from_slice(m);
    let tag = Zeroizing::new(aes_cmac(key, &input));
    AesKey::from_slice(tag.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp03_kdf_rejects_unsupported_lengths() {
        let k = AesKey::from_slice(&[0u8; 16]).unwrap();
        for bits in [0u16, 8, 63, 65, 120, 512] {
            assert_eq!(
                scp03_kdf(&k, 0, bits, &[]).unwrap_err(),
                CryptoError::InvalidKdfLength {
                    bits: u32::from(bits)
                }
            );
        }
    }

    #[test]
    fn scp03_kdf_layout_matches_manual_cmac() {
        let k = AesKey::from_slice(&[0x11u8; 16]).unwrap();
        let ctx = [0xAAu8; 16];
        let mut msg = vec![0u8; 11];
        msg.extend_from_slice(&[0x06, 0x00, 0x01, 0x00, 0x02]);
        msg.extend_from_slice(&ctx);
        let second = aes_cmac(&k, &msg);
        let out = scp03_kdf(&k, 0x06, 256, &ctx).unwrap();
        assert_eq!(out.len(), 32);
        assert_eq!(&out[16..], &second);
        let short = scp03_kdf(&k, 0x06, 192, &ctx).unwrap();
        assert_eq!(short.len(), 24);
        // L is part of the input, so the 192-bit output is not a prefix of the 256-bit one.
        assert_ne!(&short[..], &out[..24]);
    }

    #[test]
    fn kdf3_with_aes256_master_uses_two_blocks() {
        let master = AesKey::from_slice(&[0x42u8; 32]).unwrap();
        let uid = [0x04u8; 10];
        let k = nxp_kdf3(&master, LABEL_ENC, &uid).unwrap();
        assert_eq!(k.len(), 32);
        let mut m2 = vec![0x02];
        m2.extend_from_slice(&LABEL_ENC);
        m2.push(0);
        m2.extend_from_slice(&uid);
        m2.extend_from_slice(&[0x01, 0x00]);
        assert_eq!(&k.expose_secret()[16..], &aes_cmac(&master, &m2));
    }
}
