//! PC/SC backend on the `pcsc` crate (pcsc-lite on Linux/macOS, WinSCard on
//! Windows).
//!
//! ```text
//! PcscContext ──list / status / wait (SCardGetStatusChange)──▶ readers
//!      │ connect (exclusive, T=0|T=1)
//!      ▼
//! PcscTransport ──SCardTransmit──▶ card      (reset → SCardReconnect)
//!      └─ transaction() ─▶ PcscTransaction (SCardBeginTransaction … End)
//! ```
//!
//! Built always on Windows and macOS, behind the `pcsc` cargo feature on Linux.

mod card;
mod context;
mod errors;
mod watch;

pub use card::{
    CardDisposition, ConnectOptions, PcscProtocol, PcscTransaction, PcscTransport, ShareMode,
};
pub use context::{PcscCanceller, PcscContext};
pub use errors::map_pcsc_error;
pub use watch::{CardWatch, ReaderEvent};
