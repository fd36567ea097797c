//! BER-TLV codec (ISO/IEC 8825-1 §8.1, ISO/IEC 7816-4 §5.2, GPC 2.3.1 §11.1.11).
//!
//! Supported: tags of 1–3 bytes; definite lengths in short form (0–127) and
//! long form `81`, `82`, `83` (up to 16 MiB − 1); primitive and constructed
//! objects parsed into a tree.
//!
//! Strictness: indefinite length (`80`) and lengths `84`+ are rejected, as
//! are truncation, trailing bytes and nesting beyond
//! [`ParseOptions::max_depth`]. Padding bytes between objects (`00`/`FF`,
//! allowed by EMV) are not accepted. BER permits non-minimal long-form
//! lengths (`81 05`); they are accepted by default and rejected with
//! [`ParseOptions::require_minimal_length`]. Encoding always uses the
//! minimal length form, so `parse(encode(x)) == x` for every tree.

mod tag;

use thiserror::Error;

pub use tag::{Tag, TagClass, MAX_TAG_LEN};

/// Largest value length (three-byte long form `83`).
pub const MAX_VALUE_LEN: usize = 0xFF_FFFF;
/// Default nesting limit for parsing.
pub const DEFAULT_MAX_DEPTH: usize = 16;
/// Hard nesting limit: bounds recursion whatever [`ParseOptions::max_depth`]
/// says, and limits trees built with [`Tlv::constructed`].
pub const MAX_DEPTH: usize = 64;

/// Errors of the BER-TLV codec. They carry tags and sizes, never values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ends inside a tag, length or value.
    #[error("BER-TLV truncated")]
    Truncated,
    /// A tag is malformed (bad continuation bits, leading zero bytes).
    #[error("invalid BER-TLV tag")]
    InvalidTag,
    /// A tag is longer than 3 bytes.
    #[error("BER-TLV tag longer than 3 bytes")]
    TagTooLong,
    /// Indefinite length (`80`) is not supported.
    #[error("indefinite BER-TLV length is not supported")]
    IndefiniteLength,
    /// Length form `84` or longer.
    #[error("unsupported BER-TLV length byte {0:02X}")]
    UnsupportedLengthForm(u8),
    /// A long-form length that fits a shorter form (only with
    /// [`ParseOptions::require_minimal_length`]).
    #[error("non-minimal BER-TLV length encoding for tag {0}")]
    NonMinimalLength(Tag),
    /// The declared value length exceeds the remaining input.
    #[error("tag {tag} declares {declared} bytes, {available} available")]
    ValueTruncated {
        /// Tag of the object.
        tag: Tag,
        /// Declared length.
        declared: usize,
        /// Bytes available.
        available: usize,
    },
    /// Bytes remain after the expected object.
    #[error("{0} trailing bytes after BER-TLV object")]
    TrailingBytes(usize),
    /// Nesting exceeds the depth limit.
    #[error("BER-TLV nesting deeper than {0}")]
    DepthExceeded(usize),
    /// A value is longer than 16 MiB − 1.
    #[error("BER-TLV value of {0} bytes is too long")]
    ValueTooLong(usize),
    /// A primitive tag was used for a constructed object or vice versa.
    #[error("tag {0} has the wrong primitive/constructed bit")]
    WrongTagForm(Tag),
}

/// Parser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Reject long-form lengths that a shorter form could express (DER rule).
    pub require_minimal_length: bool,
    /// Deepest nesting accepted; the outermost object is depth 1. Values
    /// above [`MAX_DEPTH`] act as [`MAX_DEPTH`].
    pub max_depth: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            require_minimal_length: false,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Value of a TLV object.
#[derive(Clone, PartialEq, Eq)]
pub enum TlvValue {
    /// Raw value bytes.
    Primitive(Vec<u8>),
    /// Nested objects.
    Constructed(Vec<Tlv>),
}

