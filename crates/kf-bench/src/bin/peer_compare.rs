//! Same-run comparison with yubikit's SCP03 host, per APDU.
//!
//! ```text
//! cargo run --release -p kf-bench --bin peer-compare -- [--rounds 201] [--batch-us 500]
//!     [--batch N] [--sizes 16,64,239] [--python python3]
//!     [--script bench/yubikit_scp03_bench.py] [--json]
//! ```
//!
//! Both sides measure the host's per-APDU work the same way: rounds of
//! `batch` APDUs, each APDU = wrap STORE DATA to wire bytes + unwrap the
//! card's response bytes; a round's time / `batch` is one sample; the median
//! over rounds is reported. Card responses are produced before each round's
//! timer starts (ours by a lockstep kf-scp03 card, yubikit's by a card
//! emulation in the script). Unless `--batch` fixes it, each side calibrates
//! its batch to take about `--batch-us`: on a loaded machine a batch much
//! longer than a scheduler time slice is inflated by waiting for other
//! processes, a short one mostly is not, so equal *counts* would favour the
//! faster side while equal *durations* treat both alike. Half of our rounds
//! run before the Python peer and half after it, so a load change during the
//! run hits both sides.
//!
//! Workloads: level '33' (response = N bytes + '9000', R-MAC + R-ENC) and the
//! level '03' equivalent (response = bare '9000'). yubikit opens its session
//! on our card's INITIALIZE UPDATE response (it checks our card cryptogram),
//! and its first wrapped level-33 command must equal ours byte for byte.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use kf_bench::fixtures::{
    first_wrapped_command, initialize_update_response_data, HOST_CHALLENGE, KEY_VERSION,
    PAYLOAD_SIZES, STATIC_DEK_HEX, STATIC_ENC_HEX, STATIC_MAC_HEX,
};
use kf_bench::floor::{host_block_operations, AesFloor};
use kf_bench::measure::{calibrate, calibrated_batch, host_apdu_ns, per_item_ns};
use kf_scp03::SecurityLevel;
use kf_stats::median;
use serde_json::{json, Value};

/// Target: per-APDU wrap + unwrap at least this many times faster than yubikit.
const TARGET_RATIO: f64 = 50.0;
/// APDUs in the pilot batch that calibrates our batch size.
const PILOT_APDUS: usize = 200;

struct Options {
    rounds: usize,
    batch: Option<usize>,
    batch_us: u64,
    sizes: Vec<usize>,
    python: String,
    script: PathBuf,
    json: bool,
}

const USAGE: &str = "usage: peer-compare [--rounds N] [--batch-us MICROSECONDS | --batch K] \
                     [--sizes 16,64,239] [--python CMD] [--script PATH] [--json]";

fn parse_options() -> Result<Options> {
    let mut options = Options {
        rounds: 201,
        batch: None,
        batch_us: 500,
        sizes: PAYLOAD_SIZES.to_vec(),
        python: std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()),
        script: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../bench/yubikit_scp03_bench.py"),
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => options.rounds = value()?.parse().context("--rounds")?,
            "--batch" => options.batch = Some(value()?.parse().context("--batch")?),
            "--batch-us" => options.batch_us = value()?.parse().context("--batch-us")?,
            "--sizes" => {
                options.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--sizes")?
            }
            "--python" => options.python = value()?,
            "--script" => options.script = PathBuf::from(value()?),
            "--json" => options.json = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    ensure!(
        options.rounds >= 2 && options.batch != Some(0) && options.batch_us > 0,
        "--rounds must be at least 2, --batch and --batch-us at least 1"
    );
    ensure!(
        options.sizes.iter().all(|s| (1..=239).contains(s)),
        "--sizes must be 1..239 (short APDUs)"
    );
    Ok(options)
}

/// One workload: a level and a payload size.
#[derive(Clone, Copy)]
struct Workload {
    level: SecurityLevel,
    payload: usize,
}

impl Workload {
    /// Level '33' echoes the payload size; the level-03 equivalent answers '9000' alone.
    fn response_len(self) -> usize {
        if self.level.r_mac() {
            self.payload
        } else {
            0
        }
    }

