//! Redacting APDU trace recorder.
//!
//! ```text
//! caller ──transmit(RawApdu)──▶ TracingTransport ──▶ inner Transport
//!                                              │
//!                                              └─▶ ApduTrace (TX/RX entries, redacted)
//!                                                    └─▶ entries() → audit record (serde)
//! ```
//!
//! Redaction is by construction: a sensitive exchange is stored as the 4-byte
//! command header and lengths only; its response as length and status word.
//! The raw bytes of a sensitive exchange are never copied into the trace, nor
//! into `tracing` events.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::TransportError;
use crate::transport::{Layer, RawApdu, Sensitivity, Transport};

/// Direction of a trace entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Command, host to card.
    Tx,
    /// Response, card to host (or a transport error instead of one).
    Rx,
}

/// One recorded command or response, ready for an audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    /// Sequence number within the trace, from 0.
    pub seq: u64,
    /// TX or RX.
    pub direction: Direction,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Microseconds since the trace was created (monotonic).
    pub elapsed_us: u64,
    /// Hex of the bytes: the full APDU, or for a sensitive exchange only the
    /// command header (TX) / nothing (RX).
    pub apdu_hex: String,
    /// Length of the real APDU in bytes (also for redacted entries).
    pub len: usize,
    /// True when `apdu_hex` was redacted.
    pub redacted: bool,
    /// SW1 of a response.
    pub sw1: Option<u8>,
    /// SW2 of a response.
    pub sw2: Option<u8>,
    /// Transport error that replaced the response, if any.
    pub error: Option<String>,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Tx => ">>",
            Direction::Rx => "<<",
        };
        if let Some(err) = &self.error {
            return write!(f, "{arrow} error: {err}");
        }
        let hex = self.apdu_hex.to_uppercase();
        if self.redacted {
            match self.direction {
                Direction::Tx => write!(f, "{arrow} {hex} [sensitive, {} bytes]", self.len),
                Direction::Rx => write!(
                    f,
                    "{arrow} [sensitive, {} bytes] {:02X}{:02X}",
                    self.len,
                    self.sw1.unwrap_or(0),
                    self.sw2.unwrap_or(0)
                ),
            }
        } else {
            write!(f, "{arrow} {hex}")
        }
    }
}

#[derive(Debug)]
struct TraceBuf {
    started: Instant,
    entries: Vec<TraceEntry>,
}

/// Shared handle to a recorded trace; clones see the same entries, so a test
/// or the audit stage can read what a transport deeper in the stack recorded.
#[derive(Debug, Clone)]
pub struct ApduTrace {
    inner: Arc<Mutex<TraceBuf>>,
}

