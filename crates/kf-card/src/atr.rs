//! The contactless ATR the reader builds for an ISO/IEC 14443-4 card
//! (PC/SC Part 3 v2.02 §3.1.3.2.3.1):
//!
//! ```text
//! 3B 8n 80 01 <historical bytes (n ≤ 15), from the ATS> TCK
//! ```
//!
//! TS = 3B (direct convention); T0 = 8n (TD1 present, n historical bytes);
//! TD1 = 80 (TD2 present, T=0); TD2 = 01 (T=1); TCK = XOR of T0 … last
//! historical byte (ISO/IEC 7816-3 §8.2.5).

/// Historical bytes of the virtual fob (ISO/IEC 7816-4 §8.1.1, compact TLV):
/// category `80`; card capabilities `73 C0 01 C0` (selection by full and
/// partial DF name; command chaining and extended Lc/Le); card issuer's data
/// `54` "JCOP".
pub const JCOP4_HISTORICAL_BYTES: [u8; 10] =
    [0x80, 0x73, 0xC0, 0x01, 0xC0, 0x54, b'J', b'C', b'O', b'P'];

/// Builds the PC/SC part 3 contactless ATR for ISO/IEC 14443-4 historical
/// bytes; more than 15 historical bytes are truncated to 15 (T0 has 4 bits).
pub fn contactless_atr(historical: &[u8]) -> Vec<u8> {
    let historical = &historical[..historical.len().min(15)];
    let mut atr = Vec::with_capacity(historical.len() + 5);
    atr.push(0x3B);
    atr.push(0x80 | historical.len() as u8);
    atr.push(0x80);
    atr.push(0x01);
    atr.extend_from_slice(historical);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_has_a_valid_tck() {
        let atr = contactless_atr(&JCOP4_HISTORICAL_BYTES);
        assert_eq!(&atr[..4], &[0x3B, 0x8A, 0x80, 0x01]);
        assert_eq!(atr.len(), 4 + 10 + 1);
        // XOR of T0..TCK is zero (ISO/IEC 7816-3 §8.2.5).
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    }

    #[test]
    fn empty_historical_bytes_give_tck_01() {
        let atr = contactless_atr(&[]);
        assert_eq!(atr, vec![0x3B, 0x80, 0x80, 0x01, 0x01]);
    }
}
