//! Bridge that serves a [`VirtualCard`] to pcscd through vsmartcard's vpcd
//! reader driver.
//!
//! ```text
//! PC/SC app ──▶ pcscd ──▶ libifdvpcd (listens on TCP 35963 + slot) ◀──TCP── this bridge ──▶ VirtualCard
//! ```
//!
//! Wire protocol (vsmartcard `vpcd.c`): every message in both directions is a
//! 2-byte big-endian length followed by that many bytes. A 1-byte message from
//! vpcd is a control code ([`CTRL_POWER_OFF`], [`CTRL_POWER_ON`], [`CTRL_RESET`],
//! [`CTRL_GET_ATR`]); only GET ATR is answered (with the ATR). Longer messages
//! are command APDUs, answered with the response APDU.
//!
//! The bridge is the TCP client. When the connection drops (pcscd restarted,
//! vpcd gone) the card is powered off, and the bridge reconnects with
//! exponential backoff until stopped through its [`BridgeControl`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::TransportError;
use crate::loopback::VirtualCard;

/// Default vpcd address: slot 0 of the `vsmartcard-vpcd` package
/// (`/etc/reader.conf.d/vpcd`, CHANNELID 0x8C7B). Slot 1 listens on 35964.
pub const DEFAULT_VPCD_ADDR: &str = "127.0.0.1:35963";
/// Control code: power the card off.
pub const CTRL_POWER_OFF: u8 = 0x00;
/// Control code: power the card on.
pub const CTRL_POWER_ON: u8 = 0x01;
/// Control code: warm reset.
pub const CTRL_RESET: u8 = 0x02;
/// Control code: return the ATR.
pub const CTRL_GET_ATR: u8 = 0x04;

/// Bridge settings.
#[derive(Debug, Clone)]
pub struct VpcdConfig {
    /// `host:port` of the vpcd slot.
    pub addr: String,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// How often a blocked read wakes up to check for a stop request.
    pub poll_interval: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
}

impl Default for VpcdConfig {
    fn default() -> Self {
        Self::new(DEFAULT_VPCD_ADDR)
    }
}

impl VpcdConfig {
    /// Settings for `addr` with default timings.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            poll_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Default)]
struct ControlInner {
    stop: AtomicBool,
    connected: AtomicBool,
    connections: AtomicU64,
    failed_connects: AtomicU64,
    apdus: AtomicU64,
    /// `0x100 | INS` of the last command APDU served; 0 before the first.
    last_ins: AtomicU16,
}

/// Shared stop switch and status of a running bridge (clone freely; e.g. set
/// `stop()` from a SIGINT handler).
#[derive(Debug, Clone, Default)]
pub struct BridgeControl {
    inner: Arc<ControlInner>,
}

impl BridgeControl {
    /// A fresh control (not stopped).
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the bridge to close its connection and return.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }
    /// True once `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }
    /// True while connected to vpcd.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }
    /// Number of successful connections so far.
    pub fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::SeqCst)
    }
    /// Number of connection attempts that found no vpcd listening so far.
    pub fn failed_connects(&self) -> u64 {
        self.inner.failed_connects.load(Ordering::SeqCst)
    }
    /// Number of command APDUs served so far.
    pub fn apdus(&self) -> u64 {
        self.inner.apdus.load(Ordering::SeqCst)
    }
    /// The instruction byte of the last command APDU served (it stays in the clear under
    /// secure messaging), so a test can act while the card is inside a given command.
    pub fn last_ins(&self) -> Option<u8> {
        let v = self.inner.last_ins.load(Ordering::SeqCst);
        (v != 0).then_some((v & 0xFF) as u8)
    }
}

/// Accumulates length-prefixed frames across short reads and read timeouts.
#[derive(Debug, Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    fn take_frame(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if self.buf.len() < 2 + len {
            return None;
        }
        let frame = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(frame)
    }

    /// Returns a complete frame, `None` on a read timeout, an error on EOF.
    fn poll<R: Read>(&mut self, stream: &mut R) -> io::Result<Option<Vec<u8>>> {
        if let Some(frame) = self.take_frame() {
            return Ok(Some(frame));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "vpcd closed the connection",
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(self.take_frame())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn write_frame<W: Write>(stream: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 65535 bytes")
    })?;
    let mut msg = Vec::with_capacity(payload.len() + 2);
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(payload);
    stream.write_all(&msg)?;
    stream.flush()
}

/// Handles one message from vpcd; returns the reply to send, if any.
fn handle_message<C: VirtualCard + ?Sized>(
    card: &mut C,
    msg: &[u8],
    control: &BridgeControl,
) -> Option<Vec<u8>> {
    match msg {
        [] => None,
        [CTRL_POWER_OFF] => {
            card.power_off();
            None
        }
        [CTRL_POWER_ON] => {
            card.power_on();
            None
        }
        [CTRL_RESET] => {
            card.reset();
            None
        }
        [CTRL_GET_ATR] => Some(card.atr()),
        [other] => {
            tracing::warn!(code = other, "ignoring unknown vpcd control code");
            None
        }
        apdu => {
            if let Some(&ins) = apdu.get(1) {
                control
                    .inner
                    .last_ins
                    .store(0x100 | u16::from(ins), Ordering::SeqCst);
            }
            control.inner.apdus.fetch_add(1, Ordering::SeqCst);
            let resp = card.process_apdu(apdu);
            if resp.len() > usize::from(u16::MAX) {
                tracing::error!(len = resp.len(), "virtual card response too long for vpcd");
                return Some(vec![0x6F, 0x00]);
            }
            Some(resp)
        }
    }
}

