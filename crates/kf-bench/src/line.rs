//! A line of N readers over pcscd + vpcd (`kf-station bench --transport vpcd
//! --readers 1,2,4,8 [--link 424k]`): how the station's fobs per second grow
//! with the readers it drives at once.
//!
//! Every reader gets its own thread, PC/SC context and vpcd slot, as in
//! `kf-station run`; all share one package pool. Each slot holds a
//! [`FreshOnReset`] card: a virtual fob that turns into a new, blank fob
//! with a new UID when the station resets it at the end of a fob. The next
//! fob is thus on the antenna at once, and pcscd's insertion polling (about
//! 0.4 s) stays out of the figures: they are the station's ceiling with every
//! reader always loaded. With `--link` each fob answers at the modeled speed
//! of a real one ([`kf_transport::link`]).
//!
//! ```text
//!  thread per reader ─ PcscContext ─ pcscd ─ vpcd slot n ─ bridge ─ FreshOnReset(PacedCard(VirtualFob))
//!        └─ provision_fob ◀── SharedSource (one pool)
//! ```

use kf_card::{FobConfig, Uid, VirtualFob};
use kf_transport::link::{BitRate, LinkModel, PacedCard};
use kf_transport::loopback::VirtualCard;

/// The figures of one line size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScalingRow {
    /// Readers working at once.
    pub readers: usize,
    /// The modeled link, if any.
    pub link: Option<BitRate>,
    /// Fobs provisioned, over all readers.
    pub fobs: usize,
    /// Wall time of the run.
    pub wall_s: f64,
    /// Fobs per second over all readers.
    pub fobs_per_s: f64,
    /// fobs/s ÷ (readers × fobs/s of one reader).
    pub efficiency: f64,
    /// Median time of one fob (connect to reset).
    pub p50_ms: f64,
}

/// A slot's card: the next blank fob after every reset that follows use.
pub struct FreshOnReset {
    fob: PacedCard<VirtualFob>,
    /// Blank fobs still to come, made up front so a reset cannot fail.
    next: Vec<VirtualFob>,
    link: Option<LinkModel>,
    used: bool,
}

impl FreshOnReset {
    /// `fobs` blank dev-sample fobs with random UIDs, one after the other,
    /// paced by `link`. After the last one the slot keeps it: a further fob
    /// fails (already personalized) and the bench says so.
    pub fn new(fobs: usize, link: Option<BitRate>) -> Result<Self, crate::BenchError> {
        let link = link.map(LinkModel::new);
        let mut next = (0..fobs.max(1))
            .map(|_| blank_fob())
            .collect::<Result<Vec<_>, _>>()?;
        let first = next.pop().ok_or(crate::BenchError::EmptyMeasurement)?;
        Ok(Self {
            fob: PacedCard::new(first, link),
            next,
            link,
            used: false,
        })
    }
}

fn blank_fob() -> Result<VirtualFob, crate::BenchError> {
    let uid = Uid::random(Uid::DEFAULT_LEN)?;
    Ok(VirtualFob::new(FobConfig::dev_sample().with_uid(uid))?)
}

impl VirtualCard for FreshOnReset {
    fn power_on(&mut self) -> Vec<u8> {
        self.fob.power_on()
    }
    fn power_off(&mut self) {
        self.fob.power_off()
    }
    fn reset(&mut self) -> Vec<u8> {
        if std::mem::take(&mut self.used) {
            if let Some(fob) = self.next.pop() {
                self.fob = PacedCard::new(fob, self.link);
                return self.fob.power_on();
            }
        }
        self.fob.reset()
    }
    fn atr(&self) -> Vec<u8> {
        self.fob.atr()
    }
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.used = true;
        self.fob.process_apdu(apdu)
    }
}

/// A text table of `rows`.
pub fn table(rows: &[ScalingRow]) -> String {
    let mut out =
        String::from("readers  link    fobs   wall s    fobs/s  efficiency  p50 ms/fob\n");
    for r in rows {
        out.push_str(&format!(
            "{:>7}  {:<6} {:>5} {:>8.2} {:>9.1} {:>11.2} {:>11.1}\n",
            r.readers,
            r.link.map_or("none", BitRate::name),
            r.fobs,
            r.wall_s,
            r.fobs_per_s,
            r.efficiency,
            r.p50_ms
        ));
    }
    out
}

#[cfg(all(unix, feature = "pcsc"))]
pub use vpcd::scaling;

#[cfg(all(unix, feature = "pcsc"))]
mod vpcd {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use kf_perso::pipeline::{provision_fob, NoHooks, PipelineOptions};
    use kf_source::{DevSampleSource, SharedSource};
    use kf_testkit::VpcdStack;
    use kf_transport::link::BitRate;
    use kf_transport::pcsc::{CardDisposition, PcscContext};

    use super::{FreshOnReset, ScalingRow};
    use crate::BenchError;

