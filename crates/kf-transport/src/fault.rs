//! Fault-injecting [`Transport`] wrapper for tests of higher layers.
//!
//! ```text
//! caller ──▶ FaultyTransport (plan: tear / corrupt / drop / delay at APDU n) ──▶ inner
//! ```
//!
//! APDU indices count calls to `transmit` on the wrapper,
//! from 0, including calls refused while the card is torn away. Each planned
//! fault fires once.

use std::thread;
use std::time::Duration;

use crate::error::TransportError;
use crate::transport::{Layer, RawApdu, Transport};

/// XOR `mask` into byte `byte` of the response to APDU `apdu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Corruption {
    apdu: u64,
    byte: usize,
    mask: u8,
}

/// Builder of the faults a [`FaultyTransport`] injects.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// The APDU index of each [`Event`], at most one each.
    events: [Option<u64>; Event::COUNT],
    corruptions: Vec<Corruption>,
    drops: Vec<u64>,
    delay_every: Option<Duration>,
    delays: Vec<(u64, Duration)>,
}

/// A fault planned at one APDU index, on one side of the card's processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    TearBefore,
    TearAfter,
    AbortBefore,
    AbortAfter,
}

impl Event {
    const COUNT: usize = 4;
}

impl FaultPlan {
    /// A plan without faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tear the card away before APDU `n` reaches it: call `n` and every later
    /// call fail with [`TransportError::CardRemoved`] until [`Transport::reset`].
    pub fn tear_before(self, n: u64) -> Self {
        self.at(Event::TearBefore, n)
    }

    /// Tear the card away after it processed APDU `n`: the card sees the
    /// command, the host gets [`TransportError::CardRemoved`] instead of the
    /// response, and later calls fail the same way until [`Transport::reset`].
    pub fn tear_after(self, n: u64) -> Self {
        self.at(Event::TearAfter, n)
    }

    /// XOR `mask` into byte `byte` (0-based, from the start, SW included) of the
    /// response to APDU `n`. A byte index past the end leaves it unchanged.
    pub fn corrupt_response(mut self, n: u64, byte: usize, mask: u8) -> Self {
        self.corruptions.push(Corruption {
            apdu: n,
            byte,
            mask,
        });
        self
    }

    /// The card processes APDU `n` but its response is lost: the call fails
    /// with [`TransportError::Timeout`]; the card stays present.
    pub fn drop_response(mut self, n: u64) -> Self {
        self.drops.push(n);
        self
    }

    /// The whole process aborts before APDU `n` reaches the card: the host
    /// loses power with the card untouched by that command.
    pub fn abort_before(self, n: u64) -> Self {
        self.at(Event::AbortBefore, n)
    }

    /// The whole process aborts right after the card executed APDU `n`,
    /// before the host sees the response.
    pub fn abort_after(self, n: u64) -> Self {
        self.at(Event::AbortAfter, n)
    }

    /// Delay every exchange by `delay` (before forwarding).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_every = Some(delay);
        self
    }

    /// Delay APDU `n` by `delay` (before forwarding).
    pub fn delay_at(mut self, n: u64, delay: Duration) -> Self {
        self.delays.push((n, delay));
        self
    }

    fn at(mut self, event: Event, n: u64) -> Self {
        self.events[event as usize] = Some(n);
        self
    }

    /// True when `event` is planned at APDU `n`; the event is used up.
    fn fires(&mut self, event: Event, n: u64) -> bool {
        let slot = &mut self.events[event as usize];
        let due = *slot == Some(n);
        if due {
            *slot = None;
        }
        due
    }

    /// Wraps `inner` with this plan.
    pub fn build<T: Transport>(self, inner: T) -> FaultyTransport<T> {
        FaultyTransport {
            inner,
            plan: self,
            calls: 0,
            torn: false,
            reset_seen: false,
        }
    }
}

/// A [`Transport`] that injects the faults of a [`FaultPlan`].
#[derive(Debug)]
pub struct FaultyTransport<T> {
    inner: T,
    plan: FaultPlan,
    calls: u64,
    torn: bool,
    reset_seen: bool,
}

impl<T: Transport> FaultyTransport<T> {
    /// Number of transmit calls seen so far (the index the next call gets).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// True while the card is torn away.
    pub fn is_torn(&self) -> bool {
        self.torn
    }

    /// Tears the card away now (e.g. from a test step between two calls).
    pub fn tear_now(&mut self) {
        self.torn = true;
    }

    /// Unwraps the transport.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Aborts the process or tears the card away when planned at APDU `n`.
    fn abort_or_tear(&mut self, abort: Event, tear: Event, n: u64) -> Result<(), TransportError> {
        if self.plan.fires(abort, n) {
            std::process::abort();
        }
        if self.plan.fires(tear, n) {
            self.torn = true;
            return Err(TransportError::CardRemoved);
        }
        Ok(())
    }
}

