//! BER-TLV tags (ISO/IEC 8825-1 §8.1.2, ISO/IEC 7816-4 §5.2.2.1).

use std::fmt;

use super::TlvError;

/// Longest tag this codec accepts, in bytes (GPC 2.3.1 §11.1.11 uses up to 2,
/// ISO/IEC 7816-4 up to 3).
pub const MAX_TAG_LEN: usize = 3;

/// Tag class, bits b8–b7 of the first tag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// `00`.
    Universal,
    /// `01`.
    Application,
    /// `10`.
    ContextSpecific,
    /// `11`.
    Private,
}

/// A BER-TLV tag of 1 to 3 bytes, held as its big-endian value
/// (`0x4F`, `0x5F50`, `0xBF0C`, `0x9F7F01`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// Validates and wraps a tag value: the first byte of a multi-byte tag
    /// has b5–b1 = `11111`, later bytes have b8 = 1 except the last, and a
    /// one-byte tag must not have b5–b1 = `11111`.
    pub fn new(value: u32) -> Result<Tag, TlvError> {
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
        let (tag, used) = Tag::parse(&bytes[skip..]).map_err(|_| TlvError::InvalidTag)?;
        if used != 4 - skip || value > 0x00FF_FFFF {
            return Err(TlvError::InvalidTag);
        }
        Ok(tag)
    }

    /// Parses the tag at the start of `bytes`, returning it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Tag, usize), TlvError> {
        let Some(&first) = bytes.first() else {
            return Err(TlvError::Truncated);
        };
        let mut value = u32::from(first);
        if first & 0x1F != 0x1F {
            return Ok((Tag(value), 1));
        }
        for (i, &b) in bytes.iter().enumerate().skip(1) {
            if i >= MAX_TAG_LEN {
                return Err(TlvError::TagTooLong);
            }
            value = (value << 8) | u32::from(b);
            if b & 0x80 == 0 {
                return Ok((Tag(value), i + 1));
            }
        }
        if bytes.len() >= MAX_TAG_LEN {
            Err(TlvError::TagTooLong)
        } else {
            Err(TlvError::Truncated)
        }
    }

    /// A tag whose value this crate's own constants fix (the GlobalPlatform
    /// data objects of [`crate::gp::tag`]); a unit test checks each against
    /// [`Tag::new`]. Not public: outside values go through [`Tag::new`].
    pub(crate) const fn known(value: u32) -> Tag {
        Tag(value)
    }

    /// The tag value, e.g. `0x5F50`.
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// Number of bytes of the encoded tag.
    pub fn len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            _ => 3,
        }
    }

    /// Always false: a tag has at least one byte (provided for API symmetry).
    pub fn is_empty(self) -> bool {
        false
    }

    /// The encoded tag bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        bytes[4 - self.len()..].to_vec()
    }

    fn first_byte(self) -> u8 {
        self.0.to_be_bytes()[4 - self.len()]
    }

    /// True when b6 of the first byte is set (the value holds nested TLVs).
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The tag class.
    pub fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// Upper-case hex of the encoded tag, e.g. `5F50`.
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$X}", self.0, width = self.len() * 2)
    }
}
