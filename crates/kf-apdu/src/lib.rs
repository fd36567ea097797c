//! ISO/IEC 7816-4 APDU codec, status words, GlobalPlatform command builders,
//! and the DGI and BER-TLV codecs used for personalization.
//!
//! Data flow (no I/O here; a transport moves the bytes):
//!
//! ```text
//! host:  gp::* builders ──CommandApdu──▶ [SCP03 wrap] ──▶ to_bytes() ──▶ transport
//!        transport ──bytes──▶ ResponseApdu::parse ──▶ sw().kind(), data()
//! perso: Dgi::encode_into ──▶ gp::block_ranges ──▶ gp::store_data(P1, n, block)
//! card:  CommandApdu::parse ──▶ StoreDataP1::from_byte_strict ──▶ DgiStreamDecoder::feed ──▶ Dgi
//! ```
//!
//! Modules: [`CommandApdu`] / [`ResponseApdu`] (ISO/IEC 7816-3 §12.1 cases
//! 1–4, short and extended), [`StatusWord`] (ISO/IEC 7816-4 §5.6, GPC 2.3.1
//! §11.1.3), [`gp`] (GPC 2.3.1 chapter 11 and Appendix D builders),
//! [`atr`] (ISO/IEC 7816-3 §8.2 ATR, historical card capabilities),
//! [`dgi`] (GPC 2.3.1 §11.1.12), [`tlv`] (ISO/IEC 8825-1 BER-TLV).
//!
//! Parsers never panic and reject every malformed length combination.
//! Sensitive commands (PUT KEY, encrypted STORE DATA) and sensitive DGIs carry
//! a flag that makes `Debug`/`Display` print only the header and length, and
//! wipes their data on drop.
//!
//! ```
//! use kf_apdu::gp::{self, StoreDataEncryption, StoreDataP1, StoreDataStructure};
//! use kf_apdu::{CommandApdu, Dgi, ResponseApdu, StatusKind};
//!
//! let dgis = [Dgi::new(0xA006, [0x11; 16])];
//! let block = Dgi::encode_sequence(&dgis)?;
//! let p1 = StoreDataP1 {
//!     last_block: true,
//!     encryption: StoreDataEncryption::None,
//!     structure: StoreDataStructure::Dgi,
//!     expects_response: false,
//! };
//! let cmd = gp::store_data(p1, 0, block);
//! assert_eq!(cmd.to_bytes()[..5], [0x80, 0xE2, 0x88, 0x00, 19]);
//! assert_eq!(CommandApdu::parse(&cmd.to_bytes())?, cmd);
//!
//! let rsp = ResponseApdu::parse(&[0x69, 0x82])?;
//! assert_eq!(rsp.sw().kind(), StatusKind::SecurityStatusNotSatisfied);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Depends on no other crate of the workspace: it encodes and decodes bytes and never sends
//! them, so it must not depend on a transport, a channel or a card.

/// A sensitive value wipes its bytes when dropped: the one rule for every type
/// that carries a `data: Vec<u8>` and a `sensitive` flag.
macro_rules! wipe_sensitive_data_on_drop {
    ($ty:ty) => {
        impl Drop for $ty {
            fn drop(&mut self) {
                if self.sensitive {
                    zeroize::Zeroize::zeroize(&mut self.data);
                }
            }
        }
    };
}

pub mod atr;
mod command;
pub mod dgi;
mod error;
pub mod gp;
mod response;
mod status;
pub mod tlv;

pub use command::{
    ApduCase, CommandApdu, LengthForm, MAX_DATA_LEN, MAX_LE, MAX_SHORT_DATA_LEN, MAX_SHORT_LE,
};
pub use dgi::{Dgi, DgiError, DgiStreamDecoder};
pub use error::ApduError;
pub use response::ResponseApdu;
pub use status::{StatusKind, StatusWord};
pub use tlv::{Tag, Tlv, TlvError, TlvValue};
