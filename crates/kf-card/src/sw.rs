//! The status words the fob answers with (ISO/IEC 7816-4 §5.6, GPC 2.3.1
//! §11.1.3 and the per-command tables of chapter 11). The crate top doc has
//! the table of which command returns which.

use kf_apdu::StatusWord;

/// `9000`: success.
pub const OK: StatusWord = StatusWord::from_u16(0x9000);
/// `6283`: warning, card life cycle is CARD_LOCKED (SELECT of the ISD, GPC Table 11-83).
pub const CARD_LOCKED_WARNING: StatusWord = StatusWord::from_u16(0x6283);
/// `6700`: wrong length (Lc or Le).
pub const WRONG_LENGTH: StatusWord = StatusWord::from_u16(0x6700);
/// `6881`: logical channel not supported.
pub const LOGICAL_CHANNEL_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6881);
/// `6882`: secure messaging not supported (ISO SM classes; the fob only does GP SCP03).
pub const SM_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6882);
/// `6884`: command chaining not supported.
pub const CHAINING_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6884);
/// `6982`: security status not satisfied (no channel, bad MAC, bad cryptogram).
pub const SECURITY_STATUS: StatusWord = StatusWord::from_u16(0x6982);
/// `6985`: conditions of use not satisfied (life cycle forbids the command).
pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord::from_u16(0x6985);
/// `6581`: memory failure (the state file could not be written; the change is rolled back).
pub const MEMORY_FAILURE: StatusWord = StatusWord::from_u16(0x6581);
/// `6A80`: incorrect values in the command data.
pub const WRONG_DATA: StatusWord = StatusWord::from_u16(0x6A80);
/// `6A81`: function not supported (SELECT of the applet while CARD_LOCKED, GPC Table 11-84).
pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6A81);
/// `6A82`: application or file not found.
pub const NOT_FOUND: StatusWord = StatusWord::from_u16(0x6A82);
/// `6A86`: incorrect P1 P2.
pub const WRONG_P1P2: StatusWord = StatusWord::from_u16(0x6A86);
/// `6A88`: referenced data not found (unknown DGI, unknown key version, unknown GET DATA tag).
pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord::from_u16(0x6A88);
/// `6D00`: instruction not supported.
pub const INS_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6D00);
/// `6E00`: class not supported.
pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord::from_u16(0x6E00);
/// `6F00`: no precise diagnosis (internal failure; the fob never panics).
pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord::from_u16(0x6F00);

/// `6282`: end of data reached before Le bytes (PC/SC part 3 GET DATA).
pub const END_OF_DATA: StatusWord = StatusWord::from_u16(0x6282);

/// `6Cxx`: wrong Le, `available` bytes are ready (PC/SC part 3 GET DATA).
pub fn wrong_le(available: usize) -> StatusWord {
    StatusWord::new(0x6C, (available & 0xFF) as u8)
}
