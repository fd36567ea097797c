//! Command APDUs: ISO/IEC 7816-3 §12.1 cases 1–4, short and extended lengths.
//!
//! Encodings (ISO/IEC 7816-3 §12.1.3, ISO/IEC 7816-4 §5.1):
//!
//! | case | body |
//! |---|---|
//! | 1  | (empty) |
//! | 2S | Le(1), `00` = 256 |
//! | 3S | Lc(1, ≠ 0) data |
//! | 4S | Lc(1, ≠ 0) data Le(1) |
//! | 2E | `00` Le(2), `0000` = 65536 |
//! | 3E | `00` Lc(2, ≠ 0) data |
//! | 4E | `00` Lc(2, ≠ 0) data Le(2) |

use std::fmt;

use zeroize::Zeroize;

use crate::error::ApduError;

/// Largest command data an extended Lc can announce.
pub const MAX_DATA_LEN: usize = 65_535;
/// Largest Le (extended `0000`).
pub const MAX_LE: usize = 65_536;
/// Largest command data a short Lc can announce.
pub const MAX_SHORT_DATA_LEN: usize = 255;
/// Largest Le a short Le byte can announce (`00`).
pub const MAX_SHORT_LE: usize = 256;

/// The four command cases of ISO/IEC 7816-3 §12.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApduCase {
    /// No command data, no response data expected.
    Case1,
    /// No command data, response data expected (Le present).
    Case2,
    /// Command data, no response data expected.
    Case3,
    /// Command data and response data expected.
    Case4,
}

/// How the length fields of an encoded command were written
/// (ISO/IEC 7816-3 §12.1.3). A case 1 command has none and counts as short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LengthForm {
    /// One-byte Lc and Le.
    Short,
    /// A `00` marker, then two-byte Lc and Le.
    Extended,
}

/// A command APDU: header, optional data, optional Le, and a sensitivity flag.
///
/// The sensitivity flag is not encoded on the wire; it makes `Debug` and
/// `Display` print the header and Lc only (ARCHITECTURE convention 6), so key
/// material carried in PUT KEY or encrypted STORE DATA never reaches logs,
/// and it wipes the data when the command is dropped.
///
/// Invariants: data holds at most [`MAX_DATA_LEN`] bytes; Le, when present,
/// is in `1..=65536`. Every value is therefore encodable.
///
/// Equality compares what goes on the wire (header, data, Le) and ignores the
/// sensitivity flag, so `parse(to_bytes(x)) == x` holds for every command.
#[derive(Clone)]
pub struct CommandApdu {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
    le: Option<usize>,
    sensitive: bool,
}

