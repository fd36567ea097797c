//! Reader listing for `kf-station readers [--json]`.

use serde::Serialize;

use crate::error::TransportError;

/// One PC/SC reader and its card state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderInfo {
    /// Reader name as PC/SC reports it.
    pub name: String,
    /// True when a card is in the reader (or in the field).
    pub card_present: bool,
    /// The card's ATR in upper-case hex, when a card is present.
    pub atr: Option<String>,
}

/// Lists all PC/SC readers with card presence and ATR.
///
/// No readers is an empty list; a stopped smart card service is
/// [`TransportError::NoService`]. Without PC/SC support compiled in (Linux
/// without the `pcsc` feature) this returns [`TransportError::PcscUnavailable`].
pub fn list_readers_with_status() -> Result<Vec<ReaderInfo>, TransportError> {
    #[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
    {
        crate::pcsc::PcscContext::establish()?.readers_with_status()
    }
    #[cfg(not(any(feature = "pcsc", windows, target_os = "macos")))]
    {
        Err(TransportError::PcscUnavailable)
    }
}
