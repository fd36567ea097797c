//! Test scaffolding for the real PC/SC stack. Used only as a dev-dependency
//! (and by the benchmarks): nothing here is linked into a product binary.
//!
//! ```text
//!  VpcdStack::start ─▶ pcscd::Pcscd (private pcscd, vpcd driver on ports P, P+1)
//!  VpcdStack::insert(card) ─▶ kf_transport::vpcd bridge ──TCP──▶ vpcd slot 0
//!  test code ─▶ kf_transport::pcsc::PcscContext ─▶ pcscd ─▶ "Virtual PCD 00 00"
//! ```
//!
//! * [`pcscd`]: starts and stops a pcscd with the vsmartcard vpcd driver.
//! * [`VpcdStack`]: one such pcscd in a temporary directory, taken in turns
//!   by the tests of one process (pcsc-lite has one socket per machine).
//!
//! Everything needs Unix and the `pcsc` feature; tests that use it carry
//! `#![cfg(all(unix, feature = "pcsc"))]`.

#[cfg(all(unix, feature = "pcsc"))]
pub mod pcscd;
#[cfg(all(unix, feature = "pcsc"))]
mod stack;

#[cfg(all(unix, feature = "pcsc"))]
pub use stack::{fast_vpcd_config, VpcdStack};