/// A BER-TLV object. Constructors check that the tag form matches the value,
/// that lengths are encodable and that nesting stays within [`MAX_DEPTH`],
/// so encoding cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub struct Tlv {
    tag: Tag,
    value: TlvValue,
    /// Encoded length of the value field, cached.
    value_len: usize,
    /// 1 for a primitive object, 1 + deepest child otherwise.
    depth: usize,
}

impl Tlv {
    /// A primitive object; the tag must be primitive and the value at most
    /// 16 MiB − 1 bytes.
    pub fn primitive(tag: Tag, value: impl Into<Vec<u8>>) -> Result<Tlv, TlvError> {
        if tag.is_constructed() {
            return Err(TlvError::WrongTagForm(tag));
        }
        let value = value.into();
        if value.len() > MAX_VALUE_LEN {
            return Err(TlvError::ValueTooLong(value.len()));
        }
        Ok(Tlv {
            tag,
            value_len: value.len(),
            value: TlvValue::Primitive(value),
            depth: 1,
        })
    }

    /// A constructed object; the tag must be constructed.
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Result<Tlv, TlvError> {
        if !tag.is_constructed() {
            return Err(TlvError::WrongTagForm(tag));
        }
        let value_len: usize = children.iter().map(Tlv::encoded_len).sum();
        if value_len > MAX_VALUE_LEN {
            return Err(TlvError::ValueTooLong(value_len));
        }
        let depth = 1 + children.iter().map(|c| c.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(TlvError::DepthExceeded(MAX_DEPTH));
        }
        Ok(Tlv {
            tag,
            value: TlvValue::Constructed(children),
            value_len,
            depth,
        })
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value.
    pub fn value(&self) -> &TlvValue {
        &self.value
    }

    /// Value bytes of a primitive object, `None` for a constructed one.
    pub fn primitive_value(&self) -> Option<&[u8]> {
        match &self.value {
            TlvValue::Primitive(v) => Some(v),
            TlvValue::Constructed(_) => None,
        }
    }

    /// Children of a constructed object (empty for a primitive one).
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            TlvValue::Primitive(_) => &[],
            TlvValue::Constructed(c) => c,
        }
    }

    /// Length of the complete encoding.
    pub fn encoded_len(&self) -> usize {
        self.tag.len() + length_field_len(self.value_len) + self.value_len
    }

    /// Encodes tag, minimal length and value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_bytes());
        encode_length(self.value_len, out);
        match &self.value {
            TlvValue::Primitive(v) => out.extend_from_slice(v),
            TlvValue::Constructed(children) => {
                for child in children {
                    child.encode_into(out);
                }
            }
        }
    }

    /// Parses exactly one object with default options.
    pub fn parse(bytes: &[u8]) -> Result<Tlv, TlvError> {
        Self::parse_with(bytes, ParseOptions::default())
    }

    /// Parses exactly one object.
    pub fn parse_with(bytes: &[u8], options: ParseOptions) -> Result<Tlv, TlvError> {
        let (tlv, used) = parse_one(bytes, options, 1)?;
        if used != bytes.len() {
            return Err(TlvError::TrailingBytes(bytes.len() - used));
        }
        Ok(tlv)
    }

    /// Parses a concatenation of objects with default options.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
        Self::parse_all_with(bytes, ParseOptions::default())
    }

    /// Parses a concatenation of objects.
    pub fn parse_all_with(bytes: &[u8], options: ParseOptions) -> Result<Vec<Tlv>, TlvError> {
        parse_sequence(bytes, options, 1)
    }

    /// This object or the first descendant with `tag`, depth first.
    pub fn find(&self, tag: Tag) -> Option<&Tlv> {
        if self.tag == tag {
            return Some(self);
        }
        find(self.children(), tag)
    }

    /// Every object with `tag` in this subtree, depth first.
    pub fn find_all(&self, tag: Tag) -> Vec<&Tlv> {
        let mut out = Vec::new();
        self.collect(tag, &mut out);
        out
    }

    fn collect<'a>(&'a self, tag: Tag, out: &mut Vec<&'a Tlv>) {
        if self.tag == tag {
            out.push(self);
        }
        for child in self.children() {
            child.collect(tag, out);
        }
    }
}

