//! The answer-to-reset: where its historical bytes are (ISO/IEC 7816-3
//! §8.2) and what the card says it can do in them (ISO/IEC 7816-4 §8.1.1).
//!
//! ```text
//! TS T0 {TAi TBi TCi TDi}… historical bytes (K = T0 & 0F) [TCK]
//!                          └─ category 80: compact-TLV objects
//!                             tag 7 "card capabilities": 3rd byte b8 chaining, b7 extended Lc/Le
//! ```
//!
//! A contactless reader builds the ATR from the card's ATS (PC/SC Part 3
//! §3.1.3.2.3.1); the historical bytes are the card's own.

/// Why an ATR could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtrError {
    /// Shorter than TS and T0.
    #[error("ATR of {0} bytes: shorter than TS and T0")]
    TooShort(usize),
    /// TS is neither 3B (direct) nor 3F (inverse convention).
    #[error("ATR starts with {0:02X}, not 3B or 3F")]
    BadTs(u8),
    /// The interface or historical bytes announced run past the end.
    #[error("ATR of {len} bytes ends inside its interface or historical bytes")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// Bytes after the historical bytes and TCK.
    #[error("ATR has {0} bytes after its historical bytes and TCK")]
    TrailingBytes(usize),
    /// The check byte does not make the XOR of T0…TCK zero.
    #[error("ATR check byte TCK is wrong")]
    BadTck,
}

/// The historical bytes of `atr`, after checking its structure and, where
/// one is due (a protocol other than T=0 announced), its check byte TCK.
pub fn historical_bytes(atr: &[u8]) -> Result<&[u8], AtrError> {
    let [ts, t0, ..] = *atr else {
        return Err(AtrError::TooShort(atr.len()));
    };
    if ts != 0x3B && ts != 0x3F {
        return Err(AtrError::BadTs(ts));
    }
    let truncated = AtrError::Truncated { len: atr.len() };
    let mut at = 2;
    let mut indicator = t0 >> 4;
    let mut tck_due = false;
    loop {
        // TAi, TBi, TCi, then TDi, each present when its bit is set.
        at += [0, 1, 1, 2, 1, 2, 2, 3][usize::from(indicator & 0x07)];
        if indicator & 0x08 == 0 {
            break;
        }
        let td = *atr.get(at).ok_or_else(|| truncated.clone())?;
        at += 1;
        tck_due |= td & 0x0F != 0;
        indicator = td >> 4;
    }
    let end = at + usize::from(t0 & 0x0F);
    let historical = atr.get(at..end).ok_or_else(|| truncated.clone())?;
    let expected = end + usize::from(tck_due);
    if atr.len() < expected {
        return Err(truncated);
    }
    if atr.len() > expected {
        return Err(AtrError::TrailingBytes(atr.len() - expected));
    }
    if tck_due && atr[1..].iter().fold(0u8, |acc, b| acc ^ b) != 0 {
        return Err(AtrError::BadTck);
    }
    Ok(historical)
}

/// What the card's "card capabilities" (compact-TLV tag 7, ISO/IEC 7816-4
/// §8.1.1.2.7, third software function table) announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CardCapabilities {
    /// Command chaining (b8).
    pub command_chaining: bool,
    /// Extended Lc and Le fields (b7).
    pub extended_length: bool,
}

/// The card capabilities in `historical` bytes, when they are compact-TLV
/// (category indicator 00 or 80) and hold a tag-7 object of three bytes
/// or more; `None` otherwise (the card says nothing).
pub fn card_capabilities(historical: &[u8]) -> Option<CardCapabilities> {
    let objects = match historical.split_first()? {
        (0x80, rest) => rest,
        // Category 00: the last three bytes are a status indicator.
        (0x00, rest) => rest.get(..rest.len().checked_sub(3)?)?,
        _ => return None,
    };
    let mut rest = objects;
    while let Some((&tag_len, tail)) = rest.split_first() {
        let len = usize::from(tag_len & 0x0F);
        let value = tail.get(..len)?;
        if tag_len >> 4 == 0x7 {
            let third = *value.get(2)?;
            return Some(CardCapabilities {
                command_chaining: third & 0x80 != 0,
                extended_length: third & 0x40 != 0,
            });
        }
        rest = &tail[len..];
    }
    None
}

