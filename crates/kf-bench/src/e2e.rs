//! End-to-end fobs through the full pipeline, against the floor of the same
//! transport measured in the same run (`kf-station bench`).
//!
//! For every fob the pipeline runs against a fresh virtual fob; a recording
//! wrapper keeps the size of every command and response. The floor replays
//! exactly those sizes as plain echo exchanges (an echo card answering the
//! recorded response length) over the same transport, so `pipeline / floor`
//! is what the station's software adds to the link. The virtual fob's own
//! work (on a real fob, the chip's) is timed inside the card emulation on
//! both transports and reported beside it, so `pipeline − card / floor` is the
//! station's share. Packages are generated before timing; the journal is not
//! used (its own benchmark is separate).
//!
//! ```text
//!  DevSampleSource ─▶ provision_fob ─▶ Recorder ─▶ transport ─▶ TimedCard(VirtualFob)
//!                                         │ sizes
//!                                         ▼
//!                     replay_floor ─▶ same transport ─▶ EchoSizes
//! ```

use std::time::{Duration, Instant};

use kf_card::{FobConfig, VirtualFob};
use kf_perso::pipeline::{provision_fob, NoHooks, PipelineOptions};
use kf_source::DevSampleSource;
use kf_transport::error::TransportError;
use kf_transport::link::ApduShape;
use kf_transport::loopback::{LoopbackTransport, VirtualCard};
use kf_transport::transport::{Layer, RawApdu, Transport};

use crate::BenchError;
use kf_stats::percentile;

/// The link the fobs are provisioned over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Host and card in this thread.
    Loopback,
    /// pcscd + vpcd, started by the bench (Linux, `pcsc` feature, root).
    Vpcd,
}

/// Provisions `fobs` fresh virtual fobs over `link` at the security level
/// `level` (its name, for the report) with `options`, then replays the floor.
pub fn run(
    link: Link,
    fobs: usize,
    level: &str,
    options: &PipelineOptions,
) -> Result<Row, BenchError> {
    match link {
        Link::Loopback => loopback(fobs, level, options),
        Link::Vpcd => vpcd::run(fobs, level, options),
    }
}

/// One row of results.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// `loopback` or `vpcd`.
    pub transport: &'static str,
    /// Security level, as given.
    pub level: String,
    /// Fobs provisioned.
    pub fobs: usize,
    /// APDUs exchanged with the first fob.
    pub apdus_per_fob: usize,
    /// Command and response bytes exchanged with the first fob.
    pub bytes_per_fob: usize,
    /// Throughput over the timed sessions.
    pub fobs_per_s: f64,
    /// Median pipeline time per fob.
    pub p50_ms: f64,
    /// 99th percentile pipeline time per fob.
    pub p99_ms: f64,
    /// Process CPU per fob (card emulation included).
    pub cpu_us_per_fob: f64,
    /// Process CPU per fob without the time spent in the card emulation.
    pub host_cpu_us_per_fob_excl_card: f64,
    /// Median of the floor: the same exchanges as echoes, per fob.
    pub floor_p50_ms: f64,
    /// `p50_ms / floor_p50_ms`.
    pub ratio_p50: f64,
    /// Per fob: pipeline time minus the time spent inside the card emulation
    /// (on a real fob that time is the chip's).
    pub p50_ms_excl_card: f64,
    /// `p50_ms_excl_card / floor_p50_ms`.
    pub ratio_p50_excl_card: f64,
    /// Per fob: time outside the exchanges (host work between APDUs).
    pub outside_exchanges_p50_ms: f64,
    /// Per fob: the exchanges' round trips summed, card work included.
    pub exchanges_p50_ms: f64,
    /// The largest wrapped STORE DATA command of the session: its Lc.
    pub store_data_lc: usize,
    /// Median round trip of those STORE DATA commands, card work included.
    pub store_data_rtt_p50_us: f64,
    /// Median time the card emulation spent on them.
    pub store_data_card_p50_us: f64,
    /// Median round trip of the floor's echo exchanges of the same sizes.
    pub echo_same_size_rtt_p50_us: f64,
}

