//! `kf-station bench`: end-to-end fobs through the full pipeline, against the
//! floor of the same transport measured in the same run (issue 7).
//!
//! For every fob the pipeline runs against a fresh virtual fob; a recording
//! wrapper keeps the size of every command and response. The floor replays
//! exactly those sizes as plain echo exchanges (an echo card answering the
//! recorded response length) over the same transport, so `pipeline / floor`
//! is what the station's software adds to the link. Packages are generated
//! before timing; the journal is not used (its own benchmark is separate).

use std::time::{Duration, Instant};

use clap::Args;
use kf_card::{FobConfig, VirtualFob};
use kf_perso::pipeline::{provision_fob, NoHooks, PipelineOptions};
use kf_source::DevSampleSource;
use kf_transport::error::TransportError;
use kf_transport::loopback::{LoopbackTransport, VirtualCard};
use kf_transport::transport::Transport;

use crate::config::StationConfig;
use crate::exit;

/// Options of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Fobs per transport and level.
    #[arg(long, default_value_t = 100)]
    pub fobs: usize,
    /// Security levels, comma-separated.
    #[arg(long, default_value = "01,33", value_delimiter = ',')]
    pub level: Vec<String>,
    /// loopback (in-process), vpcd (pcscd + vpcd, started by the bench), or both.
    #[arg(long, default_value = "loopback", value_parser = ["loopback", "vpcd", "both"])]
    pub transport: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> u8 {
    match bench(&args) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILED
        }
    }
}

/// One row of results.
#[derive(Debug, serde::Serialize)]
struct Row {
    transport: &'static str,
    level: String,
    fobs: usize,
    apdus_per_fob: usize,
    bytes_per_fob: usize,
    fobs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_fob: f64,
    host_cpu_us_per_fob_excl_card: Option<f64>,
    floor_p50_ms: f64,
    ratio_p50: f64,
}

fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.fobs == 0 {
        anyhow::bail!("--fobs must be at least 1");
    }
    let mut rows = Vec::new();
    for level in &args.level {
        let options = StationConfig {
            security_level: level.clone(),
            station_id: "BENCH".into(),
            ..StationConfig::default()
        }
        .pipeline_options()?;
        if args.transport != "vpcd" {
            rows.push(loopback(args.fobs, level, &options)?);
        }
        if args.transport != "loopback" {
            rows.push(vpcd::run(args.fobs, level, &options)?);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<9} {:>5} {:>5} {:>6} {:>7} {:>8} {:>8} {:>8} {:>10} {:>12} {:>9} {:>7}",
            "transport",
            "level",
            "fobs",
            "APDUs",
            "bytes",
            "fobs/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/fob",
            "host excl.card",
            "floor p50",
            "ratio"
        );
        for r in &rows {
            println!(
                "{:<9} {:>5} {:>5} {:>6} {:>7} {:>8.1} {:>8.3} {:>8.3} {:>10.1} {:>12} {:>9.3} {:>7.2}",
                r.transport,
                r.level,
                r.fobs,
                r.apdus_per_fob,
                r.bytes_per_fob,
                r.fobs_per_s,
                r.p50_ms,
                r.p99_ms,
                r.cpu_us_per_fob,
                r.host_cpu_us_per_fob_excl_card
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "-".into()),
                r.floor_p50_ms,
                r.ratio_p50
            );
        }
    }
    Ok(())
}

/// Records the size of every exchange (command bytes, response bytes).
struct SizeRecorder<T> {
    inner: T,
    sizes: Vec<(usize, usize)>,
}

impl<T: Transport> Transport for SizeRecorder<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let resp = self.inner.transmit(apdu)?;
        self.sizes.push((apdu.len(), resp.len()));
        Ok(resp)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
    fn max_apdu_len(&self) -> usize {
        self.inner.max_apdu_len()
    }
    fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }
}

/// The floor's card: answers every command with `len - 2` bytes and 9000,
/// taking the response lengths from the recorded session in order.
pub(crate) struct EchoSizes {
    responses: std::collections::VecDeque<usize>,
}

impl EchoSizes {
    fn new(sizes: &[(usize, usize)]) -> Self {
        EchoSizes {
            responses: sizes.iter().map(|(_, r)| *r).collect(),
        }
    }
}

