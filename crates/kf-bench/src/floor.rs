//! The AES reference of one APDU: how long the block cipher work alone takes.
//!
//! SCP03 per APDU is AES-128 block operations (GPC Amd D §6.2.4–§6.2.7):
//! C-DECRYPTION = 1 ICV + one per padded block, C-MAC = CMAC over chaining
//! value ‖ header ‖ Lc ‖ data (+ 1 for the CMAC subkey), and the same on the
//! response side for R-MAC and R-ENCRYPTION. [`AesFloor`] runs that many
//! AES-128 encryptions back to back, each depending on the previous one (as
//! in CBC encryption and CMAC), with the key schedule prepared once: the
//! cipher work with no key expansion, allocation, copying or parsing. It is a
//! reference, not a strict lower bound (CBC decryption and the CMAC subkeys
//! could run in parallel with other blocks).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use kf_scp03::{encrypted_len, SecurityLevel};

use crate::measure::Batched;
use crate::BenchError;

const BLOCK: usize = 16;
/// Chaining value (16) ‖ CLA INS P1 P2 (4) ‖ short Lc (1).
const C_MAC_PREFIX: usize = 16 + 4 + 1;
/// Chaining value (16) before the response data, SW (2) after it.
const R_MAC_OVERHEAD: usize = 16 + 2;

fn cmac_blocks(message_len: usize) -> usize {
    message_len.div_ceil(BLOCK).max(1) + 1
}

/// AES-128 block operations the host performs for one APDU (wrap a command
/// with `payload_len` bytes, unwrap a response with `response_len` bytes),
/// S8 mode, short APDUs.
pub fn host_block_operations(
    level: SecurityLevel,
    payload_len: usize,
    response_len: usize,
) -> usize {
    let mut ops = 0;
    if level.c_mac() {
        ops += direction_operations(level.c_dec(), payload_len, C_MAC_PREFIX);
    }
    if level.r_mac() {
        ops += direction_operations(level.r_enc(), response_len, R_MAC_OVERHEAD);
    }
    ops
}

/// Block operations for one MACed direction of an APDU: with `encrypted`
/// and data, the IV block and the CBC blocks of the padded data, then the
/// CMAC over `mac_overhead` bytes and the (padded) data.
fn direction_operations(encrypted: bool, len: usize, mac_overhead: usize) -> usize {
    let body = if encrypted { encrypted_len(len) } else { len };
    let cipher = if encrypted && body > 0 {
        1 + body / BLOCK
    } else {
        0
    };
    cipher + cmac_blocks(mac_overhead + body)
}

/// `blocks` dependent AES-128 encryptions with a prepared key schedule.
pub struct AesFloor {
    cipher: aes::Aes128Enc,
    blocks: usize,
    /// The block after the last batch (kept so the work cannot be skipped).
    last: [u8; BLOCK],
}

impl std::fmt::Debug for AesFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesFloor")
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

impl AesFloor {
    /// A reference of `blocks` block operations per item (a fixed, public key).
    pub fn new(blocks: usize) -> AesFloor {
        AesFloor {
            cipher: aes::Aes128Enc::new(GenericArray::from_slice(&[0x40; BLOCK])),
            blocks,
            last: [0x5A; BLOCK],
        }
    }
}

impl Batched for AesFloor {
    fn run_batch(&mut self, count: usize) -> Result<Duration, BenchError> {
        let mut block = GenericArray::from([0x5A; BLOCK]);
        let start = Instant::now();
        for _ in 0..count {
            for i in 0..self.blocks {
                block[0] ^= i as u8;
                self.cipher.encrypt_block(&mut block);
            }
            black_box(&block);
        }
        let elapsed = start.elapsed();
        self.last = block.into();
        Ok(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::per_item_ns;

    #[test]
    fn block_counts_of_the_largest_apdu() {
        // 239 B: ICV 1 + 15 encrypted blocks + CMAC over 16+5+240 = 17 blocks + subkey 1.
        assert_eq!(
            host_block_operations(SecurityLevel::C_DEC_C_MAC, 239, 0),
            34
        );
        // + R-MAC over 16+240+2 = 17 blocks + subkey 1, ICV 1, 15 decrypted blocks.
        assert_eq!(host_block_operations(SecurityLevel::FULL, 239, 239), 68);
        // C-MAC only: 16+5+239 = 260 B = 17 blocks + subkey.
        assert_eq!(host_block_operations(SecurityLevel::C_MAC, 239, 239), 18);
        assert_eq!(host_block_operations(SecurityLevel::NONE, 239, 239), 0);
    }

    /// The block after `count` items of `blocks` dependent encryptions, by the
    /// `aes` crate's one-shot block API, outside [`AesFloor`].
    fn expected_last(blocks: usize, count: usize) -> [u8; BLOCK] {
        let cipher = aes::Aes128::new(&[0x40; BLOCK].into());
        let mut block: aes::Block = [0x5A; BLOCK].into();
        for _ in 0..count {
            for i in 0..blocks {
                block[0] ^= i as u8;
                cipher.encrypt_block(&mut block);
            }
        }
        block.into()
    }

    #[test]
    fn the_floor_chains_blocks_times_items_encryptions() {
        let mut floor = AesFloor::new(34);
        let samples = per_item_ns(&mut floor, 3, 5).unwrap();
        assert_eq!(samples.len(), 3);
        // Each batch starts from the same block: 5 items of 34 encryptions.
        assert_eq!(floor.last, expected_last(34, 5));
        assert_ne!(floor.last, expected_last(34, 4));
        assert_ne!(floor.last, expected_last(33, 5));
    }
}
