//! # sks — the `sks` command and the SKS wire protocol over a local socket
//!
//! ```text
//!  Client ──[4-byte length][request]──▶ serve ─▶ Request::decode ─▶ Sks<SqliteStorage>
//!         ◀─[4-byte length][response]──┘  (Unix socket: owner only | loopback TCP: token)
//! ```
//!
//! Each message is a 4-byte big-endian length followed by a request (`[method id][arguments]`)
//! or a response (`[status][outputs]` / `[status≠0][error string]`). [`net::serve`] runs the
//! SKS on a Unix domain socket (default) or loopback TCP with a token, with bounded
//! connections, timeouts and frame sizes; [`net::Client`] is its client.
//! The binary (`sks init | serve | device-info | keys | key show | sign | change-pin | demo`)
//! wires `sks-core`, `sks-sqlite` and, for `demo`, `sks-issuer` together. Nothing in this crate
//! holds SKS logic: the engine, the codecs and the MAC layouts live in `sks-core`, and no other
//! crate may depend on this one.

pub mod net;