    const WAIT: Duration = Duration::from_secs(15);

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// Runs `fobs_per_reader` fobs on each of N readers at once, for each N
    /// of `counts`; the efficiency is relative to the first count's fobs/s
    /// per reader (give 1 first).
    pub fn scaling(
        counts: &[usize],
        fobs_per_reader: usize,
        options: &PipelineOptions,
        link: Option<BitRate>,
    ) -> Result<Vec<ScalingRow>, BenchError> {
        let most = counts.iter().copied().max().unwrap_or(0);
        if most == 0 || fobs_per_reader == 0 {
            return Err(BenchError::EmptyMeasurement);
        }
        let stack = VpcdStack::start_slots(most).map_err(BenchError::Pcscd)?;
        let context = PcscContext::establish()?;
        let mut bridges = Vec::with_capacity(most);
        for slot in 0..most {
            let slot16 = u16::try_from(slot).map_err(|_| BenchError::EmptyMeasurement)?;
            // Every run with more readers than `slot` uses this slot.
            let runs = counts.iter().filter(|&&n| n > slot).count();
            let card = FreshOnReset::new(runs * fobs_per_reader + 1, link)?;
            bridges.push(
                stack
                    .insert_at(slot16, card, WAIT)
                    .map_err(BenchError::Pcscd)?,
            );
        }
        let readers: Vec<String> = (0..most)
            .map(|slot| stack.reader_name(u8::try_from(slot).unwrap_or(u8::MAX)))
            .collect();
        for reader in &readers {
            context.wait_for_card(reader, Some(WAIT))?;
        }
        let mut rows = Vec::new();
        let mut per_reader_base: Option<f64> = None;
        for &n in counts {
            let pool = DevSampleSource::generated(n * fobs_per_reader, None)?;
            let source = SharedSource::new(Box::new(pool));
            let times = Mutex::new(Vec::with_capacity(n * fobs_per_reader));
            let start = Instant::now();
            let results: Vec<Result<(), BenchError>> = std::thread::scope(|scope| {
                let workers: Vec<_> = readers[..n]
                    .iter()
                    .map(|reader| {
                        let mut source = source.clone();
                        let times = &times;
                        scope.spawn(move || -> Result<(), BenchError> {
                            let context = PcscContext::establish()?;
                            for _ in 0..fobs_per_reader {
                                let fob_start = Instant::now();
                                let mut card = context.connect(reader)?;
                                let outcome =
                                    provision_fob(&mut card, &mut source, options, &mut NoHooks);
                                card.disconnect(CardDisposition::Reset)?;
                                if let Some(e) = outcome.error {
                                    return Err(BenchError::FobFailed(e));
                                }
                                if let Ok(mut times) = times.lock() {
                                    times.push(ms(fob_start.elapsed()));
                                }
                            }
                            Ok(())
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or(Err(BenchError::ReaderPanicked)))
                    .collect()
            });
            let wall = start.elapsed();
            results
                .into_iter()
                .collect::<Result<Vec<()>, BenchError>>()?;
            let fobs = n * fobs_per_reader;
            let fobs_per_s = fobs as f64 / wall.as_secs_f64();
            let base = *per_reader_base.get_or_insert(fobs_per_s / n as f64);
            let mut times = times.into_inner().unwrap_or_default();
            times.sort_by(f64::total_cmp);
            rows.push(ScalingRow {
                readers: n,
                link,
                fobs,
                wall_s: wall.as_secs_f64(),
                fobs_per_s,
                efficiency: fobs_per_s / (n as f64 * base),
                p50_ms: kf_stats::median(&times).unwrap_or(0.0),
            });
        }
        for bridge in bridges {
            bridge.stop_and_join()?;
        }
        Ok(rows)
    }
}

/// Without PC/SC there is no vpcd line.
#[cfg(not(all(unix, feature = "pcsc")))]
pub fn scaling(
    _counts: &[usize],
    _fobs_per_reader: usize,
    _options: &kf_perso::pipeline::PipelineOptions,
    _link: Option<BitRate>,
) -> Result<Vec<ScalingRow>, crate::BenchError> {
    Err(crate::BenchError::VpcdUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(card: &mut FreshOnReset) -> Vec<u8> {
        card.process_apdu(&kf_apdu::gp::pcsc::GET_UID)
    }

    #[test]
    fn a_reset_after_use_brings_the_next_blank_fob_and_the_last_one_stays() {
        let mut card = FreshOnReset::new(2, None).unwrap();
        card.power_on();
        // A reset before any command keeps the fob (pcscd resets at connect).
        card.reset();
        let first = uid(&mut card);
        assert_eq!(uid(&mut card), first);
        card.reset();
        let second = uid(&mut card);
        assert_ne!(second, first);
        assert_eq!(&second[second.len() - 2..], [0x90, 0x00]);
        card.reset();
        assert_eq!(
            uid(&mut card),
            second,
            "no third fob: the slot keeps the last"
        );
    }
}