/// The rows as a table for the terminal, with one line per row on where the
/// time of a fob goes.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<9} {:>5} {:>5} {:>6} {:>7} {:>8} {:>8} {:>8} {:>10} {:>14} {:>9} {:>7} {:>14} {:>11}\n",
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
        "ratio",
        "p50 excl.card",
        "ratio excl."
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<9} {:>5} {:>5} {:>6} {:>7} {:>8.1} {:>8.3} {:>8.3} {:>10.1} {:>14.1} {:>9.3} {:>7.2} {:>14.3} {:>11.2}\n",
            r.transport,
            r.level,
            r.fobs,
            r.apdus_per_fob,
            r.bytes_per_fob,
            r.fobs_per_s,
            r.p50_ms,
            r.p99_ms,
            r.cpu_us_per_fob,
            r.host_cpu_us_per_fob_excl_card,
            r.floor_p50_ms,
            r.ratio_p50,
            r.p50_ms_excl_card,
            r.ratio_p50_excl_card
        ));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{:<9} level {}: per fob p50 {:.3} ms in exchanges, {:.3} ms between them; \
             STORE DATA Lc={} round trip p50 {:.1} µs (card emulation {:.1} µs); \
             echo of the same size {:.1} µs\n",
            r.transport,
            r.level,
            r.exchanges_p50_ms,
            r.outside_exchanges_p50_ms,
            r.store_data_lc,
            r.store_data_rtt_p50_us,
            r.store_data_card_p50_us,
            r.echo_same_size_rtt_p50_us
        ));
    }
    out
}

/// One recorded exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    pub(crate) cmd: usize,
    pub(crate) resp: usize,
    /// Class, instruction and lengths; never the data.
    pub(crate) shape: ApduShape,
    rtt: Duration,
}

/// Records the size, INS and round-trip time of every exchange.
pub(crate) struct Recorder<T> {
    inner: T,
    pub(crate) log: Vec<Exchange>,
}

impl<T> Recorder<T> {
    pub(crate) fn new(inner: T) -> Self {
        Recorder {
            inner,
            log: Vec::new(),
        }
    }
}

impl<T: Transport> Layer for Recorder<T> {
    kf_transport::layer_inner!(inner: T);
    fn on_transmit(&mut self, command: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        let apdu = command.bytes();
        let start = Instant::now();
        let resp = self.inner.transmit(command)?;
        let rtt = start.elapsed();
        self.log.push(Exchange {
            cmd: apdu.len(),
            resp: resp.len(),
            shape: ApduShape::of(apdu),
            rtt,
        });
        Ok(resp)
    }
}

/// The floor's card: answers every command with `len - 2` bytes and 9000,
/// taking the response lengths from the recorded session in order.
struct EchoSizes {
    responses: std::collections::VecDeque<usize>,
}