impl<T: Transport> Layer for FaultyTransport<T> {
    crate::layer_inner!(inner: T);
    fn on_transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        let n = self.calls;
        self.calls += 1;
        if self.torn {
            return Err(TransportError::CardRemoved);
        }
        self.abort_or_tear(Event::AbortBefore, Event::TearBefore, n)?;
        if let Some(delay) = self.plan.delay_every {
            thread::sleep(delay);
        }
        if let Some(pos) = self.plan.delays.iter().position(|(at, _)| *at == n) {
            let (_, delay) = self.plan.delays.swap_remove(pos);
            thread::sleep(delay);
        }
        let mut resp = self.inner.transmit(apdu)?;
        self.abort_or_tear(Event::AbortAfter, Event::TearAfter, n)?;
        if let Some(pos) = self.plan.drops.iter().position(|at| *at == n) {
            self.plan.drops.swap_remove(pos);
            return Err(TransportError::Timeout);
        }
        for c in self.plan.corruptions.iter().filter(|c| c.apdu == n) {
            if let Some(b) = resp.get_mut(c.byte) {
                *b ^= c.mask;
            }
        }
        Ok(resp)
    }
    /// Reinserts a torn card and resets it through the inner transport.
    fn on_reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()?;
        self.torn = false;
        self.reset_seen = true;
        Ok(())
    }
    fn on_was_reset(&mut self) -> bool {
        let inner = self.inner.was_reset();
        std::mem::take(&mut self.reset_seen) || inner
    }
    fn on_atr(&self) -> Option<Vec<u8>> {
        if self.torn {
            None
        } else {
            self.inner.atr()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::EchoCard;
    use crate::loopback::LoopbackTransport;

    const PING: [u8; 6] = [0x80, 0x10, 0x00, 0x00, 0x01, 0x5A];

    /// The echo card's answer to [`PING`].
    const PONG: [u8; 3] = [0x5A, 0x90, 0x00];

    type FaultyEcho = FaultyTransport<LoopbackTransport<EchoCard>>;

    fn echo() -> LoopbackTransport<EchoCard> {
        LoopbackTransport::new(EchoCard::default())
    }

    fn ping(t: &mut FaultyEcho) -> Result<Vec<u8>, TransportError> {
        t.transmit(RawApdu::public(&PING))
    }

    #[test]
    fn tear_before_n_never_reaches_the_card() {
        let mut t = FaultPlan::new().tear_before(1).build(echo());
        assert_eq!(ping(&mut t).unwrap(), PONG);
        assert_eq!(ping(&mut t).unwrap_err(), TransportError::CardRemoved);
        assert_eq!(ping(&mut t).unwrap_err(), TransportError::CardRemoved);
        assert!(t.is_torn());
        assert_eq!(t.inner_mut().card().apdus_processed(), 1);
        assert_eq!(t.atr(), None);
        t.reset().unwrap();
        assert!(t.was_reset());
        assert_eq!(ping(&mut t).unwrap(), PONG);
        assert_eq!(t.calls(), 4);
    }

    #[test]
    fn tear_after_n_reaches_the_card_but_loses_the_response() {
        let mut t = FaultPlan::new().tear_after(0).build(echo());
        assert_eq!(
            t.transmit(RawApdu::sensitive(&PING)).unwrap_err(),
            TransportError::CardRemoved
        );
        assert_eq!(t.inner_mut().card().apdus_processed(), 1);
        assert_eq!(ping(&mut t).unwrap_err(), TransportError::CardRemoved);
        assert_eq!(t.inner_mut().card().apdus_processed(), 1);
        t.reset().unwrap();
        assert!(ping(&mut t).is_ok());
    }

    #[test]
    fn corrupts_only_the_planned_byte_of_the_planned_response() {
        let mut t = FaultPlan::new()
            .corrupt_response(1, 0, 0x01)
            .corrupt_response(2, 99, 0xFF)
            .build(echo());
        assert_eq!(ping(&mut t).unwrap(), PONG);
        assert_eq!(ping(&mut t).unwrap(), vec![0x5B, 0x90, 0x00]);
        assert_eq!(ping(&mut t).unwrap(), PONG);
    }

    #[test]
    fn dropped_response_is_a_timeout_and_the_card_stays() {
        let mut t = FaultPlan::new().drop_response(0).build(echo());
        assert_eq!(ping(&mut t).unwrap_err(), TransportError::Timeout);
        assert_eq!(t.inner_mut().card().apdus_processed(), 1);
        assert_eq!(ping(&mut t).unwrap(), PONG);
    }

    #[test]
    fn delays_do_not_change_results() {
        let mut t = FaultPlan::new()
            .delay(Duration::from_millis(1))
            .delay_at(0, Duration::from_millis(2))
            .build(echo());
        assert_eq!(ping(&mut t).unwrap(), PONG);
        assert_eq!(ping(&mut t).unwrap(), PONG);
    }

    #[test]
    fn manual_tear() {
        let mut t = FaultPlan::new().build(echo());
        t.tear_now();
        assert_eq!(ping(&mut t).unwrap_err(), TransportError::CardRemoved);
        t.reset().unwrap();
        assert!(!t.is_torn());
    }
}
