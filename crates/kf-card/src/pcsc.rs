//! PC/SC part 3 pseudo-APDUs answered by the reader on behalf of a
//! contactless card (PC/SC Part 3 v2.02 §3.2.2.1.3 GET DATA).

use kf_apdu::gp::{ins, pcsc};
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};

use crate::atr::JCOP4_HISTORICAL_BYTES;
use crate::fob::{status, VirtualFob};

impl VirtualFob {
    /// `FF CA 00 00 Le` → UID; `FF CA 01 00 Le` → historical bytes (ATS).
    /// Answered in any channel state. Le shorter than the data → `6Cxx`;
    /// longer (other than `00`) → data + `6282`.
    pub(crate) fn pcsc_pseudo_apdu(&self, cmd: &CommandApdu) -> ResponseApdu {
        if cmd.ins() != ins::GET_DATA {
            return status(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.p2() != 0x00 || !cmd.data().is_empty() {
            return status(StatusWord::FUNCTION_NOT_SUPPORTED);
        }
        let data = match cmd.p1() {
            pcsc::GET_DATA_UID => self.data.uid.as_bytes().to_vec(),
            pcsc::GET_DATA_HISTORICAL_BYTES => JCOP4_HISTORICAL_BYTES.to_vec(),
            _ => return status(StatusWord::FUNCTION_NOT_SUPPORTED),
        };
        match cmd.le() {
            None | Some(256) => ResponseApdu::new(data, StatusWord::SUCCESS),
            Some(le) if le < data.len() => status(StatusWord::wrong_le(data.len())),
            Some(le) if le > data.len() => ResponseApdu::new(data, StatusWord::END_OF_DATA),
            Some(_) => ResponseApdu::new(data, StatusWord::SUCCESS),
        }
    }
}
