//! PC/SC context: reader listing, card presence, waiting for insertion and
//! removal (SCardGetStatusChange), cancellation and connecting.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::pcsc::{Context, ReaderState, Scope, State};

use super::card::{ConnectOptions, PcscTransport};
use super::errors::map_pcsc_error;
use crate::error::TransportError;
use crate::readers::ReaderInfo;

/// An established PC/SC context (`SCardEstablishContext`, user scope).
#[derive(Clone)]
pub struct PcscContext {
    ctx: Context,
}

impl std::fmt::Debug for PcscContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscContext")
    }
}

/// Cancels blocking waits of a [`PcscContext`] from another thread
/// (`SCardCancel`); the wait returns [`TransportError::Cancelled`].
///
/// Two handles are equal when they come from the same
/// [`PcscContext::canceller`] call (one is a clone of the other), so a list
/// of cancellers can drop the one it was given.
#[derive(Clone)]
pub struct PcscCanceller {
    ctx: Context,
    id: u64,
}

impl PartialEq for PcscCanceller {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for PcscCanceller {}

impl std::fmt::Debug for PcscCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscCanceller")
    }
}

impl PcscCanceller {
    /// Interrupts the wait in progress on the context, if any.
    pub fn cancel(&self) -> Result<(), TransportError> {
        self.ctx.cancel().map_err(|e| map_pcsc_error(e, None))
    }
}

pub(super) fn reader_cstring(reader: &str) -> Result<CString, TransportError> {
    CString::new(reader).map_err(|_| TransportError::NoReader(reader.to_owned()))
}

fn info_from_state(name: &str, state: &ReaderState) -> ReaderInfo {
    let event = state.event_state();
    let card_present = event.contains(State::PRESENT);
    let atr = (card_present && !state.atr().is_empty()).then(|| hex::encode_upper(state.atr()));
    ReaderInfo {
        name: name.to_owned(),
        card_present,
        atr,
    }
}

impl PcscContext {
    /// Connects to the smart card service. A missing pcscd / stopped WinSCard
    /// service is [`TransportError::NoService`].
    pub fn establish() -> Result<Self, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(|e| map_pcsc_error(e, None))?;
        Ok(Self { ctx })
    }

    /// A handle that cancels this context's blocking waits.
    pub fn canceller(&self) -> PcscCanceller {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        PcscCanceller {
            ctx: self.ctx.clone(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Names of all readers. No reader is an empty list, not an error.
    pub fn list_readers(&self) -> Result<Vec<String>, TransportError> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names
                .iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()),
            Err(::pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(map_pcsc_error(e, None)),
        }
    }

    /// Current state of one reader (card present, ATR), without blocking.
    pub fn reader_status(&self, reader: &str) -> Result<ReaderInfo, TransportError> {
        let mut states = [ReaderState::new(reader_cstring(reader)?, State::UNAWARE)];
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_pcsc_error(e, Some(reader)))?;
        if states[0]
            .event_state()
            .intersects(State::UNKNOWN | State::IGNORE)
        {
            return Err(TransportError::NoReader(reader.to_owned()));
        }
        Ok(info_from_state(reader, &states[0]))
    }

    /// All readers with card presence and ATR.
    pub fn readers_with_status(&self) -> Result<Vec<ReaderInfo>, TransportError> {
        let names = self.list_readers()?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = names
            .iter()
            .map(|n| Ok(ReaderState::new(reader_cstring(n)?, State::UNAWARE)))
            .collect::<Result<Vec<_>, TransportError>>()?;
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_pcsc_error(e, None))?;
        Ok(names
            .iter()
            .zip(&states)
            .map(|(n, s)| info_from_state(n, s))
            .collect())
    }

    /// Blocks until `reader` holds a card, up to `timeout` (`None`: forever).
    /// Returns the reader state; [`TransportError::Timeout`] or
    /// [`TransportError::Cancelled`] (from a [`PcscCanceller`]) otherwise.
    pub fn wait_for_card(
        &self,
        reader: &str,
        timeout: Option<Duration>,
    ) -> Result<ReaderInfo, TransportError> {
        self.wait_until(reader, timeout, |s| {
            s.contains(State::PRESENT) && !s.contains(State::MUTE)
        })
    }

    /// Blocks until `reader` holds no card, up to `timeout` (`None`: forever).
    pub fn wait_for_removal(
        &self,
        reader: &str,
        timeout: Option<Duration>,
    ) -> Result<ReaderInfo, TransportError> {
        self.wait_until(reader, timeout, |s| !s.contains(State::PRESENT))
    }

    fn wait_until(
        &self,
        reader: &str,
        timeout: Option<Duration>,
        done: impl Fn(State) -> bool,
    ) -> Result<ReaderInfo, TransportError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut states = [ReaderState::new(reader_cstring(reader)?, State::UNAWARE)];
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            self.ctx
                .get_status_change(remaining, &mut states)
                .map_err(|e| map_pcsc_error(e, Some(reader)))?;
            let event = states[0].event_state();
            if event.intersects(State::UNKNOWN | State::IGNORE) {
                return Err(TransportError::NoReader(reader.to_owned()));
            }
            if done(event) {
                return Ok(info_from_state(reader, &states[0]));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TransportError::Timeout);
            }
            states[0].sync_current_state();
        }
    }

    /// The `pcsc` crate's context, for the other PC/SC types of this module.
    pub(super) fn raw(&self) -> &Context {
        &self.ctx
    }

    /// Blocks until a reader is added or removed (PC/SC's PnP notification),
    /// up to `timeout`; [`TransportError::Timeout`] when nothing changed or
    /// the service has no PnP notification (then poll the reader list).
    pub fn wait_for_reader_change(&self, timeout: Duration) -> Result<(), TransportError> {
        let mut states = [ReaderState::new(::pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
        // The first call only learns the current state (and its count).
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_pcsc_error(e, None))?;
        states[0].sync_current_state();
        match self.ctx.get_status_change(timeout, &mut states) {
            Ok(()) => Ok(()),
            Err(::pcsc::Error::Timeout) => Err(TransportError::Timeout),
            Err(e) => Err(map_pcsc_error(e, None)),
        }
    }

    /// Connects exclusively (T=0 or T=1) to the card in `reader`.
    pub fn connect(&self, reader: &str) -> Result<PcscTransport, TransportError> {
        self.connect_with(reader, ConnectOptions::default())
    }

    /// Connects to the card in `reader` with explicit options.
    pub fn connect_with(
        &self,
        reader: &str,
        options: ConnectOptions,
    ) -> Result<PcscTransport, TransportError> {
        PcscTransport::connect(self.ctx.clone(), reader, options)
    }
}
