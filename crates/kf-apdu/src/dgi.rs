//! Data Grouping Identifier (DGI) codec (GPC 2.3.1 §11.1.12, §11.11.2.3;
//! GP Scripting Language; provisioning specification, "DGI Wire Encoding").
//!
//! A DGI is `tag (2 bytes) ‖ length ‖ value`, where the length is one byte
//! for 0–254 and `FF` followed by two big-endian bytes for 255–65535.
//! Decoding is strict: a three-byte length below 255 (non-minimal) is
//! rejected, as are truncated structures and trailing bytes.

use std::fmt;

use thiserror::Error;
use zeroize::Zeroize;

/// Largest DGI value (two-byte length).
pub const MAX_DGI_LEN: usize = 65_535;

/// Errors of the DGI codec. They carry tags and lengths, never values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DgiError {
    /// The input ends inside a DGI tag or length field.
    #[error("DGI header truncated: {available} bytes, need {needed}")]
    TruncatedHeader {
        /// Bytes needed for the header.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The input ends inside a DGI value.
    #[error("DGI {tag:04X} declares {declared} value bytes, only {available} present")]
    TruncatedValue {
        /// DGI tag.
        tag: u16,
        /// Declared value length.
        declared: usize,
        /// Value bytes present.
        available: usize,
    },
    /// A three-byte length (`FF xx xx`) encodes a value below 255.
    #[error("DGI {tag:04X} uses the FF length form for {length}, which fits in one byte")]
    NonMinimalLength {
        /// DGI tag.
        tag: u16,
        /// Decoded length.
        length: usize,
    },
    /// Bytes remain after the expected DGI.
    #[error("{count} trailing bytes after the DGI")]
    TrailingBytes {
        /// Number of bytes left over.
        count: usize,
    },
    /// A value is longer than 65535 bytes and cannot be encoded.
    #[error("DGI {tag:04X} value of {length} bytes exceeds 65535")]
    ValueTooLong {
        /// DGI tag.
        tag: u16,
        /// Value length.
        length: usize,
    },
    /// The stream ended while a DGI was incomplete.
    #[error("DGI stream ended with {pending} bytes of an incomplete DGI")]
    IncompleteAtEnd {
        /// Bytes buffered.
        pending: usize,
    },
}

/// One DGI: a 2-byte tag and its value.
///
/// A sensitive DGI (e.g. one holding DEK-encrypted key material) prints only
/// its tag and length in `Debug` and zeroizes its value on drop. Equality
/// compares tag and value only, not the flag.
#[derive(Clone)]
pub struct Dgi {
    /// DGI tag, e.g. `0xA003`.
    pub tag: u16,
    /// DGI value.
    pub data: Vec<u8>,
    /// Redact the value in `Debug` and zeroize it on drop.
    pub sensitive: bool,
}

impl Dgi {
    /// A non-sensitive DGI.
    pub fn new(tag: u16, data: impl Into<Vec<u8>>) -> Self {
        Self {
            tag,
            data: data.into(),
            sensitive: false,
        }
    }

    /// A sensitive DGI (redacted `Debug`, value zeroized on drop).
    pub fn new_sensitive(tag: u16, data: impl Into<Vec<u8>>) -> Self {
        let mut dgi = Self::new(tag, data);
        dgi.sensitive = true;
        dgi
    }

    /// Length of the encoded DGI (header and value).
    pub fn encoded_len(&self) -> usize {
        header_len(self.data.len()) + self.data.len()
    }

    /// Encodes `tag ‖ length ‖ value`.
    pub fn encode(&self) -> Result<Vec<u8>, DgiError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoding to `out`; on error `out` is unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), DgiError> {
        let len = self.data.len();
        if len > MAX_DGI_LEN {
            return Err(DgiError::ValueTooLong {
                tag: self.tag,
                length: len,
            });
        }
        out.extend_from_slice(&self.tag.to_be_bytes());
        if len < 0xFF {
            out.push(len as u8);
        } else {
            out.push(0xFF);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        Ok(())
    }

    /// Decodes exactly one DGI; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Dgi, DgiError> {
        let (dgi, used) = Self::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(DgiError::TrailingBytes {
                count: bytes.len() - used,
            });
        }
        Ok(dgi)
    }

    /// Decodes the DGI at the start of `bytes`, returning it and the number of
    /// bytes it occupies.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Dgi, usize), DgiError> {
        match parse_header(bytes)? {
            Header::Incomplete { needed } => Err(DgiError::TruncatedHeader {
                needed,
                available: bytes.len(),
            }),
            Header::Complete {
                tag,
                value_len,
                header_len,
            } => {
                let value = &bytes[header_len..];
                if value.len() < value_len {
                    return Err(DgiError::TruncatedValue {
                        tag,
                        declared: value_len,
                        available: value.len(),
                    });
                }
                Ok((Dgi::new(tag, &value[..value_len]), header_len + value_len))
            }
        }
    }

    /// Decodes a concatenation of DGIs (an empty input gives an empty list).
    pub fn decode_sequence(mut bytes: &[u8]) -> Result<Vec<Dgi>, DgiError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (dgi, used) = Self::decode_prefix(bytes)?;
            out.push(dgi);
            bytes = &bytes[used..];
        }
        Ok(out)
    }

    /// Encodes a concatenation of DGIs.
    pub fn encode_sequence(dgis: &[Dgi]) -> Result<Vec<u8>, DgiError> {
        let mut out = Vec::with_capacity(dgis.iter().map(Dgi::encoded_len).sum());
        for dgi in dgis {
            dgi.encode_into(&mut out)?;
        }
        Ok(out)
    }
}

