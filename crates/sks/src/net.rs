//! Length-prefixed frames over a local transport: [`serve`] runs the SKS for each connection,
//! [`Client`] is its client.
//!
//! Transports and who may connect:
//! - **Unix domain socket** (default, Unix only): the socket file is made 0600 right after it
//!   is bound, and every connection's peer credentials (`SO_PEERCRED` / `getpeereid`) must
//!   name the server's own effective user; anyone else is refused before a frame is read.
//!   An accepted connection first receives the frame `[0x00]`.
//! - **TCP** (explicit, loopback addresses only): the first frame of every connection must be
//!   the shared token of a 0600 token file ([`Token`]), compared in constant time and answered
//!   `[0x00]`; anything else gets an ERROR_AUTHORIZATION frame and the connection is closed.
//!
//! Limits ([`ServeOptions`]): a connection cap (the excess gets one error frame and is
//! closed; at most that many serving threads exist), an idle timeout between frames, a
//! deadline for the rest of a frame once its length arrived, a write timeout, and a maximum
//! frame size checked against the 4-byte length before anything is allocated.
//!
//! A PUK check of a "no limit" PUK policy waits [`sks_core::Config::puk_delay`] before acting.
//! The server waits without holding the SKS, so the penalty delays only the caller; waits for
//! the same PUK policy are serialized, so parallel connections cannot multiply the search rate.

use sks_core::api::{encode_result, Request, Response, SksApi};
use sks_core::engine::PukDelay;
use sks_core::error::{ErrorCode, SksError};
use sks_core::secret::Secret;
use sks_core::wire::{decode_request, external};
use sks_core::{Sks, Storage};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};

/// Default largest accepted frame (requests carry at most 64 KiB blobs plus headers).
pub const MAX_FRAME: usize = 1 << 20;

/// Largest token file read.
const MAX_TOKEN_FILE: u64 = 1024;

/// Network failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer did not finish a frame in time.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// Only loopback addresses may be served.
    #[error("refusing to listen on non-loopback address {0}")]
    NotLoopback(SocketAddr),
    /// A token or socket file is unusable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The server refused the connection.
    #[error("refused by server: {0}")]
    Refused(String),
}

