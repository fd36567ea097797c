//! In-process transport to a [`VirtualCard`].
//!
//! ```text
//! host code ──APDU──▶ LoopbackTransport ──process_apdu──▶ VirtualCard (in RAM)
//! ```
//!
//! The same [`VirtualCard`] trait is served to a real pcscd by the vpcd bridge
//! ([`crate::vpcd`]), so a virtual card is written once and used both ways.

use crate::error::TransportError;
use crate::transport::{RawApdu, Transport, EXTENDED_APDU_MAX};

/// A card simulated in process: the contract between a virtual card and the
/// things that carry APDUs to it (loopback, vpcd bridge).
pub trait VirtualCard {
    /// Powers the card on (cold reset) and returns its ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Removes power: transient state (selected applet, secure channel) is lost.
    fn power_off(&mut self);
    /// Warm reset; returns the ATR.
    fn reset(&mut self) -> Vec<u8>;
    /// The ATR the card answers with, whether powered or not (vpcd asks for it
    /// to detect card presence).
    fn atr(&self) -> Vec<u8>;
    /// Processes one command APDU and returns data || SW1 SW2.
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8>;
}

/// A boxed or borrowed card is that card.
macro_rules! forward_virtual_card {
    ($($pointer:ty),*) => {$(
        impl<C: VirtualCard + ?Sized> VirtualCard for $pointer {
            fn power_on(&mut self) -> Vec<u8> {
                (**self).power_on()
            }
            fn power_off(&mut self) {
                (**self).power_off()
            }
            fn reset(&mut self) -> Vec<u8> {
                (**self).reset()
            }
            fn atr(&self) -> Vec<u8> {
                (**self).atr()
            }
            fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
                (**self).process_apdu(apdu)
            }
        }
    )*};
}

forward_virtual_card!(Box<C>, &mut C);

/// A card whose commands go through `on_apdu` (given the card and the
/// command, it returns the response): for tests and benches that watch,
/// alter or hold a session's commands. Power, reset and ATR go to the card.
pub struct Intercepted<C, F> {
    card: C,
    on_apdu: F,
}

impl<C, F> Intercepted<C, F>
where
    C: VirtualCard,
    F: FnMut(&mut C, &[u8]) -> Vec<u8>,
{
    /// `card`, its commands handled by `on_apdu`.
    pub fn new(card: C, on_apdu: F) -> Self {
        Self { card, on_apdu }
    }

    /// The card, to look at its state after the session.
    pub fn into_inner(self) -> C {
        self.card
    }
}

/// The [`VirtualCard`] methods a wrapper hands to its `card` field as they
/// are: all but `process_apdu`.
macro_rules! card_power_and_atr {
    () => {
        fn power_on(&mut self) -> Vec<u8> {
            self.card.power_on()
        }
        fn power_off(&mut self) {
            self.card.power_off()
        }
        fn reset(&mut self) -> Vec<u8> {
            self.card.reset()
        }
        fn atr(&self) -> Vec<u8> {
            self.card.atr()
        }
    };
}
pub(crate) use card_power_and_atr;

impl<C, F> VirtualCard for Intercepted<C, F>
where
    C: VirtualCard,
    F: FnMut(&mut C, &[u8]) -> Vec<u8>,
{
    card_power_and_atr!();
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        (self.on_apdu)(&mut self.card, apdu)
    }
}

/// A [`Transport`] that calls a [`VirtualCard`] directly.
#[derive(Debug)]
pub struct LoopbackTransport<C> {
    card: C,
    atr: Option<Vec<u8>>,
    reset_seen: bool,
    max_apdu_len: usize,
}

impl<C: VirtualCard> LoopbackTransport<C> {
    /// Powers `card` on and connects to it. Extended length is supported.
    pub fn new(mut card: C) -> Self {
        let atr = card.power_on();
        Self {
            card,
            atr: Some(atr),
            reset_seen: false,
            max_apdu_len: EXTENDED_APDU_MAX,
        }
    }

    /// Limits the command length, e.g. to emulate a short-APDU-only reader.
    pub fn with_max_apdu_len(mut self, max: usize) -> Self {
        self.max_apdu_len = max;
        self
    }

    /// Removes power from the card, as if it left the field; transmissions
    /// fail with [`TransportError::CardRemoved`] until [`Transport::reset`].
    pub fn remove_card(&mut self) {
        self.card.power_off();
        self.atr = None;
    }

    /// The card, e.g. to inspect its state in a test.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The card, mutably.
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// Disconnects (powering the card off) and returns the card.
    pub fn into_card(mut self) -> C {
        self.card.power_off();
        self.card
    }
}

impl<C: VirtualCard> Transport for LoopbackTransport<C> {
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        let apdu = apdu.bytes();
        if self.atr.is_none() {
            return Err(TransportError::CardRemoved);
        }
        if apdu.len() > self.max_apdu_len {
            return Err(TransportError::ApduTooLong {
                len: apdu.len(),
                max: self.max_apdu_len,
            });
        }
        Ok(self.card.process_apdu(apdu))
    }

    /// Power-cycles a removed card, warm-resets a present one.
    fn reset(&mut self) -> Result<(), TransportError> {
        let atr = match self.atr {
            None => self.card.power_on(),
            Some(_) => self.card.reset(),
        };
        self.atr = Some(atr);
        self.reset_seen = true;
        Ok(())
    }

    fn max_apdu_len(&self) -> usize {
        self.max_apdu_len
    }

    fn was_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_seen)
    }

    fn atr(&self) -> Option<Vec<u8>> {
        self.atr.clone()
    }
}
