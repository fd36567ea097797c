//! Modeled time per fob on a real contactless link (`kf-station bench
//! --link-model`).
//!
//! One fob is provisioned through the full pipeline against the virtual fob
//! for each perso plan (short APDUs; extended-length STORE DATA); the shape
//! of every exchange is recorded and priced by
//! [`kf_transport::link::LinkModel`] at each bit rate. Nothing is timed: the
//! figures are the model's, from the exact APDU sequence the station sends.

use kf_card::{FobConfig, VirtualFob};
use kf_perso::pipeline::{provision_fob, NoHooks, PipelineOptions};
use kf_source::DevSampleSource;
use kf_transport::link::{BitRate, ExchangeTime, LinkModel};
use kf_transport::loopback::LoopbackTransport;

use crate::e2e::{Exchange, Recorder};
use crate::BenchError;

/// A way of cutting the personalization data into APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// STORE DATA in short APDUs (at most 255 data bytes each).
    Short,
    /// STORE DATA in extended-length APDUs, where reader and card allow.
    Extended,
}

impl Plan {
    /// Both plans, the station's default first.
    pub const ALL: [Plan; 2] = [Plan::Short, Plan::Extended];

    fn name(self) -> &'static str {
        match self {
            Plan::Short => "short",
            Plan::Extended => "extended",
        }
    }
}

/// The modeled cost of one fob with one plan at one bit rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkRow {
    /// The plan.
    pub plan: Plan,
    /// The bit rate.
    pub rate: BitRate,
    /// Command APDUs per fob.
    pub apdus: usize,
    /// Command and response bytes per fob.
    pub bytes: usize,
    /// ISO/IEC 14443-4 blocks per fob (I-blocks and R(ACK)s).
    pub blocks: u32,
    /// Frames and frame delays on the field.
    pub air_ms: f64,
    /// The chip's processing (an estimate, see `ChipCosts::JCOP4_ESTIMATE`).
    pub chip_ms: f64,
    /// The host's PC/SC and USB round trips.
    pub host_ms: f64,
    /// The sum: one fob on the line, tap to done, without the KLMS.
    pub total_ms: f64,
}

/// Records the exchanges of one fob provisioned with `plan`.
fn exchanges(options: &PipelineOptions, plan: Plan) -> Result<Vec<Exchange>, BenchError> {
    let mut options = options.clone();
    options.plan.extended_length = plan == Plan::Extended;
    let mut source = DevSampleSource::generated(1, None)?;
    let card = VirtualFob::new(FobConfig::dev_sample())?;
    let mut link = Recorder::new(LoopbackTransport::new(card));
    let outcome = provision_fob(&mut link, &mut source, &options, &mut NoHooks);
    if let Some(e) = outcome.error {
        return Err(BenchError::FobFailed(e));
    }
    Ok(link.log)
}

/// Prices `log` on `model`.
fn price(plan: Plan, model: &LinkModel, log: &[Exchange]) -> LinkRow {
    let mut sum = ExchangeTime::default();
    for exchange in log {
        sum += model.exchange(&exchange.shape, exchange.resp);
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    LinkRow {
        plan,
        rate: model.rate,
        apdus: log.len(),
        bytes: log.iter().map(|e| e.cmd + e.resp).sum(),
        blocks: sum.blocks,
        air_ms: ms(sum.air),
        chip_ms: ms(sum.chip),
        host_ms: ms(sum.host),
        total_ms: ms(sum.total()),
    }
}

/// Every plan at every bit rate, for the pipeline configured by `options`.
pub fn model(options: &PipelineOptions) -> Result<Vec<LinkRow>, BenchError> {
    let mut rows = Vec::new();
    for plan in Plan::ALL {
        let log = exchanges(options, plan)?;
        for rate in BitRate::ALL {
            rows.push(price(plan, &LinkModel::new(rate), &log));
        }
    }
    Ok(rows)
}

/// A text table of `rows`.
pub fn table(rows: &[LinkRow]) -> String {
    let mut out = String::from(
        "plan      rate   APDUs  bytes  blocks    air ms   chip ms*  host ms  total ms\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{:<9} {:<6} {:>5} {:>6} {:>7} {:>9.2} {:>9.2} {:>8.2} {:>9.2}\n",
            r.plan.name(),
            r.rate.name(),
            r.apdus,
            r.bytes,
            r.blocks,
            r.air_ms,
            r.chip_ms,
            r.host_ms,
            r.total_ms
        ));
    }
    out.push_str(
        "* chip: an estimate for a JCOP 4 class chip, not a data-sheet figure; \
         host: 2 ms PC/SC + CCID round trip per APDU\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<LinkRow> {
        model(&PipelineOptions::default()).unwrap()
    }

    #[test]
    fn every_plan_is_priced_at_every_rate() {
        let rows = rows();
        assert_eq!(rows.len(), Plan::ALL.len() * BitRate::ALL.len());
        for r in &rows {
            let parts = r.air_ms + r.chip_ms + r.host_ms;
            assert!((parts - r.total_ms).abs() < 1e-6, "{r:?}");
            assert!(r.apdus > 5 && r.bytes > r.apdus * 5, "{r:?}");
        }
    }

    #[test]
    fn faster_rates_cost_less_air_and_the_same_chip_time() {
        let rows = rows();
        for plan in Plan::ALL {
            let of_plan: Vec<&LinkRow> = rows.iter().filter(|r| r.plan == plan).collect();
            for pair in of_plan.windows(2) {
                assert!(pair[1].air_ms < pair[0].air_ms, "{pair:?}");
                assert!((pair[1].chip_ms - pair[0].chip_ms).abs() < 1e-9);
                assert_eq!(pair[1].apdus, pair[0].apdus);
            }
        }
    }

    #[test]
    fn the_extended_plan_sends_fewer_apdus_and_saves_host_round_trips() {
        let rows = rows();
        let at = |plan| {
            rows.iter()
                .find(|r| r.plan == plan && r.rate == BitRate::K424)
                .unwrap()
        };
        let (short, extended) = (at(Plan::Short), at(Plan::Extended));
        assert!(extended.apdus < short.apdus, "{short:?} {extended:?}");
        assert!(extended.host_ms < short.host_ms);
        assert!(extended.total_ms < short.total_ms);
    }
}