impl EchoSizes {
    fn new(log: &[Exchange]) -> Self {
        EchoSizes {
            responses: log.iter().map(|e| e.resp).collect(),
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

/// Replays the recorded command sizes (plain `80 10 00 00` echo commands) and
/// returns the round trip of each.
fn replay_floor(
    transport: &mut dyn Transport,
    log: &[Exchange],
) -> Result<Vec<Duration>, TransportError> {
    let mut rtts = Vec::with_capacity(log.len());
    for e in log {
        let data_len = e.cmd.saturating_sub(6).min(255);
        let mut apdu = vec![0x80, 0x10, 0x00, 0x00, data_len as u8];
        apdu.extend(std::iter::repeat_n(0x5Au8, data_len));
        apdu.push(0x00);
        let start = Instant::now();
        transport.transmit(RawApdu::public(&apdu))?;
        rtts.push(start.elapsed());
    }
    Ok(rtts)
}

/// Measures the time spent inside the card emulation, in total and per
/// STORE DATA command (by its Lc).
struct TimedCard {
    card: VirtualFob,
    busy: Duration,
    store_data: Vec<(usize, Duration)>,
}

impl TimedCard {
    fn new(card: VirtualFob) -> Self {
        TimedCard {
            card,
            busy: Duration::ZERO,
            store_data: Vec::new(),
        }
    }
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
        let took = start.elapsed();
        self.busy += took;
        if apdu.get(1) == Some(&STORE_DATA_INS) {
            self.store_data.push((apdu.len(), took));
        }
        out
    }
}

const STORE_DATA_INS: u8 = kf_apdu::gp::ins::STORE_DATA;

/// What one fob's session left for the report.
struct FobRun {
    elapsed: Duration,
    card_busy: Duration,
    log: Vec<Exchange>,
    /// (command length, card time) of each STORE DATA.
    card_store_data: Vec<(usize, Duration)>,
    floor_rtts: Vec<Duration>,
}

/// The `p` quantile of `samples`, 0 when there are none.
fn quantile(samples: &[f64], p: f64) -> f64 {
    percentile(samples, p).unwrap_or(0.0)
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
fn loopback(fobs: usize, level: &str, options: &PipelineOptions) -> Result<Row, BenchError> {
    let mut source = DevSampleSource::generated(fobs, None)?;
    let cards: Vec<VirtualFob> = (0..fobs)
        .map(|_| VirtualFob::new(FobConfig::dev_sample()))
        .collect::<Result<_, _>>()?;
    let mut runs = Vec::with_capacity(fobs);
    let cpu_start = cpu_now();
    let wall_start = Instant::now();
    for card in cards {
        let mut link = Recorder::new(LoopbackTransport::new(TimedCard::new(card)));
        let start = Instant::now();
        let outcome = provision_fob(&mut link, &mut source, options, &mut NoHooks);
        let elapsed = start.elapsed();
        if let Some(e) = outcome.error {
            return Err(BenchError::FobFailed(e));
        }
        let card = link.inner.card();
        runs.push(FobRun {
            elapsed,
            card_busy: card.busy,
            card_store_data: card.store_data.clone(),
            log: link.log,
            floor_rtts: Vec::new(),
        });
    }
    let wall = wall_start.elapsed();
    let cpu = cpu_now().saturating_sub(cpu_start);
    for run in &mut runs {
        let mut link = LoopbackTransport::new(EchoSizes::new(&run.log));
        run.floor_rtts = replay_floor(&mut link, &run.log)?;
    }
    Ok(row("loopback", level, &runs, wall, cpu))
}

fn row(
    transport: &'static str,
    level: &str,
    runs: &[FobRun],
    wall: Duration,
    cpu: Duration,
) -> Row {
    let fobs = runs.len();
    let per_fob_ms =
        |f: &dyn Fn(&FobRun) -> Duration| -> Vec<f64> { runs.iter().map(|r| ms(f(r))).collect() };
    let times = per_fob_ms(&|r| r.elapsed);
    let floors = per_fob_ms(&|r| r.floor_rtts.iter().sum());
    let excl = per_fob_ms(&|r| r.elapsed.saturating_sub(r.card_busy));
    let exchanges = per_fob_ms(&|r| r.log.iter().map(|e| e.rtt).sum());
    let outside = per_fob_ms(&|r| {
        r.elapsed
            .saturating_sub(r.log.iter().map(|e| e.rtt).sum::<Duration>())
    });
    let card_busy: Duration = runs.iter().map(|r| r.card_busy).sum();
    let first = runs.first().map(|r| r.log.as_slice()).unwrap_or(&[]);
    let per_fob = |d: Duration| d.as_secs_f64() * 1e6 / fobs as f64;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (p50, floor_p50, excl_p50) = (
        quantile(&times, 0.5),
        quantile(&floors, 0.5),
        quantile(&excl, 0.5),
    );
    // The largest STORE DATA of the sessions: its round trip, the card's share
    // of it, and the floor's echo of the same size at the same position.
    let largest = runs
        .iter()
        .flat_map(|r| r.log.iter())
        .filter(|e| e.shape.ins == STORE_DATA_INS)
        .map(|e| e.cmd)
        .max()
        .unwrap_or(0);
    let us = |v: Vec<f64>| quantile(&v, 0.5);
    let mut rtt = Vec::new();
    let mut echo = Vec::new();
    for r in runs {
        for (i, e) in r.log.iter().enumerate() {
            if e.shape.ins == STORE_DATA_INS && e.cmd == largest {
                rtt.push(e.rtt.as_secs_f64() * 1e6);
                if let Some(f) = r.floor_rtts.get(i) {
                    echo.push(f.as_secs_f64() * 1e6);
                }
            }
        }
    }
    let card: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.card_store_data.iter())
        .filter(|(len, _)| *len == largest)
        .map(|(_, d)| d.as_secs_f64() * 1e6)
        .collect();
    Row {
        transport,
        level: level.to_string(),
        fobs,
        apdus_per_fob: first.len(),
        bytes_per_fob: first.iter().map(|e| e.cmd + e.resp).sum(),
        fobs_per_s: fobs as f64 / wall.as_secs_f64(),
        p50_ms: p50,
        p99_ms: quantile(&times, 0.99),
        cpu_us_per_fob: per_fob(cpu),
        host_cpu_us_per_fob_excl_card: per_fob(cpu.saturating_sub(card_busy)),
        floor_p50_ms: floor_p50,
        ratio_p50: ratio(p50, floor_p50),
        p50_ms_excl_card: excl_p50,
        outside_exchanges_p50_ms: quantile(&outside, 0.5),
        exchanges_p50_ms: quantile(&exchanges, 0.5),
        ratio_p50_excl_card: ratio(excl_p50, floor_p50),
        // Short APDU: CLA INS P1 P2 Lc data (no Le on STORE DATA).
        store_data_lc: largest.saturating_sub(5),
        store_data_rtt_p50_us: us(rtt),
        store_data_card_p50_us: us(card),
        echo_same_size_rtt_p50_us: us(echo),
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
    use kf_testkit::VpcdStack;
    use kf_transport::pcsc::{CardDisposition, PcscContext};
    use kf_transport::vpcd::BridgeHandle;
    use kf_transport::VirtualCard;

    use super::{cpu_now, replay_floor, row, EchoSizes, FobRun, Recorder, Row, TimedCard};
    use crate::BenchError;

    const WAIT: Duration = Duration::from_secs(15);

    /// Presents the card on slot 0 and waits until pcscd sees it.
    fn serve<C: VirtualCard + Send + 'static>(
        stack: &VpcdStack,
        context: &PcscContext,
        card: C,
    ) -> Result<BridgeHandle<C>, BenchError> {
        let bridge = stack.insert(card, WAIT).map_err(BenchError::Pcscd)?;
        context.wait_for_card(&stack.reader_name(0), Some(WAIT))?;
        Ok(bridge)
    }

    /// Removes the card from the reader and returns it.
    fn swap<C: VirtualCard + Send + 'static>(
        stack: &VpcdStack,
        context: &PcscContext,
        bridge: BridgeHandle<C>,
    ) -> Result<C, BenchError> {
        let card = bridge.stop_and_join()?;
        context.wait_for_removal(&stack.reader_name(0), Some(WAIT))?;
        Ok(card)
    }

    pub(super) fn run(
        fobs: usize,
        level: &str,
        options: &PipelineOptions,
    ) -> Result<Row, BenchError> {
        let stack = VpcdStack::start().map_err(BenchError::Pcscd)?;
        let reader = stack.reader_name(0);
        let context = PcscContext::establish()?;
        let mut source = DevSampleSource::generated(fobs, None)?;
        let mut runs = Vec::with_capacity(fobs);
        let mut wall = Duration::ZERO;
        let mut cpu = Duration::ZERO;
        for _ in 0..fobs {
            // Insertion (bridge start, pcscd detection) is outside the timing.
            let fob = TimedCard::new(VirtualFob::new(FobConfig::dev_sample())?);
            let bridge = serve(&stack, &context, fob)?;
            let mut link = Recorder::new(context.connect(&reader)?);
            let (cpu0, start) = (cpu_now(), Instant::now());
            let outcome = provision_fob(&mut link, &mut source, options, &mut NoHooks);
            let elapsed = start.elapsed();
            // Includes the bridge thread, hence the card emulation.
            cpu += cpu_now().saturating_sub(cpu0);
            wall += elapsed;
            if let Some(e) = outcome.error {
                return Err(BenchError::FobFailed(e));
            }
            link.inner.disconnect(CardDisposition::Leave)?;
            let card = swap(&stack, &context, bridge)?;
            // The floor: the same sizes as echo exchanges over the same path.
            let bridge = serve(&stack, &context, EchoSizes::new(&link.log))?;
            let mut echo = context.connect(&reader)?;
            let floor_rtts = replay_floor(&mut echo, &link.log)?;
            echo.disconnect(CardDisposition::Leave)?;
            swap(&stack, &context, bridge)?;
            runs.push(FobRun {
                elapsed,
                card_busy: card.busy,
                card_store_data: card.store_data,
                log: link.log,
                floor_rtts,
            });
        }
        Ok(row("vpcd", level, &runs, wall, cpu))
    }
}

#[cfg(not(all(unix, feature = "pcsc")))]
mod vpcd {
    use kf_perso::pipeline::PipelineOptions;

    use super::Row;
    use crate::BenchError;

    pub(super) fn run(
        _fobs: usize,
        _level: &str,
        _options: &PipelineOptions,
    ) -> Result<Row, BenchError> {
        Err(BenchError::VpcdUnavailable)
    }
}