/// The first object with `tag` among `tlvs` and their descendants, depth first.
pub fn find(tlvs: &[Tlv], tag: Tag) -> Option<&Tlv> {
    tlvs.iter().find_map(|t| t.find(tag))
}

impl std::fmt::Debug for Tlv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            TlvValue::Primitive(v) => {
                write!(f, "{}[", self.tag)?;
                f.write_str(&hex::encode_upper(v))?;
                f.write_str("]")
            }
            TlvValue::Constructed(children) => {
                write!(f, "{}", self.tag)?;
                f.debug_list().entries(children).finish()
            }
        }
    }
}

impl std::fmt::Debug for TlvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlvValue::Primitive(v) => {
                f.write_str("Primitive(")?;
                f.write_str(&hex::encode_upper(v))?;
                f.write_str(")")
            }
            TlvValue::Constructed(c) => f.debug_tuple("Constructed").field(c).finish(),
        }
    }
}

fn length_field_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

fn encode_length(len: usize, out: &mut Vec<u8>) {
    let bytes = (len as u32).to_be_bytes();
    match length_field_len(len) {
        1 => out.push(bytes[3]),
        2 => out.extend_from_slice(&[0x81, bytes[3]]),
        3 => out.extend_from_slice(&[0x82, bytes[2], bytes[3]]),
        _ => out.extend_from_slice(&[0x83, bytes[1], bytes[2], bytes[3]]),
    }
}

/// Parses a length field; returns (value length, bytes used).
fn parse_length(bytes: &[u8], tag: Tag, options: ParseOptions) -> Result<(usize, usize), TlvError> {
    let Some(&first) = bytes.first() else {
        return Err(TlvError::Truncated);
    };
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let count = match first {
        0x80 => return Err(TlvError::IndefiniteLength),
        0x81..=0x83 => usize::from(first & 0x7F),
        _ => return Err(TlvError::UnsupportedLengthForm(first)),
    };
    let Some(len_bytes) = bytes.get(1..1 + count) else {
        return Err(TlvError::Truncated);
    };
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if options.require_minimal_length && length_field_len(len) != 1 + count {
        return Err(TlvError::NonMinimalLength(tag));
    }
    Ok((len, 1 + count))
}

fn parse_one(bytes: &[u8], options: ParseOptions, depth: usize) -> Result<(Tlv, usize), TlvError> {
    let max_depth = options.max_depth.min(MAX_DEPTH);
    if depth > max_depth {
        return Err(TlvError::DepthExceeded(max_depth));
    }
    let (tag, tag_len) = Tag::parse(bytes)?;
    let (value_len, len_len) = parse_length(&bytes[tag_len..], tag, options)?;
    let start = tag_len + len_len;
    let available = bytes.len() - start;
    if value_len > available {
        return Err(TlvError::ValueTruncated {
            tag,
            declared: value_len,
            available,
        });
    }
    let value_bytes = &bytes[start..start + value_len];
    // A constructed value is re-encoded from its children with minimal
    // lengths, so its length is theirs, not the (possibly longer) one read.
    let (value, encoded_value_len, child_depth) = if tag.is_constructed() {
        let children = parse_sequence(value_bytes, options, depth + 1)?;
        let d = children.iter().map(|c| c.depth).max().unwrap_or(0);
        let len = children.iter().map(Tlv::encoded_len).sum();
        (TlvValue::Constructed(children), len, d)
    } else {
        (TlvValue::Primitive(value_bytes.to_vec()), value_len, 0)
    };
    Ok((
        Tlv {
            tag,
            value,
            value_len: encoded_value_len,
            depth: 1 + child_depth,
        },
        start + value_len,
    ))
}

fn parse_sequence(
    mut bytes: &[u8],
    options: ParseOptions,
    depth: usize,
) -> Result<Vec<Tlv>, TlvError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (tlv, used) = parse_one(bytes, options, depth)?;
        out.push(tlv);
        bytes = &bytes[used..];
    }
    Ok(out)
}