    fn level_name(self) -> String {
        format!("{:02X}", self.level.value())
    }

    fn batch(self, options: &Options) -> Result<usize> {
        Ok(match options.batch {
            Some(batch) => batch,
            None => calibrated_batch(
                self.level,
                self.payload,
                self.response_len(),
                Duration::from_micros(options.batch_us),
                PILOT_APDUS,
            )?,
        })
    }

    fn measure(self, rounds: usize, batch: usize) -> Result<Vec<f64>> {
        Ok(host_apdu_ns(
            self.level,
            self.payload,
            self.response_len(),
            rounds,
            batch,
        )?)
    }

    fn aes_blocks(self) -> usize {
        host_block_operations(self.level, self.payload, self.response_len())
    }

    fn floor_batch(self, options: &Options) -> Result<usize> {
        Ok(match options.batch {
            Some(batch) => batch,
            None => calibrate(
                &mut AesFloor::new(self.aes_blocks()),
                Duration::from_micros(options.batch_us),
                PILOT_APDUS,
            )?,
        })
    }

    fn measure_floor(self, rounds: usize, batch: usize) -> Result<Vec<f64>> {
        Ok(per_item_ns(
            &mut AesFloor::new(self.aes_blocks()),
            rounds,
            batch,
        )?)
    }
}

fn run_python(options: &Options, iu_response: &[u8]) -> Result<Value> {
    let sizes = options
        .sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let batch_args = match options.batch {
        Some(batch) => ["--batch".to_owned(), batch.to_string()],
        None => ["--batch-us".to_owned(), options.batch_us.to_string()],
    };
    let output = Command::new(&options.python)
        .arg(&options.script)
        .args(["--rounds", &options.rounds.to_string()])
        .args(&batch_args)
        .args(["--sizes", &sizes, "--levels", "03,33"])
        .args(["--key-enc", STATIC_ENC_HEX, "--key-mac", STATIC_MAC_HEX])
        .args(["--key-dek", STATIC_DEK_HEX])
        .args(["--kvn", &KEY_VERSION.to_string()])
        .args(["--host-challenge", &hex::encode_upper(HOST_CHALLENGE)])
        .args(["--iu-response", &hex::encode_upper(iu_response)])
        .output()
        .with_context(|| format!("running {} {}", options.python, options.script.display()))?;
    ensure!(
        output.status.success(),
        "yubikit peer failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    serde_json::from_slice(&output.stdout).context("yubikit peer printed no valid JSON")
}

fn peer_result(peer: &Value, workload: Workload) -> Result<&Value> {
    peer["results"]
        .as_array()
        .context("peer JSON has no results")?
        .iter()
        .find(|r| r["level"] == workload.level_name() && r["payload"] == json!(workload.payload))
        .with_context(|| {
            format!(
                "peer has no result for level {} / {} B",
                workload.level_name(),
                workload.payload
            )
        })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "n/a".to_owned())
}

