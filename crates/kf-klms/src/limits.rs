//! Connection and request limits of the server: every phase of a connection
//! has a deadline, the number of connections and every request body are capped.
//!
//! ```text
//! accept ──permit (max_connections, else closed at once)──▶ TLS handshake (handshake_timeout)
//!   ──▶ awaiting a request head (header_read_timeout, from the handshake or the
//!        first byte after an idle period)
//!   ──▶ request in flight: body read + handling (body_read_timeout, tower-http
//!        TimeoutLayer → 408; body over the route's limit → 413, a larger
//!        Content-Length before any body byte is read)
//!   ──▶ idle keep-alive (idle_timeout) ──▶ next head or close
//! ```
//!
//! hyper's own `header_read_timeout` starts when hyper begins waiting for a
//! request head, i.e. it also runs through the keep-alive wait, so it cannot
//! give idle connections more time than a slow header. The connection clock
//! below tells the two phases apart: it sees the first byte of a request
//! arrive (the I/O wrapper) and the request start and end (the service
//! wrapper), and fails the read with `TimedOut` when the phase's deadline passes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Limits of the server (`[limits]` in the configuration file; every field
/// is optional and defaults to the value shown in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Time allowed for the TLS handshake, from the TCP accept.
    pub handshake_timeout_ms: u64,
    /// Time allowed for a complete request head: from the end of the
    /// handshake for the first request, from its first byte for later ones.
    pub header_read_timeout_ms: u64,
    /// Time allowed for reading a request body and answering it (408 after).
    pub body_read_timeout_ms: u64,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout_ms: u64,
    /// Open connections (handshaking ones included); further connections are
    /// closed right after the accept.
    pub max_connections: usize,
    /// Body limit of `POST /v1/key-packages` in bytes.
    pub key_package_body_limit: usize,
    /// Body limit of `POST /v1/audit` in bytes.
    pub audit_body_limit: usize,
    /// Time a write waits for a SQLite ledger that another process holds
    /// locked (a backup, an `sqlite3` shell) before it fails.
    pub ledger_lock_wait_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            // The request is two short strings (≈ 100 bytes): ample margin.
            key_package_body_limit: 4 * 1024,
            // A full personalization trace is ≈ 20 KiB of hex.
            audit_body_limit: 256 * 1024,
            ledger_lock_wait_ms: crate::ledger::DEFAULT_LOCK_WAIT_MS,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable (non-zero, body limits of at least 256 bytes).
    pub fn validate(&self) -> Result<(), String> {
        let timeouts = [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("ledger_lock_wait_ms", self.ledger_lock_wait_ms),
        ];
        for (name, value) in timeouts {
            if value == 0 || value > 3_600_000 {
                return Err(format!("limits.{name} must be 1..=3600000 ms"));
            }
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            return Err("limits.max_connections must be 1..=1000000".into());
        }
        for (name, value) in [
            ("key_package_body_limit", self.key_package_body_limit),
            ("audit_body_limit", self.audit_body_limit),
        ] {
            if !(256..=16 * 1024 * 1024).contains(&value) {
                return Err(format!("limits.{name} must be 256..=16777216 bytes"));
            }
        }
        Ok(())
    }

    /// [`Limits::handshake_timeout_ms`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// [`Limits::ledger_lock_wait_ms`] as a duration.
    pub fn ledger_lock_wait(&self) -> Duration {
        Duration::from_millis(self.ledger_lock_wait_ms)
    }

    /// [`Limits::body_read_timeout_ms`] as a duration.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    AwaitingHead,
    /// A request is being served.
    InFlight,
    /// Between requests.
    Idle,
}

#[derive(Debug)]
struct ClockState {
    phase: Phase,
    since: Instant,
    in_flight: usize,
    /// The reader parked without a deadline while a request was in flight;
    /// woken when the request ends so the idle deadline gets armed.
    parked_reader: Option<Waker>,
}

/// Phase of one connection, shared by its I/O wrapper and its service.
#[derive(Debug)]
pub(crate) struct ConnClock {
    header: Duration,
    idle: Duration,
    state: Mutex<ClockState>,
}

