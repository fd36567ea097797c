//! Minimal command-APDU length decoding (ISO/IEC 7816-3 §12.1.3, cases 1–4,
//! short and extended), just enough for the driver and the trace redactor.
//! The full codec lives in `kf-apdu`; this crate stays on raw bytes.

use crate::error::TransportError;

/// Length layout of a command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommandShape {
    /// Nc: number of data bytes.
    pub nc: usize,
    /// Offset of the data field.
    pub data_offset: usize,
    /// Ne, when the command has an Le field (256 / 65536 for a zero Le).
    pub ne: Option<usize>,
    /// True for the extended-length encoding.
    pub extended: bool,
}

impl CommandShape {
    /// Decodes the length fields of `apdu`.
    pub fn parse(apdu: &[u8]) -> Result<Self, TransportError> {
        let len = apdu.len();
        if len < 4 {
            return Err(TransportError::InvalidApdu(
                "shorter than the 4-byte header",
            ));
        }
        if len == 4 {
            return Ok(Self {
                nc: 0,
                data_offset: 4,
                ne: None,
                extended: false,
            });
        }
        let b4 = usize::from(apdu[4]);
        if len == 5 {
            let ne = if b4 == 0 { 256 } else { b4 };
            return Ok(Self {
                nc: 0,
                data_offset: 5,
                ne: Some(ne),
                extended: false,
            });
        }
        if b4 != 0 {
            let nc = b4;
            return match len.checked_sub(5 + nc) {
                Some(0) => Ok(Self {
                    nc,
                    data_offset: 5,
                    ne: None,
                    extended: false,
                }),
                Some(1) => {
                    let le = usize::from(apdu[len - 1]);
                    let ne = if le == 0 { 256 } else { le };
                    Ok(Self {
                        nc,
                        data_offset: 5,
                        ne: Some(ne),
                        extended: false,
                    })
                }
                _ => Err(TransportError::InvalidApdu(
                    "Lc does not match the APDU length",
                )),
            };
        }
        // b4 == 0 and more than 5 bytes: extended encoding.
        if len < 7 {
            return Err(TransportError::InvalidApdu(
                "truncated extended length field",
            ));
        }
        let first = usize::from(u16::from_be_bytes([apdu[5], apdu[6]]));
        if len == 7 {
            let ne = if first == 0 { 65_536 } else { first };
            return Ok(Self {
                nc: 0,
                data_offset: 7,
                ne: Some(ne),
                extended: true,
            });
        }
        let nc = first;
        if nc == 0 {
            return Err(TransportError::InvalidApdu("extended Lc of zero"));
        }
        match len.checked_sub(7 + nc) {
            Some(0) => Ok(Self {
                nc,
                data_offset: 7,
                ne: None,
                extended: true,
            }),
            Some(2) => {
                let le = usize::from(u16::from_be_bytes([apdu[len - 2], apdu[len - 1]]));
                let ne = if le == 0 { 65_536 } else { le };
                Ok(Self {
                    nc,
                    data_offset: 7,
                    ne: Some(ne),
                    extended: true,
                })
            }
            _ => Err(TransportError::InvalidApdu(
                "extended Lc does not match the APDU length",
            )),
        }
    }

    /// The data field of `apdu` (which must be the APDU this shape came from).
    pub fn data<'a>(&self, apdu: &'a [u8]) -> &'a [u8] {
        apdu.get(self.data_offset..self.data_offset + self.nc)
            .unwrap_or(&[])
    }
}

/// Re-encodes `apdu` with a new Ne (1..=65536), keeping header and data.
/// Uses the short form when everything fits, the extended form otherwise or
/// when the original was extended.
pub(crate) fn with_ne(apdu: &[u8], ne: usize) -> Result<Vec<u8>, TransportError> {
    let shape = CommandShape::parse(apdu)?;
    if ne == 0 || ne > 65_536 {
        return Err(TransportError::InvalidApdu("Ne out of range"));
    }
    let data = shape.data(apdu);
    let extended = shape.extended || ne > 256;
    let mut out = Vec::with_capacity(apdu.len() + 3);
    out.extend_from_slice(&apdu[..4]);
    if extended {
        out.push(0);
        if !data.is_empty() {
            let nc = u16::try_from(data.len())
                .map_err(|_| TransportError::InvalidApdu("data longer than 65535 bytes"))?;
            out.extend_from_slice(&nc.to_be_bytes());
            out.extend_from_slice(data);
        }
        // 65536 is encoded as 0000; truncation to u16 is the encoding.
        let le = (ne % 65_536) as u16;
        out.extend_from_slice(&le.to_be_bytes());
    } else {
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        // 256 is encoded as 00.
        out.push((ne % 256) as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_short_cases() {
        assert_eq!(CommandShape::parse(&[0, 0xA4, 4, 0]).unwrap().ne, None);
        let c2 = CommandShape::parse(&[0, 0xB0, 0, 0, 0]).unwrap();
        assert_eq!(c2.ne, Some(256));
        let c3 = CommandShape::parse(&[0, 0xA4, 4, 0, 2, 0xA0, 0x00]).unwrap();
        assert_eq!((c3.nc, c3.ne), (2, None));
        let c4 = CommandShape::parse(&[0, 0xA4, 4, 0, 1, 0xA0, 0x10]).unwrap();
        assert_eq!((c4.nc, c4.ne), (1, Some(16)));
    }

    #[test]
    fn parses_extended_cases() {
        let c2 = CommandShape::parse(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]).unwrap();
        assert_eq!((c2.ne, c2.extended), (Some(256), true));
        let mut c4 = vec![0x80, 0xE2, 0, 0, 0, 0x01, 0x2C];
        c4.extend(std::iter::repeat_n(0x55, 300));
        c4.extend([0, 0]);
        let s = CommandShape::parse(&c4).unwrap();
        assert_eq!((s.nc, s.ne, s.extended), (300, Some(65_536), true));
        assert_eq!(s.data(&c4).len(), 300);
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        assert!(CommandShape::parse(&[0, 0xA4, 4]).is_err());
        assert!(CommandShape::parse(&[0, 0xA4, 4, 0, 3, 1]).is_err());
        assert!(CommandShape::parse(&[0, 0xA4, 4, 0, 0, 0]).is_err());
        assert!(CommandShape::parse(&[0, 0xA4, 4, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn with_ne_rewrites_le() {
        assert_eq!(
            with_ne(&[0, 0xB0, 0, 0, 0], 0x10).unwrap(),
            vec![0, 0xB0, 0, 0, 0x10]
        );
        assert_eq!(
            with_ne(&[0, 0xCA, 0, 0x66], 256).unwrap(),
            vec![0, 0xCA, 0, 0x66, 0]
        );
        assert_eq!(
            with_ne(&[0, 0xA4, 4, 0, 1, 0xA0], 8).unwrap(),
            vec![0, 0xA4, 4, 0, 1, 0xA0, 8]
        );
        assert_eq!(
            with_ne(&[0, 0xB0, 0, 0, 0], 300).unwrap(),
            vec![0, 0xB0, 0, 0, 0, 0x01, 0x2C]
        );
    }
}
