//! PC/SC pseudo-APDUs: commands in class `FF` that the reader answers itself
//! on behalf of a contactless card (PC/SC Part 3 v2.02 §3.2.2.1). A card
//! never sees them on a real line; virtual cards answer them in its place.

use crate::gp::ins;

/// Class byte of a pseudo-APDU. ISO/IEC 7816-4 §5.4.1 declares `FF` invalid as
/// a card class, which is why PC/SC can claim it (PC/SC Part 3 §3.2.2.1).
pub const CLA: u8 = 0xFF;

/// GET DATA P1 asking for the UID (PC/SC Part 3 §3.2.2.1.3, Table 3-3).
pub const GET_DATA_UID: u8 = 0x00;
/// GET DATA P1 asking for the historical bytes of the ATS (PC/SC Part 3
/// §3.2.2.1.3, Table 3-3).
pub const GET_DATA_HISTORICAL_BYTES: u8 = 0x01;

/// GET UID: `FF CA 00 00 00`, Le `00` asking for the whole UID
/// (PC/SC Part 3 §3.2.2.1.3).
pub const GET_UID: [u8; 5] = [CLA, ins::GET_DATA, GET_DATA_UID, 0x00, 0x00];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommandApdu;

    #[test]
    fn get_uid_is_a_case_2_get_data_for_the_whole_uid() {
        let apdu = CommandApdu::parse(&GET_UID).unwrap();
        assert_eq!(
            (apdu.cla(), apdu.ins(), apdu.p1(), apdu.p2()),
            (0xFF, 0xCA, 0, 0)
        );
        assert_eq!(apdu.le(), Some(256));
        assert!(apdu.data().is_empty());
    }
}
