//! Transport layer of the keyfob station: moves raw APDU bytes between the
//! host and a card, with no protocol knowledge above ISO 7816 transmission.
//!
//! ```text
//!  kf-scp03 / kf-perso (protocol)
//!         │ C-APDU bytes + Sensitivity
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
//! * [`loopback`]: [`VirtualCard`] and the in-process transport.
//! * [`trace`]: redacting recorder; [`fault`]: fault injector.
//! * [`vpcd`]: serves a [`VirtualCard`] to pcscd via vsmartcard's vpcd.
//! * `pcsc` (feature `pcsc` on Linux, always on Windows/macOS): PC/SC backend.
//! * [`readers`]: `list_readers_with_status` for `kf-station readers`.

mod apdu_shape;
pub mod echo;
pub mod error;
pub mod fault;
pub mod iso7816;
pub mod loopback;
#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
pub mod pcsc;
#[cfg(all(unix, feature = "pcsc"))]
pub mod pcscd_harness;
pub mod readers;
pub mod trace;
pub mod transport;
pub mod vpcd;

pub use echo::EchoCard;
pub use error::TransportError;
pub use fault::{FaultPlan, FaultyTransport};
pub use iso7816::{read_uid, transceive, DriverConfig, Iso7816Driver};
pub use loopback::{LoopbackTransport, VirtualCard};
pub use readers::{list_readers_with_status, ReaderInfo};
pub use trace::{ApduTrace, Direction, TraceEntry, TracingTransport};
pub use transport::{Sensitivity, Transport, EXTENDED_APDU_MAX, SHORT_APDU_MAX};
pub use vpcd::{BridgeControl, BridgeHandle, VpcdConfig};