/// Whether the card behind `atr` announces extended Lc and Le fields; a
/// malformed ATR or one that says nothing announces nothing.
pub fn announces_extended_length(atr: &[u8]) -> bool {
    historical_bytes(atr)
        .ok()
        .and_then(card_capabilities)
        .is_some_and(|c| c.extended_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JCOP 4 contactless ATR as a PC/SC reader builds it: 3B 8A 80 01,
    /// historical bytes 80 73 C0 01 C0 54 "JCOP", TCK.
    const CONTACTLESS: [u8; 15] = [
        0x3B, 0x8A, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x01, 0xC0, 0x54, 0x4A, 0x43, 0x4F, 0x50, 0xBB,
    ];

    #[test]
    fn the_contactless_atr_has_its_historical_bytes_and_capabilities() {
        let tck = CONTACTLESS[1..14].iter().fold(0u8, |a, b| a ^ b);
        assert_eq!(tck, CONTACTLESS[14]);
        let historical = historical_bytes(&CONTACTLESS).unwrap();
        assert_eq!(historical, &CONTACTLESS[4..14]);
        assert_eq!(
            card_capabilities(historical),
            Some(CardCapabilities {
                command_chaining: true,
                extended_length: true
            })
        );
        assert!(announces_extended_length(&CONTACTLESS));
    }

    #[test]
    fn a_t0_atr_has_no_check_byte() {
        // 3B 02 14 50: T0 = 02 (no interface bytes, two historical bytes).
        assert_eq!(
            historical_bytes(&[0x3B, 0x02, 0x14, 0x50]),
            Ok(&[0x14, 0x50][..])
        );
        // TA1 TB1 TC1 present, no TD1: T=0 only, no TCK.
        assert_eq!(
            historical_bytes(&[0x3B, 0x71, 0x11, 0x00, 0xFF, 0x80]),
            Ok(&[0x80][..])
        );
    }

    #[test]
    fn malformed_atrs_are_refused() {
        assert_eq!(historical_bytes(&[0x3B]), Err(AtrError::TooShort(1)));
        assert_eq!(historical_bytes(&[0x12, 0x00]), Err(AtrError::BadTs(0x12)));
        assert_eq!(
            historical_bytes(&CONTACTLESS[..14]),
            Err(AtrError::Truncated { len: 14 })
        );
        let mut extra = CONTACTLESS.to_vec();
        extra.push(0);
        assert_eq!(historical_bytes(&extra), Err(AtrError::TrailingBytes(1)));
        let mut bad = CONTACTLESS;
        bad[14] ^= 1;
        assert_eq!(historical_bytes(&bad), Err(AtrError::BadTck));
        assert!(!announces_extended_length(&bad));
        // TD chain running past the end.
        assert_eq!(
            historical_bytes(&[0x3B, 0x80, 0x80]),
            Err(AtrError::Truncated { len: 3 })
        );
    }

    #[test]
    fn capabilities_are_found_only_where_announced() {
        // Without b7: chaining only.
        assert_eq!(
            card_capabilities(&[0x80, 0x73, 0x00, 0x00, 0x80]),
            Some(CardCapabilities {
                command_chaining: true,
                extended_length: false
            })
        );
        // Category 00 with the status indicator at the end.
        assert_eq!(
            card_capabilities(&[0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x90, 0x00])
                .map(|c| c.extended_length),
            Some(true)
        );
        // Nothing announced, a proprietary category, a short or cut object.
        assert_eq!(
            card_capabilities(&[0x80, 0x54, 0x4A, 0x43, 0x4F, 0x50]),
            None
        );
        assert_eq!(card_capabilities(&[0x4A, 0x43]), None);
        assert_eq!(card_capabilities(&[0x80, 0x72, 0x00, 0x00]), None);
        assert_eq!(card_capabilities(&[0x80, 0x73, 0x00]), None);
        assert_eq!(card_capabilities(&[]), None);
        assert_eq!(card_capabilities(&[0x00, 0x90]), None);
    }
}