fn file_error(path: &Path, reason: impl Into<String>) -> NetError {
    NetError::File {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<(), NetError> {
    let too_large = NetError::FrameTooLarge {
        len: payload.len(),
        limit: MAX_FRAME,
    };
    if payload.len() > MAX_FRAME {
        return Err(too_large);
    }
    let len = u32::try_from(payload.len()).map_err(|_| too_large)?;
    // One write per frame: a split header would meet Nagle + delayed ACK (~40 ms stalls).
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame of at most [`MAX_FRAME`] bytes; `Ok(None)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, NetError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame_len(len, MAX_FRAME)?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// The announced length, checked against `limit` before anything is allocated.
fn frame_len(header: [u8; 4], limit: usize) -> Result<usize, NetError> {
    let len = u32::from_be_bytes(header);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > limit {
        return Err(NetError::FrameTooLarge { len, limit });
    }
    Ok(len)
}

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Most connections served at once (one thread each); the excess is refused.
    pub max_connections: usize,
    /// Longest wait for the next frame on an open connection.
    pub idle_timeout: Duration,
    /// Deadline for the rest of a frame once it started, for the token frame, and per write.
    pub frame_timeout: Duration,
    /// Largest accepted frame.
    pub max_frame: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 32,
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            max_frame: MAX_FRAME,
        }
    }
}

/// The shared client credential of the TCP transport: the contents of a 0600 token file.
pub struct Token(Secret);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads a token file: a regular file (not a link) of at most 1 KiB holding at least 32
    /// characters, readable by its owner only (mode 0600 or stricter on Unix).
    pub fn load(path: &Path) -> Result<Self, NetError> {
        let token_file =
            |reason: &dyn std::fmt::Display| file_error(path, format!("token file: {reason}"));
        let text = kf_files::read_regular(path, MAX_TOKEN_FILE, kf_files::Links::Refuse)
            .map(Secret::new)
            .map_err(|e| token_file(e.kind()))?;
        if !kf_secret_file::check_owner_only(path).map_err(|e| token_file(&e))? {
            return Err(token_file(
                &"its mode gives other users access; it must be 0600",
            ));
        }
        let token = text.expose().trim_ascii();
        if token.len() < 32 {
            return Err(file_error(path, "token is shorter than 32 characters"));
        }
        Ok(Self(Secret::from_slice(token)))
    }

    /// Loads the token file, or creates it with a fresh random token (256 bits, hex) if it does
    /// not exist ([`kf_secret_file::write_new`]: owner-only from the creating call, linked into
    /// place without replacing a file that appeared meanwhile).
    pub fn load_or_create(path: &Path) -> Result<Self, NetError> {
        if std::fs::symlink_metadata(path).is_err() {
            let text = sks_core::crypto::random_hex_line(32)
                .map_err(|e| file_error(path, format!("token file: {e}")))?;
            kf_secret_file::write_new(path, text.expose())
                .map_err(|e| file_error(path, format!("token file: cannot create: {e}")))?;
        }
        Self::load(path)
    }

    fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq(presented)
    }
}

/// A bound listener with its access rule.
#[derive(Debug)]
pub enum Listener {
    /// A Unix domain socket (0600, peer must be the server's user).
    #[cfg(unix)]
    Unix {
        /// The listener.
        listener: UnixListener,
        /// The socket file, removed when the listener is dropped.
        path: PathBuf,
    },
    /// Loopback TCP; the first frame must be the token.
    Tcp {
        /// The listener.
        listener: TcpListener,
        /// The expected token.
        token: Token,
    },
}

impl Listener {
    /// Binds a loopback TCP listener (`127.0.0.1:PORT`); other addresses are refused.
    pub fn tcp(addr: &str, token: Token) -> Result<Self, NetError> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        if !local.ip().is_loopback() {
            return Err(NetError::NotLoopback(local));
        }
        Ok(Self::Tcp { listener, token })
    }

    /// Binds a Unix domain socket at `path` and makes it 0600. A stale socket file (nobody
    /// listening) is replaced; a live one or any other file is an error.
    #[cfg(unix)]
    pub fn unix(path: &Path) -> Result<Self, NetError> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(file_error(path, "exists and is not a socket"));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(file_error(
                    path,
                    "another server is listening on this socket",
                ));
            }
            std::fs::remove_file(path).map_err(|e| file_error(path, e.to_string()))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| file_error(path, e.to_string()))?;
        // Peer credentials are checked on every connection, so the moment between bind and
        // chmod admits nobody else either.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| file_error(path, e.to_string()))?;
        Ok(Self::Unix {
            listener,
            path: path.to_owned(),
        })
    }

    /// Where clients connect (socket path or `IP:PORT`).
    pub fn describe(&self) -> Result<String, NetError> {
        Ok(match self {
            #[cfg(unix)]
            Self::Unix { path, .. } => path.display().to_string(),
            Self::Tcp { listener, .. } => listener.local_addr()?.to_string(),
        })
    }
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix { path, .. } = self {
            // Best effort: a leftover socket file is replaced by the next bind anyway.
            std::fs::remove_file(path).ok();
        }
    }
}

/// Socket operations the server needs from both stream types.
trait Conn: Read + Write + Send + 'static {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
}

impl Conn for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
}

#[cfg(unix)]
impl Conn for UnixStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
}

/// Reads `buf` completely before `deadline`; `Ok(false)` on end of stream before the first byte.
fn read_until(c: &mut impl Conn, buf: &mut [u8], deadline: Instant) -> Result<bool, NetError> {
    let mut done = 0;
    while done < buf.len() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(NetError::Timeout)?;
        c.set_read_timeout(Some(left))?;
        let rest = buf.get_mut(done..).unwrap_or_default();
        match c.read(rest) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(NetError::Timeout)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Reads one frame: the length within `wait`, the rest within `opts.frame_timeout`.
fn read_frame_bounded(
    c: &mut impl Conn,
    wait: Duration,
    opts: &ServeOptions,
) -> Result<Option<Vec<u8>>, NetError> {
    let mut header = [0u8; 4];
    if !read_until(c, &mut header, Instant::now() + wait)? {
        return Ok(None);
    }
    let len = frame_len(header, opts.max_frame)?;
    let mut buf = vec![0u8; len];
    if !read_until(c, &mut buf, Instant::now() + opts.frame_timeout)? && len > 0 {
        return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(buf))
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> Vec<u8> {
    encode_result(&Err(SksError::new(code, message)))
}

/// The state every connection shares: the SKS behind one lock, and one gate per PUK policy
/// whose delay is being waited out.
struct Shared<S: Storage> {
    sks: Mutex<Sks<S>>,
    puk_gates: Mutex<BTreeMap<u32, Arc<Mutex<()>>>>,
}

impl<S: Storage> Shared<S> {
    fn handle(&self, frame: &[u8]) -> Vec<u8> {
        let request = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => return encode_result(&Err(e)),
        };
        let Ok(sks) = self.sks.lock() else {
            return error_frame(ErrorCode::NotAvailable, "SKS unavailable");
        };
        let Some(delay) = sks.puk_delay_for(&request) else {
            let mut sks = sks;
            return encode_result(&sks.call(request));
        };
        drop(sks);
        encode_result(&self.call_after_delay(request, delay))
    }

    /// Waits the PUK delay holding only that PUK policy's gate, then runs the call.
    fn call_after_delay(&self, request: Request, delay: PukDelay) -> Result<Response, SksError> {
        let unavailable = || SksError::new(ErrorCode::NotAvailable, "SKS unavailable");
        let gate = {
            let mut gates = self.puk_gates.lock().map_err(|_| unavailable())?;
            Arc::clone(gates.entry(delay.puk_policy()).or_default())
        };
        let result = {
            let _turn = gate.lock().map_err(|_| unavailable())?;
            std::thread::sleep(delay.delay());
            let mut sks = self.sks.lock().map_err(|_| unavailable())?;
            sks.call_after_delay(request, delay)
        };
        if let Ok(mut gates) = self.puk_gates.lock() {
            // Drop the gate once nobody else waits on it (the map's reference plus ours).
            if Arc::strong_count(&gate) == 2 {
                gates.remove(&delay.puk_policy());
            }
        }
        result
    }
}

/// Releases a connection slot when a connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves connections until accepting fails.
pub fn serve<S: Storage + Send + 'static>(
    listener: Listener,
    sks: Sks<S>,
    opts: ServeOptions,
) -> Result<(), NetError> {
    let shared = Arc::new(Shared {
        sks: Mutex::new(sks),
        puk_gates: Mutex::new(BTreeMap::new()),
    });
    let active = Arc::new(AtomicUsize::new(0));
    let opts = Arc::new(opts);
    match &listener {
        #[cfg(unix)]
        Listener::Unix { listener: l, .. } => {
            let me = nix::unistd::geteuid();
            for stream in l.incoming() {
                let stream = stream?;
                let shared = Arc::clone(&shared);
                let o = Arc::clone(&opts);
                admit(&active, &opts, stream, move |mut s| {
                    if peer_uid(&s).ok() != Some(me) {
                        // Best effort: the peer is refused either way.
                        write_frame(
                            &mut s,
                            &error_frame(ErrorCode::Authorization, "Peer is not the SKS owner"),
                        )
                        .ok();
                        return;
                    }
                    if write_frame(&mut s, &[0]).is_ok() {
                        serve_connection(s, &shared, &o);
                    }
                });
            }
        }
        Listener::Tcp { listener: l, token } => {
            let token = Arc::new(Token(token.0.duplicate()));
            for stream in l.incoming() {
                let stream = stream?;
                if !stream.peer_addr().is_ok_and(|a| a.ip().is_loopback()) {
                    continue;
                }
                stream.set_nodelay(true)?;
                let shared = Arc::clone(&shared);
                let o = Arc::clone(&opts);
                let token = Arc::clone(&token);
                admit(&active, &opts, stream, move |mut s| {
                    if authenticate(&mut s, &token, &o) {
                        serve_connection(s, &shared, &o);
                    }
                });
            }
        }
    }
    Ok(())
}

/// Runs `f` on its own thread if a connection slot is free; otherwise answers one error
/// frame and closes the connection.
fn admit<C: Conn>(
    active: &Arc<AtomicUsize>,
    opts: &ServeOptions,
    mut stream: C,
    f: impl FnOnce(C) + Send + 'static,
) {
    if stream.set_write_timeout(Some(opts.frame_timeout)).is_err() {
        return;
    }
    let taken = active.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(Arc::clone(active));
    if taken >= opts.max_connections {
        // Best effort: the connection is closed either way.
        write_frame(
            &mut stream,
            &error_frame(
                ErrorCode::NotAllowed,
                format!(
                    "Server busy: {} connections open (limit {})",
                    taken, opts.max_connections
                ),
            ),
        )
        .ok();
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("sks-conn".into())
        .spawn(move || {
            let _slot = slot;
            f(stream);
        });
    // A failed spawn drops the closure, its stream and its slot.
    spawned.ok();
}

#[cfg(unix)]
fn peer_uid(s: &UnixStream) -> nix::Result<nix::unistd::Uid> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        getsockopt(s, PeerCredentials).map(|c| nix::unistd::Uid::from_raw(c.uid()))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        nix::unistd::getpeereid(s).map(|(uid, _)| uid)
    }
}

/// The token handshake: the first frame must be the token; `[0x00]` accepts it.
fn authenticate(s: &mut TcpStream, token: &Token, opts: &ServeOptions) -> bool {
    let presented = match read_frame_bounded(s, opts.frame_timeout, opts) {
        Ok(Some(f)) => Secret::new(f),
        _ => return false,
    };
    if token.matches(presented.expose()) {
        write_frame(s, &[0]).is_ok()
    } else {
        // Best effort: the connection is closed either way.
        write_frame(s, &error_frame(ErrorCode::Authorization, "Invalid token")).ok();
        false
    }
}

fn serve_connection<C: Conn, S: Storage>(mut stream: C, shared: &Shared<S>, opts: &ServeOptions) {
    loop {
        let frame = match read_frame_bounded(&mut stream, opts.idle_timeout, opts) {
            Ok(Some(f)) => f,
            Ok(None) | Err(NetError::Timeout) | Err(NetError::Io(_)) => return,
            Err(e) => {
                // Best effort: the connection is closed either way.
                write_frame(
                    &mut stream,
                    &error_frame(ErrorCode::External, e.to_string()),
                )
                .ok();
                return;
            }
        };
        if write_frame(&mut stream, &shared.handle(&frame)).is_err() {
            return;
        }
    }
}

/// A client of `sks serve` over any stream.
#[derive(Debug)]
pub struct Client<T> {
    stream: T,
}

/// A client over loopback TCP.
pub type TcpClient = Client<TcpStream>;

impl Client<TcpStream> {
    /// Connects and presents the token.
    pub fn connect_tcp(addr: &str, token: &Token) -> Result<Self, NetError> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        write_frame(&mut stream, token.0.expose())?;
        accepted(&mut stream)?;
        Ok(Self { stream })
    }
}

/// Reads the server's verdict on a new connection: `[0x00]`, or an error frame.
fn accepted(stream: &mut impl Read) -> Result<(), NetError> {
    match read_frame(stream)? {
        Some(reply) if reply == [0] => Ok(()),
        Some(reply) => Err(NetError::Refused(match Response::decode(1, &reply) {
            Ok(Err(e)) => e.to_string(),
            _ => "unexpected reply".into(),
        })),
        None => Err(NetError::Refused("connection closed".into())),
    }
}

#[cfg(unix)]
impl Client<UnixStream> {
    /// Connects to a Unix domain socket.
    pub fn connect_unix(path: &Path) -> Result<Self, NetError> {
        let mut stream = UnixStream::connect(path).map_err(|e| file_error(path, e.to_string()))?;
        accepted(&mut stream)?;
        Ok(Self { stream })
    }
}

impl<T> Client<T> {
    /// The connected stream (for sending raw frames).
    pub fn into_stream(self) -> T {
        self.stream
    }
}

impl<T: Read + Write> SksApi for Client<T> {
    fn call(&mut self, request: Request) -> Result<Response, SksError> {
        let id = request.method_id();
        write_frame(&mut self.stream, &request.encode()?).map_err(external)?;
        let reply = read_frame(&mut self.stream)
            .map_err(external)?
            .ok_or_else(|| external("connection closed"))?;
        Response::decode(id, &reply).map_err(external)?
    }
}
