//! Serves an [`EchoCard`] to vpcd for manual interop checks
//! (`pcsc_scan`, `opensc-tool -r 0 -s 80100000015A`).
//!
//! `cargo run -p kf-transport --example echo_vpcd -- [ADDR] [SECONDS]`
//! (defaults: 127.0.0.1:35963, 60 s).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use kf_transport::vpcd::{BridgeHandle, VpcdConfig, DEFAULT_VPCD_ADDR};
use kf_transport::EchoCard;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_VPCD_ADDR.to_owned());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(60);
    let bridge = BridgeHandle::spawn(EchoCard::default(), VpcdConfig::new(addr.clone()))?;
    println!("serving an echo card to vpcd at {addr} for {seconds} s");
    std::thread::sleep(Duration::from_secs(seconds));
    let connections = bridge.control().connections();
    let apdus = bridge.control().apdus();
    bridge.stop_and_join()?;
    println!("connections: {connections}, APDUs served: {apdus}");
    Ok(())
}