impl Default for ApduTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl ApduTrace {
    /// An empty trace whose clock starts now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(TraceBuf {
                started: Instant::now(),
                entries: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TraceBuf> {
        // A panic elsewhere must not make the audit trail unreadable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of all entries, oldest first.
    pub fn entries(&self) -> Vec<TraceEntry> {
        self.lock().entries.clone()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes all entries (the clock keeps running).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn push(
        &self,
        direction: Direction,
        apdu_hex: String,
        len: usize,
        redacted: bool,
        sw: Option<(u8, u8)>,
        error: Option<String>,
    ) {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut buf = self.lock();
        let elapsed_us = u64::try_from(buf.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let entry = TraceEntry {
            seq: buf.entries.len() as u64,
            direction,
            at_unix_ms,
            elapsed_us,
            apdu_hex,
            len,
            redacted,
            sw1: sw.map(|s| s.0),
            sw2: sw.map(|s| s.1),
            error,
        };
        tracing::debug!(target: "kf_transport::apdu", "{entry}");
        buf.entries.push(entry);
    }

    /// Records a command; a sensitive one keeps its 4-byte header only.
    pub fn record_command(&self, command: RawApdu<'_>) {
        let apdu = command.bytes();
        let redacted = command.is_sensitive();
        let shown = if redacted {
            &apdu[..apdu.len().min(4)]
        } else {
            apdu
        };
        self.push(
            Direction::Tx,
            hex::encode(shown),
            apdu.len(),
            redacted,
            None,
            None,
        );
    }

    /// Records a response (or the error that replaced it); a sensitive one
    /// keeps its length and status word only.
    pub fn record_response(
        &self,
        result: &Result<Vec<u8>, TransportError>,
        sensitivity: Sensitivity,
    ) {
        match result {
            Ok(resp) => {
                let redacted = sensitivity == Sensitivity::Sensitive;
                let sw = match resp.as_slice() {
                    [.., sw1, sw2] => Some((*sw1, *sw2)),
                    _ => None,
                };
                let hex = if redacted {
                    String::new()
                } else {
                    hex::encode(resp)
                };
                self.push(Direction::Rx, hex, resp.len(), redacted, sw, None);
            }
            Err(err) => self.push(
                Direction::Rx,
                String::new(),
                0,
                false,
                None,
                Some(err.to_string()),
            ),
        }
    }
}

/// A [`Transport`] wrapper that records every exchange into an [`ApduTrace`].
#[derive(Debug)]
pub struct TracingTransport<T> {
    inner: T,
    trace: ApduTrace,
}

impl<T: Transport> TracingTransport<T> {
    /// Wraps `inner` with a new trace.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            trace: ApduTrace::new(),
        }
    }

    /// Wraps `inner`, recording into an existing trace handle.
    pub fn with_trace(inner: T, trace: ApduTrace) -> Self {
        Self { inner, trace }
    }

    /// A handle to the trace (shares the entries).
    pub fn trace(&self) -> ApduTrace {
        self.trace.clone()
    }

    /// Unwraps the transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Layer for TracingTransport<T> {
    crate::layer_inner!(inner: T);
    fn on_transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        self.trace.record_command(apdu);
        let result = self.inner.transmit(apdu);
        self.trace.record_response(&result, apdu.sensitivity());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::EchoCard;
    use crate::iso7816::Iso7816Driver;
    use crate::loopback::LoopbackTransport;

    const SECRET: [u8; 8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x23, 0x45, 0x67];

    #[test]
    fn sensitive_exchange_keeps_header_and_lengths_only() {
        let mut t = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
        let trace = t.trace();
        t.transmit(RawApdu::public(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00]))
            .unwrap();
        let sensitive = [&[0x84, 0xE2, 0x80, 0x00, 0x08][..], &SECRET].concat();
        t.transmit(RawApdu::sensitive(&sensitive)).unwrap();

        let entries = trace.entries();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].apdu_hex, "00a4040002a000");
        assert!(!entries[0].redacted);
        assert_eq!(entries[1].apdu_hex, "a0009000");
        assert_eq!((entries[1].sw1, entries[1].sw2), (Some(0x90), Some(0x00)));

        assert_eq!(entries[2].direction, Direction::Tx);
        assert_eq!(entries[2].apdu_hex, "84e28000");
        assert_eq!(entries[2].len, 13);
        assert!(entries[2].redacted);
        assert_eq!(entries[3].apdu_hex, "");
        assert_eq!(entries[3].len, 10);
        assert_eq!((entries[3].sw1, entries[3].sw2), (Some(0x90), Some(0x00)));

        let json = serde_json::to_string(&entries).unwrap();
        let display: String = entries.iter().map(|e| format!("{e}\n")).collect();
        for text in [
            json.to_lowercase(),
            display.to_lowercase(),
            format!("{entries:?}").to_lowercase(),
        ] {
            assert!(!text.contains("deadbeef"), "secret leaked: {text}");
            assert!(
                !text.contains("de, ad") && !text.contains("222, 173"),
                "secret leaked: {text}"
            );
        }
        assert!(
            display.contains(">> 84E28000 [sensitive, 13 bytes]"),
            "{display}"
        );
        assert!(json.contains("\"direction\":\"tx\""), "{json}");
    }

    #[test]
    fn driver_above_tracer_forwards_sensitivity_to_get_response() {
        let tracer = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
        let trace = tracer.trace();
        let mut driver = Iso7816Driver::new(tracer);
        // P1 bit 0: the echo card answers 61xx and serves the data on GET RESPONSE.
        let apdu = [&[0x80, 0x10, 0x01, 0x00, 0x08][..], &SECRET].concat();
        assert_eq!(
            driver.transmit(RawApdu::sensitive(&apdu)).unwrap(),
            [&SECRET[..], &[0x90, 0]].concat()
        );
        let entries = trace.entries();
        assert_eq!(entries.len(), 4);
        assert!(entries.iter().all(|e| e.redacted));
        assert_eq!(entries[2].apdu_hex, "00c00000");
    }

    #[test]
    fn sensitivity_survives_every_wrapper_between_caller_and_tracer() {
        let tracer = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
        let trace = tracer.trace();
        let faulty = crate::fault::FaultPlan::new().build(tracer);
        let mut boxed: Box<dyn Transport> = Box::new(faulty);
        let mut driver = Iso7816Driver::new(&mut boxed);
        let apdu = [&[0x84, 0xE2, 0x00, 0x00, 0x08][..], &SECRET].concat();
        driver.transmit(RawApdu::sensitive(&apdu)).unwrap();
        let entries = trace.entries();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.redacted), "{entries:?}");
        assert_eq!(entries[0].apdu_hex, "84e20000");
    }

    #[test]
    fn raw_apdu_debug_redacts_sensitive_bytes() {
        let apdu = [&[0x84, 0xE2, 0x00, 0x00, 0x08][..], &SECRET].concat();
        let shown = format!("{:?}", RawApdu::sensitive(&apdu));
        assert_eq!(shown, "RawApdu(84e20000, 13 bytes, Sensitive)");
        let public = format!("{:?}", RawApdu::public(&apdu));
        assert!(public.contains("deadbeef"), "{public}");
    }

    #[test]
    fn transport_errors_are_recorded() {
        let mut inner = LoopbackTransport::new(EchoCard::default());
        inner.remove_card();
        let mut t = TracingTransport::new(inner);
        assert_eq!(
            t.transmit(RawApdu::public(&[0, 0x10, 0, 0])),
            Err(TransportError::CardRemoved)
        );
        let entries = t.trace().entries();
        assert_eq!(
            entries[1].error.as_deref(),
            Some("card removed from the reader")
        );
        assert_eq!(
            entries[1].to_string(),
            "<< error: card removed from the reader"
        );
        assert!(entries[0].elapsed_us <= entries[1].elapsed_us);
        assert!(entries[0].at_unix_ms > 1_600_000_000_000);
    }
}
