//! PC/SC part 3 pseudo-APDUs answered by the reader on behalf of a
//! contactless card (PC/SC Part 3 v2.02 §3.2.2.1.3 GET DATA).

use kf_apdu::{CommandApdu, ResponseApdu};

use crate::atr::JCOP4_HISTORICAL_BYTES;
use crate::fob::{status, VirtualFob};
use crate::sw;

impl VirtualFob {
    /// `FF CA 00 00 Le` → UID; `FF CA 01 00 Le` → historical bytes (ATS).
    /// Answered in any channel state. Le shorter than the data → `6Cxx`;
    /// longer (other than `00`) → data + `6282`.
    pub(crate) fn pcsc_pseudo_apdu(&self, cmd: &CommandApdu) -> ResponseApdu {
        if cmd.ins() != 0xCA {
            return status(sw::INS_NOT_SUPPORTED);
        }
        if cmd.p2() != 0x00 || !cmd.data().is_empty() {
            return status(sw::FUNCTION_NOT_SUPPORTED);
        }
        let data = match cmd.p1() {
            0x00 => self.data.uid.as_bytes().to_vec(),
            0x01 => JCOP4_HISTORICAL_BYTES.to_vec(),
            _ => return status(sw::FUNCTION_NOT_SUPPORTED),
        };
        match cmd.le() {
            None | Some(256) => ResponseApdu::new(data, sw::OK),
            Some(le) if le < data.len() => status(sw::wrong_le(data.len())),
            Some(le) if le > data.len() => ResponseApdu::new(data, sw::END_OF_DATA),
            Some(_) => ResponseApdu::new(data, sw::OK),
        }
    }
}
