//! The [`Transport`] trait: raw APDU bytes in, raw response bytes out.
//!
//! A transport knows nothing about ISO 7816 status words, secure channels or
//! applets (sans protocol). The ISO 7816 T=0 conventions (61xx, 6Cxx) live in
//! [`crate::iso7816`], above any transport.

use serde::Serialize;

use crate::error::TransportError;

/// Largest short command APDU: header(4) + Lc(1) + 255 data + Le(1)
/// (ISO/IEC 7816-3 §12.1).
pub const SHORT_APDU_MAX: usize = 4 + 1 + 255 + 1;

/// Largest extended command APDU: header(4) + Lc(3) + 65535 data + Le(2)
/// (ISO/IEC 7816-3 §12.1).
pub const EXTENDED_APDU_MAX: usize = 4 + 3 + 65_535 + 2;

/// Whether a command carries secrets (keys, PINs, private scalars).
///
/// Sensitive exchanges are recorded by [`crate::trace`] as header and length
/// only; transports themselves treat both kinds the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// May be logged in full.
    #[default]
    Public,
    /// Log header and length only.
    Sensitive,
}

/// A link to one card that moves raw APDU bytes.
pub trait Transport {
    /// Sends one command APDU and returns the raw response (data || SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Sends one command APDU whose content is secret.
    ///
    /// Wrappers that record or log traffic override this to redact; plain
    /// transports keep the default, which is [`Transport::transmit`].
    fn transmit_sensitive(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.transmit(apdu)
    }

    /// Sends `apdu` with the given sensitivity, dispatching to
    /// [`Transport::transmit`] or [`Transport::transmit_sensitive`].
    fn transmit_as(
        &mut self,
        apdu: &[u8],
        sensitivity: Sensitivity,
    ) -> Result<Vec<u8>, TransportError> {
        match sensitivity {
            Sensitivity::Public => self.transmit(apdu),
            Sensitivity::Sensitive => self.transmit_sensitive(apdu),
        }
    }

    /// Warm-resets the card (or reconnects to it) so that a new session can
    /// start. Clears a torn/removed state where the backend can.
    fn reset(&mut self) -> Result<(), TransportError>;

    /// Largest command APDU, in bytes, this transport carries.
    fn max_apdu_len(&self) -> usize;

    /// True when extended-length APDUs (ISO/IEC 7816-4 §5.1) pass through.
    fn supports_extended(&self) -> bool {
        self.max_apdu_len() > SHORT_APDU_MAX
    }

    /// Returns true once if the card was reset or re-powered since the last
    /// call (by [`Transport::reset`] or detected from the reader), then clears
    /// the flag. A caller holding session state must drop it when this is true.
    fn was_reset(&mut self) -> bool;

    /// The card's ATR, when the backend knows it.
    fn atr(&self) -> Option<Vec<u8>> {
        None
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn transmit_sensitive(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_sensitive(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn max_apdu_len(&self) -> usize {
        (**self).max_apdu_len()
    }
    fn was_reset(&mut self) -> bool {
        (**self).was_reset()
    }
    fn atr(&self) -> Option<Vec<u8>> {
        (**self).atr()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn transmit_sensitive(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_sensitive(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn max_apdu_len(&self) -> usize {
        (**self).max_apdu_len()
    }
    fn was_reset(&mut self) -> bool {
        (**self).was_reset()
    }
    fn atr(&self) -> Option<Vec<u8>> {
        (**self).atr()
    }
}
