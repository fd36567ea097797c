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
//! * [`postgres`]: a throwaway PostgreSQL server (initdb + pg_ctl on a
//!   temporary directory), shared by the tests of one process.
//!
//! * [`audit`]: audit records as a station uploads them.
//!
//! * [`process`]: checks on finished child processes.
//!
//! * [`browser`]: headless Chromium through chromedriver (WebDriver), for
//!   the console's browser test.
//!
//! The PC/SC parts need Unix and the `pcsc` feature; tests that use it carry
//! `#![cfg(all(unix, feature = "pcsc"))]`.
//!
//! Depends on `kf-transport` (feature `sim`) alone; no product crate may depend on it
//! except `kf-bench`, whose `bench --transport vpcd` starts pcscd + vpcd.

pub mod audit;
pub mod browser;
#[cfg(all(unix, feature = "pcsc"))]
pub mod pcscd;
#[cfg(unix)]
pub mod postgres;
pub mod process;
#[cfg(all(unix, feature = "pcsc"))]
mod stack;

#[cfg(all(unix, feature = "pcsc"))]
pub use stack::{fast_vpcd_config, VpcdStack};
