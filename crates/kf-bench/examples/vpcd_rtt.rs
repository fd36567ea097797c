//! Round-trip time of echo APDUs over the real stack:
//! PcscTransport → pcscd → vpcd driver → vpcd bridge → EchoCard.
//!
//! Starts its own pcscd (needs root, `pcscd`, `vsmartcard-vpcd`), like the
//! integration tests. Run:
//! `cargo run --release -p kf-transport --features pcsc --example vpcd_rtt [ITERATIONS]`
#![allow(clippy::print_stdout)]

#[cfg(all(unix, feature = "pcsc"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::{Duration, Instant};

    use kf_transport::pcsc::PcscContext;
    use kf_transport::pcscd_harness::{free_port_pair, Pcscd};
    use kf_transport::vpcd::{BridgeHandle, VpcdConfig};
    use kf_transport::{EchoCard, Transport};

    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("kf-vpcd-rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pcscd = Pcscd::start(&dir, free_port_pair()?)?;
    let config = VpcdConfig {
        poll_interval: Duration::from_millis(50),
        ..VpcdConfig::new(pcscd.vpcd_addr(0))
    };
    let bridge = BridgeHandle::spawn(EchoCard::default(), config)?;
    let reader = pcscd.reader_name(0);
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(&reader, Some(Duration::from_secs(10)))?;
    let mut card = ctx.connect(&reader)?;

    let mut measure = |label: &str, data_len: usize| -> Result<(), Box<dyn std::error::Error>> {
        let data = vec![0x5Au8; data_len];
        let apdu = [&[0x80, 0x10, 0x00, 0x00, data_len as u8][..], &data].concat();
        for _ in 0..20 {
            card.transmit(&apdu)?;
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let resp = card.transmit(&apdu)?;
            samples.push(start.elapsed());
            if resp.len() != data_len + 2 {
                return Err(format!("unexpected response length {}", resp.len()).into());
            }
        }
        samples.sort();
        let pct = |p: usize| samples[(samples.len() - 1) * p / 100];
        println!(
            "{label}: n={iterations} median={:?} p10={:?} p90={:?} min={:?} max={:?}",
            pct(50),
            pct(10),
            pct(90),
            samples[0],
            samples[samples.len() - 1]
        );
        Ok(())
    };
    measure("echo 1-byte APDU (6 bytes C-APDU)", 1)?;
    measure("echo 255-byte APDU (260 bytes C-APDU)", 255)?;
    drop(card);
    bridge.stop_and_join()?;
    drop(pcscd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(not(all(unix, feature = "pcsc")))]
fn main() {
    println!("vpcd_rtt needs a Unix host and the `pcsc` feature");
}