impl ConnClock {
    /// A clock for a connection whose handshake just completed.
    pub(crate) fn new(limits: &Limits) -> Arc<ConnClock> {
        Arc::new(ConnClock {
            header: Duration::from_millis(limits.header_read_timeout_ms),
            idle: Duration::from_millis(limits.idle_timeout_ms),
            state: Mutex::new(ClockState {
                phase: Phase::AwaitingHead,
                since: Instant::now(),
                in_flight: 0,
                parked_reader: None,
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut ClockState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Request bytes arrived: an idle connection starts a new head.
    fn bytes_received(&self) {
        self.with(|s| {
            if s.phase == Phase::Idle {
                s.phase = Phase::AwaitingHead;
                s.since = Instant::now();
            }
        });
    }

    /// The head was parsed and the request handed to the service; the guard
    /// ends the request when dropped.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.with(|s| {
            s.in_flight += 1;
            s.phase = Phase::InFlight;
        });
        RequestGuard(Arc::clone(self))
    }

    /// Deadline of the current phase and what it bounds (none while a request
    /// is in flight: the body timeout of the service covers that).
    fn deadline(&self, cx: &Context<'_>) -> Option<(Instant, &'static str)> {
        self.with(|s| match s.phase {
            Phase::AwaitingHead => Some((s.since + self.header, "header read timeout")),
            Phase::Idle => Some((s.since + self.idle, "keep-alive idle timeout")),
            Phase::InFlight => {
                s.parked_reader = Some(cx.waker().clone());
                None
            }
        })
    }
}

/// Ends a request on the [`ConnClock`] when dropped.
pub(crate) struct RequestGuard(Arc<ConnClock>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let parked = self.0.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.phase = Phase::Idle;
                s.since = Instant::now();
                s.parked_reader.take()
            } else {
                None
            }
        });
        if let Some(waker) = parked {
            waker.wake();
        }
    }
}

/// The connection's byte stream with the header and idle deadlines of its
/// [`ConnClock`]: a read that would wait past the deadline fails with
/// [`io::ErrorKind::TimedOut`], which ends the connection.
pub(crate) struct WatchedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
    sleep: Pin<Box<Sleep>>,
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, clock: Arc<ConnClock>) -> WatchedIo<T> {
        WatchedIo {
            inner,
            clock,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, what)) = this.clock.deadline(cx) else {
                    return Poll::Pending;
                };
                if this.sleep.deadline() != deadline {
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits {
            idle_timeout_ms: 0,
            ..Limits::default()
        };
        assert!(zero.validate().unwrap_err().contains("idle_timeout_ms"));
        let tiny = Limits {
            audit_body_limit: 10,
            ..Limits::default()
        };
        assert!(tiny.validate().unwrap_err().contains("audit_body_limit"));
    }

    #[tokio::test(start_paused = true)]
    async fn phases_switch_between_header_flight_and_idle() {
        let limits = Limits {
            header_read_timeout_ms: 100,
            idle_timeout_ms: 1000,
            ..Limits::default()
        };
        let clock = ConnClock::new(&limits);
        let waker = Waker::noop();
        let cx = &Context::from_waker(waker);
        let start = Instant::now();
        assert_eq!(
            clock.deadline(cx).unwrap().0,
            start + Duration::from_millis(100)
        );
        let guard = clock.begin_request();
        assert!(clock.deadline(cx).is_none());
        tokio::time::advance(Duration::from_millis(500)).await;
        drop(guard);
        let (idle_deadline, what) = clock.deadline(cx).unwrap();
        assert_eq!(what, "keep-alive idle timeout");
        assert_eq!(idle_deadline, start + Duration::from_millis(1500));
        tokio::time::advance(Duration::from_millis(200)).await;
        clock.bytes_received();
        let (head_deadline, what) = clock.deadline(cx).unwrap();
        assert_eq!(what, "header read timeout");
        assert_eq!(head_deadline, start + Duration::from_millis(800));
    }
}
