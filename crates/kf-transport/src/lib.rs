//! Transport layer of the keyfob station: moves raw APDU bytes between the
//! host and a card, with no protocol knowledge above ISO 7816 transmission.
//!
//! ```text
//!  kf-scp03 / kf-perso (protocol)
//!         │ RawApdu (C-APDU bytes + Sensitivity)
//!         ▼
//!  Iso7816Driver ── 61xx GET RESPONSE loop, 6Cxx re-issue, extended-length check
//!         ▼
//!  TracingTransport (redacted audit trace)  /  FaultyTransport (tests)
//!         ▼
//!  Transport: PcscTransport (pcsc feature) │ LoopbackTransport<VirtualCard>
//!                                          │
//!  vpcd bridge: VirtualCard ◀──TCP── pcscd + libifdvpcd ◀── PcscTransport
//! ```
//!
//! * [`Transport`]: the trait every backend implements.
//! * [`iso7816`]: the ISO/IEC 7816-3/-4 transmission conventions.
//! * `loopback` (feature `sim`): `VirtualCard` and the in-process transport.
//! * [`link`]: the ISO/IEC 14443-4 timing model (and, with `sim`, `PacedCard`).
//! * [`trace`]: redacting recorder; `fault` (feature `sim`): fault injector.
//! * `vpcd` (feature `sim`): serves a `VirtualCard` to pcscd via vsmartcard's vpcd.
//! * `pcsc` (feature `pcsc` on Linux, always on Windows/macOS): PC/SC backend.
//! * [`readers`]: `list_readers_with_status` for `kf-station readers`.
//! * [`TransportExt`]: typed `kf-apdu` commands over any transport.
//!
//! Depends on `kf-apdu` alone; it must not depend on SCP03, the profile or the pipeline
//! (it moves bytes and knows ISO 7816 transmission, nothing above). The simulated cards and
//! links sit behind the `sim` feature, so a factory build carries none of them.

mod apdu_ext;
#[cfg(any(test, feature = "sim"))]
pub mod echo;
pub mod error;
#[cfg(any(test, feature = "sim"))]
pub mod fault;
pub mod iso7816;
pub mod link;
#[cfg(any(test, feature = "sim"))]
pub mod loopback;
#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
pub mod pcsc;
pub mod readers;
pub mod trace;
pub mod transport;
#[cfg(any(test, feature = "sim"))]
pub mod vpcd;

pub use apdu_ext::TransportExt;
#[cfg(any(test, feature = "sim"))]
pub use echo::EchoCard;
pub use error::TransportError;
#[cfg(any(test, feature = "sim"))]
pub use fault::{FaultPlan, FaultyTransport};
pub use iso7816::{read_uid, DriverConfig, Iso7816Driver};
#[cfg(any(test, feature = "sim"))]
pub use link::PacedCard;
pub use link::{BitRate, LinkModel};
#[cfg(any(test, feature = "sim"))]
pub use loopback::{Intercepted, LoopbackTransport, VirtualCard};
pub use readers::{list_readers_with_status, ReaderInfo};
pub use trace::{ApduTrace, Direction, TraceEntry, TracingTransport};
pub use transport::{Layer, RawApdu, Sensitivity, Transport, EXTENDED_APDU_MAX, SHORT_APDU_MAX};
#[cfg(any(test, feature = "sim"))]
pub use vpcd::{BridgeControl, BridgeHandle, VpcdConfig};