impl VirtualCard for EchoSizes {
    fn atr(&self) -> Vec<u8> {
        kf_card::atr::contactless_atr(&kf_card::atr::JCOP4_HISTORICAL_BYTES)
    }
    fn power_on(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn power_off(&mut self) {}
    fn reset(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn process_apdu(&mut self, _apdu: &[u8]) -> Vec<u8> {
        let len = self.responses.pop_front().unwrap_or(2).max(2);
        let mut out = vec![0u8; len];
        out[len - 2] = 0x90;
        out
    }
}

/// Replays the recorded command sizes (plain `80 10 00 00` echo commands).
fn replay_floor(transport: &mut dyn Transport, sizes: &[(usize, usize)]) -> anyhow::Result<()> {
    for (cmd, _) in sizes {
        let data_len = cmd.saturating_sub(6).min(255);
        let mut apdu = vec![0x80, 0x10, 0x00, 0x00, data_len as u8];
        apdu.extend(std::iter::repeat_n(0x5Au8, data_len));
        apdu.push(0x00);
        transport.transmit(&apdu)?;
    }
    Ok(())
}

/// Measures the time spent inside the card emulation.
struct TimedCard {
    card: VirtualFob,
    busy: Duration,
}

impl VirtualCard for TimedCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) -> Vec<u8> {
        self.card.power_on()
    }
    fn power_off(&mut self) {
        self.card.power_off();
    }
    fn reset(&mut self) -> Vec<u8> {
        VirtualCard::reset(&mut self.card)
    }
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let start = Instant::now();
        let out = self.card.process_apdu(apdu);
        self.busy += start.elapsed();
        out
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cpu_now() -> Duration {
    cpu_time::ProcessTime::try_now()
        .map(|t| t.as_duration())
        .unwrap_or_default()
}

/// In-process loopback: host and card in this thread.
fn loopback(fobs: usize, level: &str, options: &PipelineOptions) -> anyhow::Result<Row> {
    let mut source = DevSampleSource::generated(fobs, None)?;
    let cards: Vec<VirtualFob> = (0..fobs)
        .map(|_| VirtualFob::new(FobConfig::dev_sample()))
        .collect::<Result<_, _>>()?;
    let mut times = Vec::with_capacity(fobs);
    let mut card_busy = Duration::ZERO;
    let mut sessions = Vec::with_capacity(fobs);
    let cpu_start = cpu_now();
    let wall_start = Instant::now();
    for card in cards {
        let mut link = SizeRecorder {
            inner: LoopbackTransport::new(TimedCard {
                card,
                busy: Duration::ZERO,
            }),
            sizes: Vec::new(),
        };
        let start = Instant::now();
        let outcome = provision_fob(&mut link, &mut source, options, &mut NoHooks);
        times.push(ms(start.elapsed()));
        if let Some(e) = outcome.error {
            anyhow::bail!("fob failed during the bench: {e}");
        }
        card_busy += link.inner.card().busy;
        sessions.push(link.sizes);
    }
    let wall = wall_start.elapsed();
    let cpu = cpu_now().saturating_sub(cpu_start);
    let mut floors = Vec::with_capacity(fobs);
    for sizes in &sessions {
        let mut link = LoopbackTransport::new(EchoSizes::new(sizes));
        let start = Instant::now();
        replay_floor(&mut link, sizes)?;
        floors.push(ms(start.elapsed()));
    }
    let host_excl = cpu.saturating_sub(card_busy);
    Ok(row(
        "loopback",
        level,
        &sessions,
        times,
        floors,
        wall,
        cpu,
        Some(host_excl),
    ))
}

#[allow(clippy::too_many_arguments)]
fn row(
    transport: &'static str,
    level: &str,
    sessions: &[Vec<(usize, usize)>],
    mut times: Vec<f64>,
    mut floors: Vec<f64>,
    wall: Duration,
    cpu: Duration,
    host_excl: Option<Duration>,
) -> Row {
    let fobs = times.len();
    times.sort_by(f64::total_cmp);
    floors.sort_by(f64::total_cmp);
    let first = sessions.first().map(Vec::as_slice).unwrap_or(&[]);
    let per_fob = |d: Duration| d.as_secs_f64() * 1e6 / fobs as f64;
    let p50 = percentile(&times, 0.5);
    let floor_p50 = percentile(&floors, 0.5);
    Row {
        transport,
        level: level.to_string(),
        fobs,
        apdus_per_fob: first.len(),
        bytes_per_fob: first.iter().map(|(c, r)| c + r).sum(),
        fobs_per_s: fobs as f64 / wall.as_secs_f64(),
        p50_ms: p50,
        p99_ms: percentile(&times, 0.99),
        cpu_us_per_fob: per_fob(cpu),
        host_cpu_us_per_fob_excl_card: host_excl.map(per_fob),
        floor_p50_ms: floor_p50,
        ratio_p50: if floor_p50 > 0.0 {
            p50 / floor_p50
        } else {
            0.0
        },
    }
}

#[cfg(all(unix, feature = "pcsc"))]
mod vpcd {
    //! pcscd + vpcd: the bench starts its own pcscd (root) and serves each
    //! fob through the vpcd bridge on slot 0.

