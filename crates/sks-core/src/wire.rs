//! The sans-IO server step of the wire protocol (§7.2, §7.4): bytes in, bytes out. A
//! transport (the TCP server of the `sks` crate, or [`WireLoopback`] in process) carries the
//! frames; this module never touches a socket.

use crate::api::{encode_result, Request, Response, SksApi};
use crate::error::{ErrorCode, SksError};

/// Server step: decodes a request, executes it, encodes the response. Never panics.
pub fn handle_frame(sks: &mut impl SksApi, request: &[u8]) -> Vec<u8> {
    let result = match Request::decode(request) {
        Ok(req) => sks.call(req),
        Err(e) => Err(SksError::new(
            ErrorCode::External,
            format!("Malformed request: {e}"),
        )),
    };
    encode_result(&result)
}

/// ERROR_EXTERNAL for a failed transport (§7.3): the message names the failure.
pub fn external(e: impl std::fmt::Display) -> SksError {
    SksError::new(ErrorCode::External, format!("Communication failure: {e}"))
}

/// An in-process client that still passes every call through the byte encoding.
#[derive(Debug)]
pub struct WireLoopback<A: SksApi> {
    /// The server side.
    pub inner: A,
}

impl<A: SksApi> SksApi for WireLoopback<A> {
    fn call(&mut self, request: Request) -> Result<Response, SksError> {
        let id = request.method_id();
        let bytes = request.encode();
        let reply = handle_frame(&mut self.inner, &bytes);
        Response::decode(id, &reply).map_err(external)?
    }
}
