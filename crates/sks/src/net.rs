//! Length-prefixed frames over TCP (loopback only): [`serve`] runs
//! [`sks_core::wire::handle_frame`] for each connection, [`TcpClient`] is its client.

use sks_core::api::{Request, Response, SksApi};
use sks_core::error::SksError;
use sks_core::wire::{external, handle_frame};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Largest accepted frame (requests carry at most 64 KiB blobs plus headers).
pub const MAX_FRAME: usize = 1 << 20;

/// Network failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame is larger than [`MAX_FRAME`].
    #[error("frame too large")]
    FrameTooLarge,
    /// Only loopback addresses may be served.
    #[error("refusing to listen on non-loopback address {0}")]
    NotLoopback(SocketAddr),
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<(), NetError> {
    if payload.len() > MAX_FRAME {
        return Err(NetError::FrameTooLarge);
    }
    let len = u32::try_from(payload.len()).map_err(|_| NetError::FrameTooLarge)?;
    // One write per frame: a split header would meet Nagle + delayed ACK (~40 ms stalls).
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, NetError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| NetError::FrameTooLarge)?;
    if len > MAX_FRAME {
        return Err(NetError::FrameTooLarge);
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Serves connections until the listener fails. Calls are serialized through one lock.
pub fn serve<A: SksApi + Send + 'static>(listener: TcpListener, sks: A) -> Result<(), NetError> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(NetError::NotLoopback(addr));
    }
    let shared = Arc::new(Mutex::new(sks));
    for stream in listener.incoming() {
        let stream = stream?;
        if !stream
            .peer_addr()
            .map(|a| a.ip().is_loopback())
            .unwrap_or(false)
        {
            continue;
        }
        stream.set_nodelay(true)?;
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || serve_connection(stream, &shared));
    }
    Ok(())
}

fn serve_connection<A: SksApi>(mut stream: TcpStream, sks: &Mutex<A>) {
    while let Ok(Some(frame)) = read_frame(&mut stream) {
        let reply = match sks.lock() {
            Ok(mut guard) => handle_frame(&mut *guard, &frame),
            Err(_) => return,
        };
        if write_frame(&mut stream, &reply).is_err() {
            return;
        }
    }
}

/// Binds a loopback listener (`127.0.0.1:PORT`); other addresses are refused.
pub fn bind_loopback(addr: &str) -> Result<TcpListener, NetError> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        return Err(NetError::NotLoopback(local));
    }
    Ok(listener)
}

/// A TCP client of `sks serve`.
#[derive(Debug)]
pub struct TcpClient {
    stream: TcpStream,
}

impl TcpClient {
    /// Connects.
    pub fn connect(addr: &str) -> Result<Self, NetError> {
        Ok(Self {
            stream: TcpStream::connect(addr)?,
        })
    }
}

impl SksApi for TcpClient {
    fn call(&mut self, request: Request) -> Result<Response, SksError> {
        let id = request.method_id();
        write_frame(&mut self.stream, &request.encode()).map_err(external)?;
        let reply = read_frame(&mut self.stream)
            .map_err(external)?
            .ok_or_else(|| external("connection closed"))?;
        Response::decode(id, &reply).map_err(external)?
    }
}