impl CommandApdu {
    /// A case 1 command with the given header.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            sensitive: false,
        }
    }

    /// Sets the command data.
    ///
    /// Data beyond [`MAX_DATA_LEN`] (65535) bytes cannot be encoded and is
    /// dropped; use [`CommandApdu::try_with_data`] to get an error instead.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.set_data(data.into());
        self
    }

    /// Sets the command data, failing when it is longer than 65535 bytes.
    pub fn try_with_data(mut self, data: impl Into<Vec<u8>>) -> Result<Self, ApduError> {
        let data = data.into();
        if data.len() > MAX_DATA_LEN {
            return Err(ApduError::DataTooLong(data.len()));
        }
        self.set_data(data);
        Ok(self)
    }

    /// Sets Le, the number of response bytes expected (`1..=65536`).
    ///
    /// 256 encodes as short `00`, 65536 as extended `0000`. Le 0 means "no
    /// response data" and removes Le; values above 65536 are clamped to 65536
    /// (which asks for all available bytes). Use [`CommandApdu::try_with_le`]
    /// for an error instead.
    pub fn with_le(mut self, le: usize) -> Self {
        self.set_le(Some(le));
        self
    }

    /// Sets Le, failing when it is outside `1..=65536`.
    pub fn try_with_le(mut self, le: usize) -> Result<Self, ApduError> {
        if !(1..=MAX_LE).contains(&le) {
            return Err(ApduError::LeOutOfRange(le));
        }
        self.le = Some(le);
        Ok(self)
    }

    /// Marks the command as carrying secrets: `Debug`/`Display` redact its data.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Class byte.
    pub fn cla(&self) -> u8 {
        self.cla
    }

    /// Instruction byte.
    pub fn ins(&self) -> u8 {
        self.ins
    }

    /// Parameter 1.
    pub fn p1(&self) -> u8 {
        self.p1
    }

    /// Parameter 2.
    pub fn p2(&self) -> u8 {
        self.p2
    }

    /// Command data (empty for cases 1 and 2).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Expected response length, `None` for cases 1 and 3.
    pub fn le(&self) -> Option<usize> {
        self.le
    }

    /// Whether `Debug`/`Display` redact the data.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// Replaces the class byte (secure messaging sets bit 3, logical channels
    /// use bits 1–2).
    pub fn set_cla(&mut self, cla: u8) {
        self.cla = cla;
    }

    /// Replaces the data; bytes beyond 65535 are dropped (see [`CommandApdu::with_data`]).
    pub fn set_data(&mut self, mut data: Vec<u8>) {
        data.truncate(MAX_DATA_LEN);
        if self.sensitive {
            self.data.zeroize();
        }
        self.data = data;
    }

    /// Replaces Le; `Some(0)` removes it and values above 65536 are clamped
    /// (see [`CommandApdu::with_le`]).
    pub fn set_le(&mut self, le: Option<usize>) {
        self.le = match le {
            None | Some(0) => None,
            Some(n) => Some(n.min(MAX_LE)),
        };
    }

    /// The ISO/IEC 7816-3 case this command belongs to.
    pub fn case(&self) -> ApduCase {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => ApduCase::Case1,
            (true, true) => ApduCase::Case2,
            (false, false) => ApduCase::Case3,
            (false, true) => ApduCase::Case4,
        }
    }

    /// Whether the command needs extended length fields (data longer than
    /// 255 bytes or Le above 256).
    pub fn is_extended(&self) -> bool {
        self.data.len() > MAX_SHORT_DATA_LEN || self.le.is_some_and(|le| le > MAX_SHORT_LE)
    }

    /// Encodes with short lengths when they suffice, else extended lengths.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.is_extended() {
            self.to_bytes_extended()
        } else {
            self.encode_short()
        }
    }

    /// Encodes with short lengths, failing if the command needs extended ones.
    pub fn to_bytes_short(&self) -> Result<Vec<u8>, ApduError> {
        if self.is_extended() {
            return Err(ApduError::NeedsExtendedLength {
                lc: self.data.len(),
                le: self.le,
            });
        }
        Ok(self.encode_short())
    }

    /// Encodes with extended lengths (cases 2E/3E/4E); a case 1 command has
    /// no length fields and encodes as its header.
    pub fn to_bytes_extended(&self) -> Vec<u8> {
        let mut out = self.header_vec(7 + self.data.len() + 2);
        if self.case() == ApduCase::Case1 {
            return out;
        }
        out.push(0x00);
        if !self.data.is_empty() {
            // Invariant: data.len() <= 65535.
            out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 65536 wraps to 0000 as ISO 7816-3 prescribes.
            out.extend_from_slice(&((le % MAX_LE) as u16).to_be_bytes());
        }
        out
    }

    fn header_vec(&self, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        out
    }

    fn encode_short(&self) -> Vec<u8> {
        let mut out = self.header_vec(5 + self.data.len() + 1);
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 256 wraps to 00.
            out.push((le % MAX_SHORT_LE) as u8);
        }
        out
    }

    /// Parses a command APDU strictly: the body must match exactly one of the
    /// cases 1, 2S, 3S, 4S, 2E, 3E, 4E (ISO/IEC 7816-3 §12.1.3). Lc 0 is
    /// rejected, as are bodies whose length disagrees with Lc.
    pub fn parse(bytes: &[u8]) -> Result<CommandApdu, ApduError> {
        Self::parse_with_form(bytes).map(|(apdu, _)| apdu)
    }

    /// [`CommandApdu::parse`], also telling whether the bytes used the
    /// extended length encoding (which a re-encoding may need to keep: a
    /// reader that only takes extended commands on one path, or a 6Cxx
    /// re-issue of an extended command, ISO/IEC 7816-4 §5.1.3).
    pub fn parse_with_form(bytes: &[u8]) -> Result<(CommandApdu, LengthForm), ApduError> {
        let Some((header, body)) = bytes.split_first_chunk::<4>() else {
            return Err(ApduError::CommandTooShort { len: bytes.len() });
        };
        let [cla, ins, p1, p2] = *header;
        let mut apdu = CommandApdu::new(cla, ins, p1, p2);
        let mut form = LengthForm::Short;
        let malformed = |reason| ApduError::MalformedBody {
            reason,
            body_len: body.len(),
        };
        match body {
            // Case 1.
            [] => {}
            // Case 2S.
            [le] => apdu.le = Some(short_le(*le)),
            // Extended: a leading 00 followed by at least two bytes.
            [0x00, rest @ ..] if rest.len() >= 2 => {
                form = LengthForm::Extended;
                let (lc_or_le, rest) = (u16::from_be_bytes([rest[0], rest[1]]), &rest[2..]);
                if rest.is_empty() {
                    // Case 2E.
                    apdu.le = Some(extended_le(lc_or_le));
                } else {
                    let lc = usize::from(lc_or_le);
                    if lc == 0 {
                        return Err(malformed("extended Lc of 0000 followed by more bytes"));
                    }
                    if rest.len() == lc {
                        // Case 3E.
                        apdu.data = rest.to_vec();
                    } else if rest.len() == lc + 2 {
                        // Case 4E.
                        apdu.data = rest[..lc].to_vec();
                        apdu.le = Some(extended_le(u16::from_be_bytes([rest[lc], rest[lc + 1]])));
                    } else {
                        return Err(malformed("extended Lc disagrees with the body length"));
                    }
                }
            }
            [0x00, ..] => {
                return Err(malformed(
                    "short Lc of 00 or truncated extended length field",
                ))
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    // Case 3S.
                    apdu.data = rest.to_vec();
                } else if rest.len() == lc + 1 {
                    // Case 4S.
                    apdu.data = rest[..lc].to_vec();
                    apdu.le = Some(short_le(rest[lc]));
                } else {
                    return Err(malformed("short Lc disagrees with the body length"));
                }
            }
        }
        Ok((apdu, form))
    }

    fn fmt_redactable(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if !self.data.is_empty() {
            write!(f, " Lc={}", self.data.len())?;
            if self.sensitive {
                f.write_str(" [redacted]")?;
            } else {
                f.write_str(" ")?;
                f.write_str(&hex::encode_upper(&self.data))?;
            }
        }
        if let Some(le) = self.le {
            write!(f, " Le={le}")?;
        }
        Ok(())
    }
}

fn short_le(byte: u8) -> usize {
    if byte == 0 {
        MAX_SHORT_LE
    } else {
        usize::from(byte)
    }
}

fn extended_le(value: u16) -> usize {
    if value == 0 {
        MAX_LE
    } else {
        usize::from(value)
    }
}

impl PartialEq for CommandApdu {
    fn eq(&self, other: &Self) -> bool {
        (self.cla, self.ins, self.p1, self.p2, &self.data, self.le)
            == (
                other.cla,
                other.ins,
                other.p1,
                other.p2,
                &other.data,
                other.le,
            )
    }
}

impl Eq for CommandApdu {}

// Sensitive commands wipe their data when dropped.
wipe_sensitive_data_on_drop!(CommandApdu);

/// `80 E2 00 01 Lc=3 010203 Le=256`; sensitive: `80 D8 01 81 Lc=67 [redacted]`.
impl fmt::Display for CommandApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_redactable(f)
    }
}

/// Same text as `Display`, wrapped in `CommandApdu(..)`; redacts sensitive data.
impl fmt::Debug for CommandApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommandApdu(")?;
        self.fmt_redactable(f)?;
        f.write_str(")")
    }
}