impl PartialEq for Dgi {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag && self.data == other.data
    }
}

impl Eq for Dgi {}

wipe_sensitive_data_on_drop!(Dgi);

impl fmt::Debug for Dgi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dgi({:04X}, len={}", self.tag, self.data.len())?;
        if self.sensitive {
            f.write_str(", [redacted])")
        } else {
            f.write_str(", ")?;
            f.write_str(&hex::encode_upper(&self.data))?;
            f.write_str(")")
        }
    }
}

fn header_len(value_len: usize) -> usize {
    if value_len < 0xFF {
        3
    } else {
        5
    }
}

enum Header {
    Incomplete {
        needed: usize,
    },
    Complete {
        tag: u16,
        value_len: usize,
        header_len: usize,
    },
}

/// Parses a DGI header; running out of bytes is `Incomplete`, a non-minimal
/// length is an error.
fn parse_header(bytes: &[u8]) -> Result<Header, DgiError> {
    match bytes {
        [t1, t2, 0xFF, rest @ ..] => {
            let tag = u16::from_be_bytes([*t1, *t2]);
            let [l1, l2, ..] = rest else {
                return Ok(Header::Incomplete { needed: 5 });
            };
            let value_len = usize::from(u16::from_be_bytes([*l1, *l2]));
            if value_len < 0xFF {
                return Err(DgiError::NonMinimalLength {
                    tag,
                    length: value_len,
                });
            }
            Ok(Header::Complete {
                tag,
                value_len,
                header_len: 5,
            })
        }
        [t1, t2, len, ..] => Ok(Header::Complete {
            tag: u16::from_be_bytes([*t1, *t2]),
            value_len: usize::from(*len),
            header_len: 3,
        }),
        _ => Ok(Header::Incomplete { needed: 3 }),
    }
}

/// Incremental DGI decoder for a card receiving DGIs split across STORE DATA
/// blocks (GPC 2.3.1 §11.11.2.3: a value may be truncated in one block and
/// continued in the next).
///
/// Feed each block's data; completed DGIs come out as soon as their last
/// byte arrives. After the first error the decoder stays failed (every later
/// call returns that error) and its buffer is wiped.
#[derive(Default)]
pub struct DgiStreamDecoder {
    buffer: Vec<u8>,
    sensitive_tags: Vec<u16>,
    failed: Option<DgiError>,
}

impl DgiStreamDecoder {
    /// A decoder that marks no DGI as sensitive.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that marks DGIs with these tags sensitive (redacted,
    /// zeroized); its internal buffer is always zeroized.
    pub fn with_sensitive_tags(tags: &[u16]) -> Self {
        let mut decoder = Self::default();
        decoder.sensitive_tags = tags.to_vec();
        decoder
    }

    /// Consumes one block and returns the DGIs it completed.
    pub fn feed(&mut self, block: &[u8]) -> Result<Vec<Dgi>, DgiError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.buffer.extend_from_slice(block);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buffer[start..];
            let header = match parse_header(rest) {
                Ok(h) => h,
                Err(err) => return Err(self.fail(err)),
            };
            let Header::Complete {
                tag,
                value_len,
                header_len,
            } = header
            else {
                break;
            };
            if rest.len() < header_len + value_len {
                break;
            }
            let mut dgi = Dgi::new(tag, &rest[header_len..header_len + value_len]);
            dgi.sensitive = self.sensitive_tags.contains(&tag);
            out.push(dgi);
            start += header_len + value_len;
        }
        self.buffer[..start].zeroize();
        self.buffer.drain(..start);
        Ok(out)
    }

    /// Number of bytes of an incomplete DGI held back.
    pub fn pending_len(&self) -> usize {
        self.buffer.len()
    }

    /// True when no partial DGI is buffered and no error occurred.
    pub fn is_idle(&self) -> bool {
        self.buffer.is_empty() && self.failed.is_none()
    }

    /// Ends the stream (after the last block): an incomplete DGI is an error.
    pub fn finish(mut self) -> Result<(), DgiError> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        if !self.buffer.is_empty() {
            return Err(DgiError::IncompleteAtEnd {
                pending: self.buffer.len(),
            });
        }
        Ok(())
    }

    fn fail(&mut self, err: DgiError) -> DgiError {
        self.buffer.zeroize();
        self.failed = Some(err.clone());
        err
    }
}

impl Drop for DgiStreamDecoder {
    fn drop(&mut self) {
        self.buffer.zeroize();
    }
}

impl fmt::Debug for DgiStreamDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DgiStreamDecoder")
            .field("pending_len", &self.buffer.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
