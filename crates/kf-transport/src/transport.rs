//! The [`Transport`] trait: raw APDU bytes in, raw response bytes out.
//!
//! A transport knows nothing about ISO 7816 status words, secure channels or
//! applets (sans protocol). The ISO 7816 T=0 conventions (61xx, 6Cxx) live in
//! [`crate::iso7816`], above any transport.

use kf_apdu::CommandApdu;
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

impl Sensitivity {
    /// The sensitivity of a typed command ([`CommandApdu::is_sensitive`]).
    pub fn of(command: &CommandApdu) -> Self {
        if command.is_sensitive() {
            Sensitivity::Sensitive
        } else {
            Sensitivity::Public
        }
    }
}

/// A command APDU on its way to the card: its encoded bytes together with
/// their [`Sensitivity`].
///
/// The one argument of [`Transport::transmit`], so every layer that records
/// or logs traffic sees the flag with the bytes and cannot drop it. `Debug`
/// prints the 4-byte header and the length only for sensitive commands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawApdu<'a> {
    bytes: &'a [u8],
    sensitivity: Sensitivity,
}

impl<'a> RawApdu<'a> {
    /// A command with the given sensitivity.
    pub fn new(bytes: &'a [u8], sensitivity: Sensitivity) -> Self {
        Self { bytes, sensitivity }
    }

    /// A command that may be logged in full.
    pub fn public(bytes: &'a [u8]) -> Self {
        Self::new(bytes, Sensitivity::Public)
    }

    /// A command that carries secrets (keys, PINs, private scalars).
    pub fn sensitive(bytes: &'a [u8]) -> Self {
        Self::new(bytes, Sensitivity::Sensitive)
    }

    /// The encoded command.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the command carries secrets.
    pub fn sensitivity(&self) -> Sensitivity {
        self.sensitivity
    }

    /// Whether traces must show the header and length only.
    pub fn is_sensitive(&self) -> bool {
        self.sensitivity == Sensitivity::Sensitive
    }

    /// Other bytes (a re-issued or follow-up command) with this sensitivity.
    pub fn with_bytes<'b>(&self, bytes: &'b [u8]) -> RawApdu<'b> {
        RawApdu::new(bytes, self.sensitivity)
    }
}

impl std::fmt::Debug for RawApdu<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.is_sensitive() {
            &self.bytes[..self.bytes.len().min(4)]
        } else {
            self.bytes
        };
        write!(
            f,
            "RawApdu({}, {} bytes, {:?})",
            hex::encode(shown),
            self.bytes.len(),
            self.sensitivity
        )
    }
}

/// A link to one card that moves raw APDU bytes.
pub trait Transport {
    /// Sends one command APDU and returns the raw response (data || SW1 SW2).
    ///
    /// Layers that record or log traffic redact sensitive commands; plain
    /// transports treat both kinds the same.
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError>;

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

/// The three [`Layer`] items that name a wrapper's inner transport, for a
/// wrapper that keeps it in a field: `layer_inner!(inner: T);` inside the
/// `impl Layer` block stands for `type Inner = T;` and the two accessors.
#[macro_export]
macro_rules! layer_inner {
    ($field:ident: $inner:ty) => {
        type Inner = $inner;
        fn inner(&self) -> &$inner {
            &self.$field
        }
        fn inner_mut(&mut self) -> &mut $inner {
            &mut self.$field
        }
    };
}

/// A transport wrapped around another one (tracing, fault injection, the
/// ISO 7816 driver, measurement). A layer names its inner transport and
/// overrides only the calls it changes; every other call, and the APDU
/// length limits, reach the inner transport through the one blanket
/// [`Transport`] impl below, so no wrapper can drop a call (the ATR, the
/// reset flag) by forgetting to forward it.
///
/// The hooks are named `on_*` so that a value which is both a [`Layer`] and
/// a [`Transport`] has no ambiguous method names.
pub trait Layer {
    /// The wrapped transport.
    type Inner: Transport + ?Sized;

    /// The wrapped transport.
    fn inner(&self) -> &Self::Inner;

    /// The wrapped transport, mutably.
    fn inner_mut(&mut self) -> &mut Self::Inner;

    /// [`Transport::transmit`] through this layer.
    fn on_transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        self.inner_mut().transmit(apdu)
    }

    /// [`Transport::reset`] through this layer.
    fn on_reset(&mut self) -> Result<(), TransportError> {
        self.inner_mut().reset()
    }

    /// [`Transport::was_reset`] through this layer.
    fn on_was_reset(&mut self) -> bool {
        self.inner_mut().was_reset()
    }

    /// [`Transport::atr`] through this layer.
    fn on_atr(&self) -> Option<Vec<u8>> {
        self.inner().atr()
    }
}

impl<L: Layer> Transport for L {
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        self.on_transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.on_reset()
    }
    fn max_apdu_len(&self) -> usize {
        self.inner().max_apdu_len()
    }
    fn supports_extended(&self) -> bool {
        self.inner().supports_extended()
    }
    fn was_reset(&mut self) -> bool {
        self.on_was_reset()
    }
    fn atr(&self) -> Option<Vec<u8>> {
        self.on_atr()
    }
}

impl<T: Transport + ?Sized> Layer for &mut T {
    type Inner = T;
    fn inner(&self) -> &T {
        self
    }
    fn inner_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: Transport + ?Sized> Layer for Box<T> {
    type Inner = T;
    fn inner(&self) -> &T {
        self
    }
    fn inner_mut(&mut self) -> &mut T {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::{EchoCard, ECHO_CARD_ATR};
    use crate::fault::FaultPlan;
    use crate::iso7816::Iso7816Driver;
    use crate::loopback::LoopbackTransport;
    use crate::trace::TracingTransport;

    /// Every layer stack hands the card's ATR, reset flag and length limit
    /// through, without each wrapper forwarding them by hand.
    #[test]
    fn layers_pass_atr_reset_and_limits_through() {
        let card = LoopbackTransport::new(EchoCard::new(&[1, 2, 3, 4]));
        let limit = card.max_apdu_len();
        let mut stack = Iso7816Driver::new(TracingTransport::new(FaultPlan::new().build(card)));
        assert_eq!(stack.atr().as_deref(), Some(&ECHO_CARD_ATR[..]));
        assert_eq!(stack.max_apdu_len(), limit);
        let mut boxed: Box<dyn Transport> = Box::new(&mut stack);
        assert_eq!(boxed.atr().as_deref(), Some(&ECHO_CARD_ATR[..]));
        boxed.reset().unwrap();
        assert!(boxed.was_reset());
        assert!(!boxed.was_reset());
    }
}
