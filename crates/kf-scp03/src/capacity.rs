//! How many plaintext data bytes fit in one command after SCP03 wrapping.
//!
//! Wrapping grows the data field (GPC Amd D §6.2.4 C-MAC, §6.2.6
//! C-DECRYPTION): with a MAC of `m` bytes (8 in S8 mode, 16 in S16 mode) and
//! the Lc limit of the length form (ISO/IEC 7816-3 §12.1.3: 255 short, 65535
//! extended):
//!
//! | level | wrapped Lc of `n` plaintext bytes | largest `n`, short (S8) | (S16) |
//! |---|---|---|---|
//! | none (`00`) | `n` | 255 | 255 |
//! | C-MAC (`01`, `11`) | `n + m` | 247 | 239 |
//! | C-DEC + C-MAC (`03`, `13`, `33`) | `16·(⌊n/16⌋ + 1) + m` (padding always added) | 239 | 223 |
//!
//! With C-DECRYPTION the largest `n` is `16·⌊(limit − m)/16⌋ − 1`: one byte
//! short of a block multiple, so the mandatory ISO/IEC 9797-1 method 2
//! padding fits in the same block.

use kf_apdu::{MAX_DATA_LEN, MAX_SHORT_DATA_LEN};
use kf_crypto::BLOCK_LEN;

use crate::{Mode, SecurityLevel};

/// Length form of a command APDU (ISO/IEC 7816-3 §12.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthForm {
    /// One-byte Lc: at most 255 data bytes.
    #[default]
    Short,
    /// Three-byte Lc: at most 65535 data bytes.
    Extended,
}

impl LengthForm {
    /// The largest Lc of this form.
    pub const fn lc_limit(self) -> usize {
        match self {
            LengthForm::Short => MAX_SHORT_DATA_LEN,
            LengthForm::Extended => MAX_DATA_LEN,
        }
    }
}

/// Length of `plain_len` bytes once encrypted, for command data (Amd D
/// §6.2.6) and response data (§6.2.7) alike: ISO/IEC 9797-1 method 2
/// padding is always added, so the next block multiple above `plain_len`;
/// no data is not encrypted and stays empty.
pub const fn encrypted_len(plain_len: usize) -> usize {
    if plain_len == 0 {
        0
    } else {
        (plain_len / BLOCK_LEN + 1) * BLOCK_LEN
    }
}

/// Length of the wrapped data field for `plain_len` plaintext bytes: the
/// padded ciphertext when the level encrypts (see [`encrypted_len`]), then
/// the C-MAC when the level has one (§6.2.4).
pub const fn wrapped_data_len(level: SecurityLevel, mode: Mode, plain_len: usize) -> usize {
    let mac = if level.c_mac() { mode.byte_len() } else { 0 };
    let body = if level.c_dec() {
        encrypted_len(plain_len)
    } else {
        plain_len
    };
    body + mac
}

/// Largest plaintext data length whose wrapped form has Lc ≤ `lc_limit`
/// (0 when not even one byte fits).
pub const fn max_plain_data_len(level: SecurityLevel, mode: Mode, lc_limit: usize) -> usize {
    let mac = if level.c_mac() { mode.byte_len() } else { 0 };
    let room = lc_limit.saturating_sub(mac);
    if level.c_dec() {
        (room / BLOCK_LEN * BLOCK_LEN).saturating_sub(1)
    } else {
        room
    }
}

/// How many plaintext data bytes fit in one command at this level, mode and
/// length form.
pub const fn data_bytes_per_apdu(level: SecurityLevel, mode: Mode, form: LengthForm) -> usize {
    max_plain_data_len(level, mode, form.lc_limit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_capacities_match_the_table() {
        let cases = [
            (SecurityLevel::NONE, Mode::S8, 255),
            (SecurityLevel::NONE, Mode::S16, 255),
            (SecurityLevel::C_MAC, Mode::S8, 247),
            (SecurityLevel::C_MAC, Mode::S16, 239),
            (SecurityLevel::C_MAC_R_MAC, Mode::S8, 247),
            (SecurityLevel::C_DEC_C_MAC, Mode::S8, 239),
            (SecurityLevel::C_DEC_C_MAC, Mode::S16, 223),
            (SecurityLevel::C_DEC_C_MAC_R_MAC, Mode::S8, 239),
            (SecurityLevel::FULL, Mode::S8, 239),
            (SecurityLevel::FULL, Mode::S16, 223),
        ];
        for (level, mode, want) in cases {
            assert_eq!(
                data_bytes_per_apdu(level, mode, LengthForm::Short),
                want,
                "{level:?} {mode:?}"
            );
        }
    }

    #[test]
    fn extended_capacities() {
        let ext = LengthForm::Extended;
        for (level, mode, want) in [
            (SecurityLevel::NONE, Mode::S8, 65_535),
            (SecurityLevel::C_MAC, Mode::S8, 65_527),
            (SecurityLevel::C_MAC, Mode::S16, 65_519),
            // 65535 - 8 = 65527 → 4095 blocks = 65520 → 65519.
            (SecurityLevel::FULL, Mode::S8, 65_519),
            // 65535 - 16 = 65519 → 4094 blocks = 65504 → 65503.
            (SecurityLevel::FULL, Mode::S16, 65_503),
        ] {
            assert_eq!(
                data_bytes_per_apdu(level, mode, ext),
                want,
                "{level:?} {mode:?}"
            );
        }
        for (level, mode, limit, want) in [
            // The station's default extended limit of 1024 bytes.
            (SecurityLevel::C_MAC, Mode::S8, 1024, 1016),
            (SecurityLevel::FULL, Mode::S8, 1024, 1007),
            (SecurityLevel::FULL, Mode::S16, 8, 0),
        ] {
            assert_eq!(
                max_plain_data_len(level, mode, limit),
                want,
                "{level:?} {mode:?} {limit}"
            );
        }
    }

    #[test]
    fn encryption_always_pads_to_the_next_block() {
        for (plain, want) in [(0, 0), (1, 16), (15, 16), (16, 32), (239, 240), (240, 256)] {
            assert_eq!(encrypted_len(plain), want, "{plain}");
        }
        assert_eq!(wrapped_data_len(SecurityLevel::C_DEC_C_MAC, Mode::S8, 0), 8);
        assert_eq!(
            wrapped_data_len(SecurityLevel::C_DEC_C_MAC, Mode::S8, 16),
            40
        );
    }

    #[test]
    fn the_largest_length_fits_and_one_more_does_not() {
        for form in [LengthForm::Short, LengthForm::Extended] {
            for level in SecurityLevel::ALL {
                for mode in [Mode::S8, Mode::S16] {
                    let n = data_bytes_per_apdu(level, mode, form);
                    assert!(wrapped_data_len(level, mode, n) <= form.lc_limit());
                    if n < form.lc_limit() || level.c_mac() {
                        assert!(
                            wrapped_data_len(level, mode, n + 1) > form.lc_limit(),
                            "{level:?} {mode:?} {form:?}"
                        );
                    }
                }
            }
        }
    }
}