fn main() -> Result<()> {
    let options = parse_options()?;
    let workloads: Vec<Workload> = [SecurityLevel::C_DEC_C_MAC, SecurityLevel::FULL]
        .into_iter()
        .flat_map(|level| {
            options
                .sizes
                .iter()
                .map(move |&payload| Workload { level, payload })
        })
        .collect();
    let load_before = load_average();

    let batches = workloads
        .iter()
        .map(|w| w.batch(&options))
        .collect::<Result<Vec<usize>>>()?;
    let floor_batches = workloads
        .iter()
        .map(|w| w.floor_batch(&options))
        .collect::<Result<Vec<usize>>>()?;
    let first_half = options.rounds / 2;
    let second_half = options.rounds - first_half;
    let mut ours = Vec::new();
    let mut floors = Vec::new();
    for ((w, &batch), &floor_batch) in workloads.iter().zip(&batches).zip(&floor_batches) {
        ours.push(w.measure(first_half, batch)?);
        floors.push(w.measure_floor(first_half, floor_batch)?);
    }
    let peer = run_python(&options, &initialize_update_response_data()?)?;
    for (i, w) in workloads.iter().enumerate() {
        ours[i].extend(w.measure(second_half, batches[i])?);
        floors[i].extend(w.measure_floor(second_half, floor_batches[i])?);
    }
    let load_after = load_average();

    let batching = match options.batch {
        Some(batch) => format!("{batch} APDUs"),
        None => format!("about {} us", options.batch_us),
    };
    println!(
        "peer-compare: host wrap + unwrap per APDU (AES-128, S8, STORE DATA), \
         median of {} rounds, batches of {batching}",
        options.rounds
    );
    println!(
        "peer: yubikit {} (cryptography {}, Python {})",
        peer["yubikey_manager"].as_str().unwrap_or("?"),
        peer["cryptography"].as_str().unwrap_or("?"),
        peer["python"].as_str().unwrap_or("?")
    );
    println!("load average before: {load_before} | after: {load_after}");
    println!(
        "{:<6} {:>7} {:>8} {:>11} {:>10} {:>11} {:>11} {:>10} {:>8} {:>10} {:>12}  \
         ratio (target >= {TARGET_RATIO}x)",
        "level",
        "payload",
        "response",
        "kf-scp03 ns",
        "yubikit ns",
        "batch ours",
        "batch peer",
        "AES blocks",
        "AES ns",
        "ours/AES",
        "yubikit/AES",
    );
    let mut rows = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let (samples, batch) = (&ours[i], batches[i]);
        let result = peer_result(&peer, *w)?;
        if w.level.r_mac() {
            let ours_wire = hex::encode_upper(first_wrapped_command(w.level, w.payload)?);
            let theirs = result["first_command_hex"].as_str().unwrap_or_default();
            ensure!(
                ours_wire == theirs,
                "level {} / {} B: yubikit's first wrapped command differs from ours",
                w.level_name(),
                w.payload
            );
        }
        let our_median = median(samples).context("no samples")?;
        let peer_median = result["median_ns"].as_f64().context("peer median_ns")?;
        let peer_batch = result["batch"].as_u64().unwrap_or_default();
        let ratio = peer_median / our_median;
        let floor_median = median(&floors[i]).context("no AES samples")?;
        let verdict = if ratio >= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "{:<6} {:>7} {:>8} {:>11.0} {:>10.0} {:>11} {:>11} {:>10} {:>8.0} {:>9.2}x {:>11.1}x  \
             {ratio:.1}x {verdict}",
            w.level_name(),
            w.payload,
            w.response_len(),
            our_median,
            peer_median,
            batch,
            peer_batch,
            w.aes_blocks(),
            floor_median,
            our_median / floor_median,
            peer_median / floor_median,
        );
        rows.push(json!({
            "level": w.level_name(),
            "payload": w.payload,
            "response_len": w.response_len(),
            "kf_scp03_median_ns": our_median,
            "yubikit_median_ns": peer_median,
            "yubikit_median_thread_cpu_ns": result["median_thread_cpu_ns"],
            "kf_scp03_batch": batch,
            "aes_block_operations": w.aes_blocks(),
            "aes_reference_median_ns": floor_median,
            "aes_reference_batch": floor_batches[i],
            "yubikit_batch": peer_batch,
            "ratio": ratio,
            "target_met": ratio >= TARGET_RATIO,
        }));
    }
    println!("level-33 wire bytes identical to yubikit's: yes (first command of each size)");
    if options.rounds < 31 {
        println!("note: fewer than 31 rounds: a smoke run, not a measurement");
    }
    if options.json {
        println!(
            "{}",
            json!({
                "rounds": options.rounds,
                "batch": options.batch,
                "batch_us": options.batch_us,
                "load_before": load_before,
                "load_after": load_after,
                "peer": {
                    "yubikey_manager": peer["yubikey_manager"],
                    "cryptography": peer["cryptography"],
                    "python": peer["python"],
                },
                "results": rows,
            })
        );
    }
    Ok(())
}
