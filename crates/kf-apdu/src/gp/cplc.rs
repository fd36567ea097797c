//! Card Production Life Cycle data (CPLC): GET DATA tag `9F7F`.
//!
//! The command is a GlobalPlatform GET DATA (GPC 2.3.1 §11.3.2, Table 11-27)
//! for the context-dependent tag `9F7F` (tag ranges of §11.1.11). Its value is
//! the 42-byte CPLC record that GlobalPlatform cards (NXP JCOP among them)
//! keep from the chip factory: fixed two- and four-byte fields, dates coded
//! as `YDDD` (last digit of the year, day of the year). Only the fields that
//! identify the chip are named here; the whole value is kept.

use crate::command::CommandApdu;
use crate::tlv::Tlv;

/// The GET DATA tag of the CPLC.
pub const CPLC_TAG: u16 = 0x9F7F;
/// Length of the CPLC value.
pub const CPLC_LEN: usize = 42;

/// GET DATA for the CPLC: `80 CA 9F 7F 00` (GPC 2.3.1 §11.3.2).
pub fn get_cplc() -> CommandApdu {
    super::get_data(CPLC_TAG)
}

/// A CPLC value that is not 42 bytes, or a `9F7F` TLV that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CPLC data malformed: {0}")]
pub struct CplcError(&'static str);

/// The Card Production Life Cycle data of one chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cplc {
    raw: [u8; CPLC_LEN],
}

impl Cplc {
    /// Parses a GET DATA response body: the `9F7F` TLV, or the bare
    /// 42-byte value that some cards return without the tag.
    pub fn parse(body: &[u8]) -> Result<Cplc, CplcError> {
        let value = if body.starts_with(&[0x9F, 0x7F]) {
            let tlv = Tlv::parse(body).map_err(|_| CplcError("the 9F7F TLV does not parse"))?;
            tlv.primitive_value()
                .ok_or(CplcError("9F7F is not primitive"))?
                .to_vec()
        } else {
            body.to_vec()
        };
        let raw: [u8; CPLC_LEN] = value
            .as_slice()
            .try_into()
            .map_err(|_| CplcError("the value must be 42 bytes"))?;
        Ok(Cplc { raw })
    }

    /// A CPLC from its 42-byte value.
    pub fn from_bytes(raw: [u8; CPLC_LEN]) -> Cplc {
        Cplc { raw }
    }

    /// The whole 42-byte value.
    pub fn as_bytes(&self) -> &[u8; CPLC_LEN] {
        &self.raw
    }

    /// The `9F7F` TLV a card returns.
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = vec![0x9F, 0x7F, CPLC_LEN as u8];
        out.extend_from_slice(&self.raw);
        out
    }

    /// IC fabricator (bytes 0–1).
    pub fn ic_fabricator(&self) -> [u8; 2] {
        [self.raw[0], self.raw[1]]
    }

    /// IC type (bytes 2–3).
    pub fn ic_type(&self) -> [u8; 2] {
        [self.raw[2], self.raw[3]]
    }

    /// IC fabrication date, `YDDD` (bytes 10–11).
    pub fn ic_fabrication_date(&self) -> [u8; 2] {
        [self.raw[10], self.raw[11]]
    }

    /// IC serial number (bytes 12–15).
    pub fn ic_serial_number(&self) -> [u8; 4] {
        [self.raw[12], self.raw[13], self.raw[14], self.raw[15]]
    }

    /// IC batch identifier (bytes 16–17).
    pub fn ic_batch_identifier(&self) -> [u8; 2] {
        [self.raw[16], self.raw[17]]
    }

    /// The chip's identity as upper-case hex: fabricator, type, batch and
    /// serial (`FFFF-TTTT-BBBB-SSSSSSSS`). Two chips of one fabricator and
    /// type differ at least in batch or serial.
    pub fn ic_serial(&self) -> String {
        format!(
            "{}-{}-{}-{}",
            hex::encode_upper(self.ic_fabricator()),
            hex::encode_upper(self.ic_type()),
            hex::encode_upper(self.ic_batch_identifier()),
            hex::encode_upper(self.ic_serial_number()),
        )
    }

    /// The fabrication date as upper-case hex `YDDD`.
    pub fn fabrication_date(&self) -> String {
        hex::encode_upper(self.ic_fabrication_date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; CPLC_LEN] {
        let mut raw = [0u8; CPLC_LEN];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = i as u8;
        }
        raw
    }

    #[test]
    fn command_is_gp_get_data_9f7f() {
        assert_eq!(get_cplc().to_bytes(), [0x80, 0xCA, 0x9F, 0x7F, 0x00]);
    }

    #[test]
    fn parses_tagged_and_bare_values() {
        let cplc = Cplc::from_bytes(sample());
        assert_eq!(Cplc::parse(&cplc.to_tlv()), Ok(cplc.clone()));
        assert_eq!(Cplc::parse(&sample()), Ok(cplc.clone()));
        assert_eq!(cplc.ic_fabricator(), [0, 1]);
        assert_eq!(cplc.ic_type(), [2, 3]);
        assert_eq!(cplc.ic_fabrication_date(), [10, 11]);
        assert_eq!(cplc.ic_serial_number(), [12, 13, 14, 15]);
        assert_eq!(cplc.ic_batch_identifier(), [16, 17]);
        assert_eq!(cplc.ic_serial(), "0001-0203-1011-0C0D0E0F");
        assert_eq!(cplc.fabrication_date(), "0A0B");
    }

    #[test]
    fn rejects_wrong_lengths_and_broken_tlv() {
        let wrong_length = Err(CplcError("the value must be 42 bytes"));
        assert_eq!(Cplc::parse(&[]), wrong_length);
        assert_eq!(Cplc::parse(&sample()[..41]), wrong_length);
        // The TLV announces 42 bytes and carries one.
        assert_eq!(
            Cplc::parse(&[0x9F, 0x7F, 0x2A, 0x00]),
            Err(CplcError("the 9F7F TLV does not parse"))
        );
        // A well-formed TLV around a 41-byte value.
        let mut short = vec![0x9F, 0x7F, 0x29];
        short.extend_from_slice(&sample()[..41]);
        assert_eq!(Cplc::parse(&short), wrong_length);
    }
}
