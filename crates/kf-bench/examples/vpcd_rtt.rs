//! Round-trip time of echo APDUs over the real stack:
//! PcscTransport → pcscd → vpcd driver → vpcd bridge → EchoCard.
//!
//! Starts its own pcscd (needs root, `pcscd`, `vsmartcard-vpcd`), like the
//! integration tests. Run:
//! `cargo run --release -p kf-bench --features pcsc --example vpcd_rtt [ITERATIONS]`
#![allow(clippy::print_stdout)]

#[cfg(all(unix, feature = "pcsc"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::{Duration, Instant};

    use kf_stats::percentile;
    use kf_testkit::VpcdStack;
    use kf_transport::pcsc::PcscContext;
    use kf_transport::{EchoCard, RawApdu, Transport};

    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let stack = VpcdStack::start()?;
    let bridge = stack.insert(EchoCard::default(), Duration::from_secs(10))?;
    let reader = stack.reader_name(0);
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(&reader, Some(Duration::from_secs(10)))?;
    let mut card = ctx.connect(&reader)?;

    let mut measure = |label: &str, data_len: usize| -> Result<(), Box<dyn std::error::Error>> {
        let data = vec![0x5Au8; data_len];
        let apdu = [&[0x80, 0x10, 0x00, 0x00, data_len as u8][..], &data].concat();
        for _ in 0..20 {
            card.transmit(RawApdu::public(&apdu))?;
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let resp = card.transmit(RawApdu::public(&apdu))?;
            samples.push(start.elapsed().as_secs_f64() * 1e6);
            if resp.len() != data_len + 2 {
                return Err(format!("unexpected response length {}", resp.len()).into());
            }
        }
        let pct = |p: f64| percentile(&samples, p).unwrap_or(f64::NAN);
        println!(
            "{label}: n={iterations} median={:.1} µs p10={:.1} µs p90={:.1} µs min={:.1} µs max={:.1} µs",
            pct(0.5),
            pct(0.1),
            pct(0.9),
            pct(0.0),
            pct(1.0)
        );
        Ok(())
    };
    measure("echo 1-byte APDU (6 bytes C-APDU)", 1)?;
    measure("echo 255-byte APDU (260 bytes C-APDU)", 255)?;
    drop(card);
    bridge.stop_and_join()?;
    Ok(())
}

#[cfg(not(all(unix, feature = "pcsc")))]
fn main() {
    println!("vpcd_rtt needs a Unix host and the `pcsc` feature");
}
