//! The sans-IO server step of the wire protocol (§7.2, §7.4): bytes in, bytes out. A
//! transport (the TCP server of the `sks` crate, or [`WireLoopback`] in process) carries the
//! frames; this module never touches a socket.

use crate::api::{encode_result, Request, Response, SksApi};
use crate::error::{ErrorCode, SksError};

/// Server step: decodes a request, executes it, encodes the response. Never panics.
pub fn handle_frame(sks: &mut impl SksApi, request: &[u8]) -> Vec<u8> {
    encode_result(&decode_request(request).and_then(|req| sks.call(req)))
}

/// Decodes a request frame; a malformed one (unknown method ID, truncated or trailing argument
/// bytes, an out-of-range value) is ERROR_OPTION naming the defect: the frame arrived intact
/// over the link, so its arguments are an invalid option (§7.3), not a communication failure.
/// Nothing is executed, so no session is aborted.
pub fn decode_request(request: &[u8]) -> Result<Request, SksError> {
    Request::decode(request)
        .map_err(|e| SksError::new(ErrorCode::Option, format!("Malformed request: {e}")))
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
        let bytes = request.encode()?;
        let reply = handle_frame(&mut self.inner, &bytes);
        Response::decode(id, &reply).map_err(external)?
    }
}
