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
//! * [`loopback`]: [`VirtualCard`] and the in-process transport.
//! * [`link`]: the ISO/IEC 14443-4 timing model and [`PacedCard`].
//! * [`trace`]: redacting recorder; [`fault`]: fault injector.
//! * [`vpcd`]: serves a [`VirtualCard`] to pcscd via vsmartcard's vpcd.
//! * `pcsc` (feature `pcsc` on Linux, always on Windows/macOS): PC/SC backend.
//! * [`readers`]: `list_readers_with_status` for `kf-station readers`.
//! * [`TransportExt`]: typed `kf-apdu` commands over any transport.
//!
//! ```
//! use kf_transport::{EchoCard, Iso7816Driver, LoopbackTransport, RawApdu, TracingTransport, Transport};
//!
//! let tracer = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
//! let trace = tracer.trace();
//! let mut card = Iso7816Driver::new(tracer);
//! let public = [0x80, 0x10, 0x00, 0x00, 0x01, 0x42];
//! assert_eq!(card.transmit(RawApdu::public(&public))?, [0x42, 0x90, 0x00]);
//! card.transmit(RawApdu::sensitive(&[0x80, 0x10, 0x00, 0x00, 0x02, 0x0B, 0xAD]))?;
//! let entries = trace.entries();
//! assert_eq!(entries[2].apdu_hex, "80100000"); // header only
//! # Ok::<(), kf_transport::TransportError>(())
//! ```

mod apdu_ext;
pub mod echo;
pub mod error;
pub mod fault;
pub mod iso7816;
pub mod link;
pub mod loopback;
#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
pub mod pcsc;
pub mod readers;
pub mod trace;
pub mod transport;
pub mod vpcd;

pub use apdu_ext::TransportExt;
pub use echo::EchoCard;
pub use error::TransportError;
pub use fault::{FaultPlan, FaultyTransport};
pub use iso7816::{read_uid, transceive, DriverConfig, Iso7816Driver};
pub use link::{BitRate, LinkModel, PacedCard};
pub use loopback::{Intercepted, LoopbackTransport, VirtualCard};
pub use readers::{list_readers_with_status, ReaderInfo};
pub use trace::{ApduTrace, Direction, TraceEntry, TracingTransport};
pub use transport::{Layer, RawApdu, Sensitivity, Transport, EXTENDED_APDU_MAX, SHORT_APDU_MAX};
pub use vpcd::{BridgeControl, BridgeHandle, VpcdConfig};
