//! Benchmark fixtures and the measurement loops shared by the criterion
//! benches (`cargo bench -p kf-bench`), the same-run peer comparison with
//! yubikit (`cargo run --release -p kf-bench --bin peer-compare`) and the
//! end-to-end run against the transport floor ([`e2e`], `kf-station bench`)
//!
//! Data flow of one measured APDU on the host side (its wrap
//! and unwrap):
//!
//! ```text
//! fixtures::open_pair ── deterministic handshake (fixed keys and challenges) ──▶
//!   measured SecureChannel                  LockstepResponder (a second, identical
//!        │                                  host + card pair, run untimed first)
//!        │ wrap(STORE DATA) → wire bytes         │ wrap the same command → card
//!        │                                       │ unwrap_command → wrap_response
//!        ▼                                       ▼
//!   unwrap_bytes(response) ◀──── precomputed card responses, one per command
//! ```
//!
//! Both host channels start from the same session keys, MAC chaining value
//! and encryption counter and wrap the same commands, so the responses the
//! responder's card produced are exactly the ones the measured host expects.
//! Only the measured host's wrap and unwrap are inside the timed region.
//! [`floor`] times the bare AES block operations of the same APDU as a
//! reference for what any implementation must spend.
//!
//! A tool crate: it may depend on every key-fob crate and on `kf-testkit`; no product
//! crate depends on it but the station's simulator build (`kf-station` feature `sim`).

pub mod e2e;
mod error;
pub mod fixtures;
pub mod floor;
pub mod line;
pub mod link_model;
pub mod lockstep;
pub mod measure;

pub use error::BenchError;
