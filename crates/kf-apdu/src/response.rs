//! Response APDUs: optional data followed by SW1 SW2 (ISO/IEC 7816-4 §5.1).

use std::fmt;

use crate::error::ApduError;
use crate::status::StatusWord;

/// A response APDU: response data and the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseApdu {
    data: Vec<u8>,
    sw: StatusWord,
}

impl ResponseApdu {
    /// A response with the given data and status word.
    pub fn new(data: Vec<u8>, sw: StatusWord) -> Self {
        Self { data, sw }
    }

    /// A response carrying only a status word.
    pub fn status(sw: StatusWord) -> Self {
        Self::new(Vec::new(), sw)
    }

    /// Splits `data ‖ SW1 ‖ SW2`; fails when fewer than 2 bytes are given.
    pub fn parse(bytes: &[u8]) -> Result<ResponseApdu, ApduError> {
        let Some((data, [sw1, sw2])) = bytes.split_last_chunk::<2>() else {
            return Err(ApduError::ResponseTooShort { len: bytes.len() });
        };
        Ok(Self::new(data.to_vec(), StatusWord::new(*sw1, *sw2)))
    }

    /// Response data (without the status word).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the response, returning its data.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The status word.
    pub fn sw(&self) -> StatusWord {
        self.sw
    }

    /// True when the status word is `9000`.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }

    /// Encodes `data ‖ SW1 ‖ SW2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

/// `<data hex> <SW display>`, e.g. `0102 9000 (success)`.
impl fmt::Display for ResponseApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.data.is_empty() {
            f.write_str(&hex::encode_upper(&self.data))?;
            f.write_str(" ")?;
        }
        write!(f, "{}", self.sw)
    }
}

impl fmt::Debug for ResponseApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseApdu(")?;
        if !self.data.is_empty() {
            f.write_str(&hex::encode_upper(&self.data))?;
            f.write_str(" ")?;
        }
        write!(f, "{:04X})", self.sw.as_u16())
    }
}
