//! Runs host wrap + unwrap of one APDU shape many times, for profilers
//! (`valgrind --tool=callgrind`, `perf record`), which need a plain loop
//! rather than criterion's harness.
//!
//! Usage: `apdu_profile LEVEL PAYLOAD COUNT` (LEVEL in hex: 01, 03, 33).

use kf_bench::measure::HostApduBench;
use kf_scp03::SecurityLevel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [level, payload, count] = args.as_slice() else {
        return Err("usage: apdu_profile LEVEL PAYLOAD COUNT".into());
    };
    let level = SecurityLevel::new(u8::from_str_radix(level, 16)?)?;
    let payload: usize = payload.parse()?;
    let response = if level.r_mac() { payload } else { 0 };
    let mut bench = HostApduBench::new(level, payload, response)?;
    let elapsed = bench.run_batch(count.parse()?)?;
    println!(
        "{:.0} ns per APDU",
        elapsed.as_nanos() as f64 / count.parse::<f64>()?
    );
    Ok(())
}