    use std::time::{Duration, Instant};

    use kf_card::{FobConfig, VirtualFob};
    use kf_perso::pipeline::{provision_fob, NoHooks, PipelineOptions};
    use kf_source::DevSampleSource;
    use kf_transport::pcsc::{CardDisposition, PcscContext};
    use kf_transport::pcscd_harness::{free_port_pair, Pcscd};
    use kf_transport::vpcd::{BridgeHandle, VpcdConfig};
    use kf_transport::VirtualCard;

    use super::{cpu_now, ms, replay_floor, row, EchoSizes, Row, SizeRecorder};

    const WAIT: Option<Duration> = Some(Duration::from_secs(15));

    fn serve<C: VirtualCard + Send + 'static>(
        pcscd: &Pcscd,
        context: &PcscContext,
        card: C,
    ) -> anyhow::Result<BridgeHandle<C>> {
        let config = VpcdConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            poll_interval: Duration::from_millis(10),
            ..VpcdConfig::new(pcscd.vpcd_addr(0))
        };
        let bridge = BridgeHandle::spawn(card, config)?;
        context.wait_for_card(&pcscd.reader_name(0), WAIT)?;
        Ok(bridge)
    }

    fn swap<C: VirtualCard + Send + 'static>(
        pcscd: &Pcscd,
        context: &PcscContext,
        bridge: BridgeHandle<C>,
    ) -> anyhow::Result<()> {
        bridge.stop_and_join()?;
        context.wait_for_removal(&pcscd.reader_name(0), WAIT)?;
        Ok(())
    }

    pub(super) fn run(fobs: usize, level: &str, options: &PipelineOptions) -> anyhow::Result<Row> {
        let dir = tempfile::tempdir()?;
        let pcscd = Pcscd::start(dir.path(), free_port_pair()?)
            .map_err(|e| anyhow::anyhow!("cannot start pcscd with the vpcd driver (root, packages pcscd vsmartcard-vpcd): {e}"))?;
        let reader = pcscd.reader_name(0);
        let context = PcscContext::establish()?;
        let mut source = DevSampleSource::generated(fobs, None)?;
        let (mut times, mut floors, mut sessions) = (Vec::new(), Vec::new(), Vec::new());
        let mut wall = Duration::ZERO;
        let mut cpu = Duration::ZERO;
        for _ in 0..fobs {
            // Insertion (bridge start, pcscd detection) is outside the timing.
            let bridge = serve(&pcscd, &context, VirtualFob::new(FobConfig::dev_sample())?)?;
            let card = context.connect(&reader)?;
            let mut link = SizeRecorder {
                inner: card,
                sizes: Vec::new(),
            };
            let (cpu0, start) = (cpu_now(), Instant::now());
            let outcome = provision_fob(&mut link, &mut source, options, &mut NoHooks);
            let elapsed = start.elapsed();
            cpu += cpu_now().saturating_sub(cpu0);
            wall += elapsed;
            times.push(ms(elapsed));
            if let Some(e) = outcome.error {
                anyhow::bail!("fob failed during the bench: {e}");
            }
            link.inner.disconnect(CardDisposition::Leave)?;
            swap(&pcscd, &context, bridge)?;
            // The floor: the same sizes as echo exchanges over the same path.
            let bridge = serve(&pcscd, &context, EchoSizes::new(&link.sizes))?;
            let mut card = context.connect(&reader)?;
            let start = Instant::now();
            replay_floor(&mut card, &link.sizes)?;
            floors.push(ms(start.elapsed()));
            card.disconnect(CardDisposition::Leave)?;
            swap(&pcscd, &context, bridge)?;
            sessions.push(link.sizes);
        }
        Ok(row(
            "vpcd", level, &sessions, times, floors, wall, cpu, None,
        ))
    }
}

#[cfg(not(all(unix, feature = "pcsc")))]
mod vpcd {
    use kf_perso::pipeline::PipelineOptions;

    use super::Row;

    pub(super) fn run(
        _fobs: usize,
        _level: &str,
        _options: &PipelineOptions,
    ) -> anyhow::Result<Row> {
        anyhow::bail!("the vpcd transport needs Linux with the `pcsc` feature (and root for pcscd)")
    }
}