/// vpcd sends the 2-byte length and the payload in two writes; with Nagle on
/// its side and delayed ACKs on ours every message would stall ~40 ms. Linux
/// leaves quick-ACK mode by itself, so it is re-armed before every read.
#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    // Best effort: without it the bridge is only slower.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

/// Serves one established connection until it drops (Err) or stop (Ok).
fn serve_connection<C: VirtualCard + ?Sized>(
    stream: &mut TcpStream,
    card: &mut C,
    config: &VpcdConfig,
    control: &BridgeControl,
) -> io::Result<()> {
    stream.set_read_timeout(Some(config.poll_interval))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    let mut reader = FrameReader::default();
    while !control.is_stopped() {
        quick_ack(stream);
        if let Some(msg) = reader.poll(stream)? {
            if let Some(reply) = handle_message(card, &msg, control) {
                write_frame(stream, &reply)?;
            }
        }
    }
    Ok(())
}

/// Sleeps `total` in slices, returning early when stopped.
fn sleep_unless_stopped(total: Duration, slice: Duration, control: &BridgeControl) {
    let deadline = Instant::now() + total;
    while !control.is_stopped() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::sleep((deadline - now).min(slice));
    }
}

fn resolve(addr: &str) -> Result<Vec<SocketAddr>, TransportError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| TransportError::Io(format!("cannot resolve vpcd address {addr}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(TransportError::Io(format!(
            "vpcd address {addr} resolves to nothing"
        )));
    }
    Ok(addrs)
}

/// Serves `card` to vpcd at `config.addr` until `control.stop()`.
///
/// Connection failures and drops are not errors: the card is powered off and
/// the bridge reconnects with backoff. Only an unresolvable address fails.
pub fn serve<C: VirtualCard + ?Sized>(
    card: &mut C,
    config: &VpcdConfig,
    control: &BridgeControl,
) -> Result<(), TransportError> {
    let addrs = resolve(&config.addr)?;
    let mut backoff = config.initial_backoff;
    while !control.is_stopped() {
        let connected = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, config.connect_timeout).ok());
        let Some(mut stream) = connected else {
            control.inner.failed_connects.fetch_add(1, Ordering::SeqCst);
            sleep_unless_stopped(backoff, config.poll_interval, control);
            backoff = (backoff * 2).min(config.max_backoff);
            continue;
        };
        backoff = config.initial_backoff;
        control.inner.connections.fetch_add(1, Ordering::SeqCst);
        control.inner.connected.store(true, Ordering::SeqCst);
        tracing::info!(addr = %config.addr, "connected to vpcd");
        let outcome = serve_connection(&mut stream, card, config, control);
        control.inner.connected.store(false, Ordering::SeqCst);
        // Leaving the reader is a card removal: transient state must go.
        card.power_off();
        if let Err(e) = outcome {
            tracing::info!(addr = %config.addr, error = %e, "vpcd connection lost; reconnecting");
            sleep_unless_stopped(config.initial_backoff, config.poll_interval, control);
        }
    }
    Ok(())
}

/// A bridge running on its own thread.
#[derive(Debug)]
pub struct BridgeHandle<C> {
    control: BridgeControl,
    thread: JoinHandle<(C, Result<(), TransportError>)>,
}

impl<C: VirtualCard + Send + 'static> BridgeHandle<C> {
    /// Starts serving `card` on a new thread.
    pub fn spawn(mut card: C, config: VpcdConfig) -> Result<Self, TransportError> {
        let control = BridgeControl::new();
        let thread_control = control.clone();
        let thread = thread::Builder::new()
            .name("vpcd-bridge".into())
            .spawn(move || {
                let result = serve(&mut card, &config, &thread_control);
                (card, result)
            })
            .map_err(|e| TransportError::Io(format!("cannot start the vpcd bridge thread: {e}")))?;
        Ok(Self { control, thread })
    }

    /// The bridge's stop switch and status.
    pub fn control(&self) -> &BridgeControl {
        &self.control
    }

    /// Waits until the bridge is connected, up to `timeout`; true if it is.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.control.is_connected() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.control.is_connected()
    }

    /// Stops the bridge (the reader then sees the card removed) and returns
    /// the card.
    pub fn stop_and_join(self) -> Result<C, TransportError> {
        self.control.stop();
        let (card, result) = self
            .thread
            .join()
            .map_err(|_| TransportError::Other("vpcd bridge thread panicked".into()))?;
        result.map(|()| card)
    }
}

/// The vpcd side of one bridge connection: what vsmartcard's vpcd does, for
/// tests and tools that stand in for it with a local TCP listener.
#[derive(Debug)]
pub struct VpcdPeer {
    stream: TcpStream,
}

impl VpcdPeer {
    /// Accepts the bridge's next connection; reads wait at most `read_timeout`.
    pub fn accept(listener: &TcpListener, read_timeout: Duration) -> io::Result<Self> {
        let (stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(read_timeout))?;
        Ok(Self { stream })
    }

    /// Sends one message (a control code or a command APDU).
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        write_frame(&mut self.stream, payload)
    }

    /// Reads the bridge's next message.
    pub fn recv(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut payload)?;
        Ok(payload)
    }

    /// Sends one message and reads the answer.
    pub fn exchange(&mut self, payload: &[u8]) -> io::Result<Vec<u8>> {
        self.send(payload)?;
        self.recv()
    }

    /// The raw connection, for writing bytes outside the framing.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

#[cfg(test)]
#[path = "vpcd_tests.rs"]
mod tests;
