//! STORE DATA (GPC 2.3.1 §11.11).

use std::ops::Range;

use crate::command::CommandApdu;
use crate::error::ApduError;
use crate::gp::{ins, CLA_GP};

coded_enum! {
    /// Encryption information, P1 b7–b6 (GPC 2.3.1 Table 11-89); `10` is RFU.
    pub enum StoreDataEncryption {
        /// `00`: no general encryption information, or plaintext data.
        None = 0x00,
        /// `01` (P1 `20`): encryption of the value fields is application dependent.
        ApplicationDependent = 0x20,
        /// `11` (P1 `60`): the value fields of all data structures are encrypted.
        Encrypted = 0x60,
    }
}

coded_enum! {
    /// Data structure information, P1 b5–b4 (GPC 2.3.1 Table 11-89); `11` is RFU.
    pub enum StoreDataStructure {
        /// `00`: no general data structure information (application dependent).
        Unspecified = 0x00,
        /// `01` (P1 `08`): the data field holds DGIs.
        Dgi = 0x08,
        /// `10` (P1 `10`): the data field holds BER-TLV objects.
        BerTlv = 0x10,
    }
}

/// Reference control parameter P1 of STORE DATA (GPC 2.3.1 §11.11.2.1, Table 11-89).
///
/// | bits | meaning |
/// |---|---|
/// | b8 | last block |
/// | b7–b6 | encryption information |
/// | b5–b4 | data structure information |
/// | b3–b2 | RFU (zero) |
/// | b1 | ISO case 4 (response data may be returned) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreDataP1 {
    /// b8: this is the last block of the personalization session.
    pub last_block: bool,
    /// b7–b6.
    pub encryption: StoreDataEncryption,
    /// b5–b4.
    pub structure: StoreDataStructure,
    /// b1: case 4 command; the builder then adds Le `00`.
    pub expects_response: bool,
}

/// P1 `00`: not the last block, no encryption or structure information, case 3.
impl Default for StoreDataP1 {
    fn default() -> Self {
        StoreDataP1 {
            last_block: false,
            encryption: StoreDataEncryption::None,
            structure: StoreDataStructure::Unspecified,
            expects_response: false,
        }
    }
}

impl StoreDataP1 {
    /// b8: last block.
    pub const LAST_BLOCK: u8 = 0x80;
    /// b7–b6: encryption information.
    pub const ENCRYPTION_MASK: u8 = 0x60;
    /// b5–b4: data structure information.
    pub const STRUCTURE_MASK: u8 = 0x18;
    /// b3–b2: RFU.
    pub const RFU_MASK: u8 = 0x06;
    /// b1: ISO case 4 (response data may be returned).
    pub const CASE_4: u8 = 0x01;

    /// The P1 byte.
    pub const fn to_byte(self) -> u8 {
        let mut p1 = self.encryption.as_byte() | self.structure.as_byte();
        if self.last_block {
            p1 |= Self::LAST_BLOCK;
        }
        if self.expects_response {
            p1 |= Self::CASE_4;
        }
        p1
    }

    /// Decodes a P1 byte; RFU codings (b7–b6 = `10`, b5–b4 = `11`) are errors,
    /// the RFU bits b3–b2 are ignored as §11.1 prescribes for cards.
    /// [`Self::from_byte_strict`] refuses them instead.
    pub fn from_byte(p1: u8) -> Result<Self, ApduError> {
        let encryption = StoreDataEncryption::from_byte(p1 & Self::ENCRYPTION_MASK).ok_or(
            ApduError::InvalidArgument("STORE DATA P1 b7-b6 = 10 is RFU"),
        )?;
        let structure = StoreDataStructure::from_byte(p1 & Self::STRUCTURE_MASK).ok_or(
            ApduError::InvalidArgument("STORE DATA P1 b5-b4 = 11 is RFU"),
        )?;
        Ok(Self {
            last_block: p1 & Self::LAST_BLOCK != 0,
            encryption,
            structure,
            expects_response: p1 & Self::CASE_4 != 0,
        })
    }

    /// [`Self::from_byte`] that also refuses the RFU bits b3–b2, so every
    /// accepted byte is exactly [`Self::to_byte`] of its decoding: for a card
    /// that answers any P1 it does not define with "incorrect P1 P2", as the
    /// key-fob applet does.
    pub fn from_byte_strict(p1: u8) -> Result<Self, ApduError> {
        let decoded = Self::from_byte(p1)?;
        if p1 & Self::RFU_MASK != 0 {
            return Err(ApduError::InvalidArgument("STORE DATA P1 b3-b2 are RFU"));
        }
        Ok(decoded)
    }
}

/// STORE DATA: `80 E2 P1 block-number Lc data [00]` (GPC 2.3.1 §11.11.2, Table 11-88).
///
/// Case 3, or case 4 with Le `00` when `p1.expects_response`. The command is
/// marked sensitive when P1 says the data is (or may be) encrypted, so DEK
/// encrypted key material never reaches logs. An empty data field is allowed
/// (the provisioning specification closes personalization with `80 E2 80 P2` and no data).
pub fn store_data(p1: StoreDataP1, block_number: u8, data: impl Into<Vec<u8>>) -> CommandApdu {
    let mut apdu =
        CommandApdu::new(CLA_GP, ins::STORE_DATA, p1.to_byte(), block_number).with_data(data);
    if p1.expects_response {
        apdu = apdu.with_le(256);
    }
    if p1.encryption != StoreDataEncryption::None {
        apdu = apdu.sensitive();
    }
    apdu
}

/// The byte ranges of `data_len` bytes cut into STORE DATA blocks of at most
/// `max_block_len` bytes, in order (GPC 2.3.1 §11.11.2.2–3: a DGI or TLV
/// value may continue in the next block). No data gives no range; a
/// `max_block_len` of 0 is an error.
pub fn block_ranges(data_len: usize, max_block_len: usize) -> Result<Vec<Range<usize>>, ApduError> {
    if max_block_len == 0 {
        return Err(ApduError::InvalidArgument(
            "STORE DATA block length must not be 0",
        ));
    }
    Ok((0..data_len)
        .step_by(max_block_len)
        .map(|start| start..(start + max_block_len).min(data_len))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_accepts_exactly_the_bytes_it_encodes() {
        for b in 0..=u8::MAX {
            let strict = StoreDataP1::from_byte_strict(b);
            match StoreDataP1::from_byte(b) {
                Ok(p1) if p1.to_byte() == b => assert_eq!(strict, Ok(p1), "P1 {b:02X}"),
                Ok(_) => assert_eq!(
                    strict,
                    Err(ApduError::InvalidArgument("STORE DATA P1 b3-b2 are RFU")),
                    "P1 {b:02X}"
                ),
                Err(e) => assert_eq!(strict, Err(e), "P1 {b:02X}"),
            }
        }
    }
}
