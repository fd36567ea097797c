//! The operator console: what each reader is doing, the shift's yield, the
//! last outcomes, stage-time medians, KLMS reachability and the upload
//! backlog, served as a live web page, Prometheus metrics and a health check
//! ([`server`]).
//!
//! The station loops publish to a [`Console`] (cheap to clone, shared by
//! every reader worker):
//!
//! ```text
//! reader worker ──LineEvent / fob_finished──▶ Console ──▶ snapshot (page, SSE)
//!                                                     └──▶ Prometheus registry (/metrics)
//! ```

pub mod server;
pub mod words;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kf_perso::pipeline::{FobIdentity, FobOutcome, HookError, PipelineHooks};
use kf_perso::{AuditRecord, Stage};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use serde::Serialize;

/// The console options of `run` and `demo`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// Serve the operator console (`/`), Prometheus metrics (`/metrics`) and
    /// `/healthz` on this address, e.g. 127.0.0.1:8080 (port 0 picks a free
    /// one; the address is printed as `console: http://ADDR/`).
    #[arg(long, value_name = "ADDR")]
    pub console: Option<std::net::SocketAddr>,
    /// Allow a console address other than loopback (plain HTTP, no login:
    /// only on a trusted line network).
    #[arg(long, requires = "console")]
    pub console_allow_remote: bool,
}

impl ConsoleArgs {
    /// Starts the console when `--console` was given and prints its address
    /// (on stdout, or on stderr when stdout carries JSON).
    pub fn start(&self, json: bool) -> anyhow::Result<Option<(Console, server::ConsoleServer)>> {
        let Some(addr) = self.console else {
            return Ok(None);
        };
        let console = Console::new()?;
        let server =
            server::ConsoleServer::start(addr, self.console_allow_remote, console.clone())?;
        let line = format!("console: http://{}/", server.local_addr());
        if json {
            errln!("{line}");
        } else {
            outln!("{line}");
        }
        Ok(Some((console, server)))
    }
}

/// How many outcomes the page lists.
pub const RECENT_OUTCOMES: usize = 50;
/// Samples kept per stage for the medians (the most recent ones).
const STAGE_SAMPLES: usize = 1000;

/// What one reader is doing, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReaderState {
    /// Waiting for a fob.
    Idle,
    /// A fob is in the field; personalization has not started.
    FobPresent,
    /// Personalization is running this stage.
    Working {
        /// The stage (audit name).
        stage: &'static str,
        /// The stage in operator words.
        words: &'static str,
    },
    /// The last fob passed.
    Pass {
        /// Fob UID (hex), when read.
        uid: Option<String>,
        /// Time for the fob, milliseconds.
        ms: f64,
    },
    /// The last fob failed.
    Fail {
        /// Fob UID (hex), when read.
        uid: Option<String>,
        /// Why, in operator words.
        reason: String,
        /// The stage it failed in (audit name), when known.
        stage: Option<&'static str>,
    },
    /// The reader is gone or unusable.
    Offline {
        /// Why, in operator words.
        reason: String,
    },
}

impl ReaderState {
    /// The state of a reader whose pipeline is at `stage`.
    pub fn working(stage: Stage) -> ReaderState {
        ReaderState::Working {
            stage: stage.as_str(),
            words: words::stage_words(stage),
        }
    }
}

/// One change of one reader's state.
#[derive(Debug, Clone, PartialEq)]
pub struct LineEvent {
    /// The reader (`reader_id` of the configuration, as in audit records).
    pub reader_id: String,
    /// Its new state.
    pub state: ReaderState,
}

#[derive(Debug, Clone, Serialize)]
struct Tile {
    reader_id: String,
    #[serde(flatten)]
    state: ReaderState,
    good: u64,
    failed: u64,
}

#[derive(Debug, Clone, Serialize)]
struct RecentOutcome {
    time: String,
    reader_id: String,
    pass: bool,
    uid: Option<String>,
    ms: f64,
    reason: Option<String>,
}

#[derive(Default)]
struct LineState {
    readers: BTreeMap<String, Tile>,
    good: u64,
    failed: u64,
    recent: VecDeque<RecentOutcome>,
    stage_samples: BTreeMap<Stage, VecDeque<f64>>,
    klms_reachable: Option<bool>,
    upload_backlog: Option<u64>,
    klms_errors: u64,
}

/// The Prometheus side of the console (a private registry, not the global one).
struct Metrics {
    registry: Registry,
    fobs: IntCounterVec,
    stage_seconds: HistogramVec,
    upload_backlog: IntGauge,
    klms_errors: IntCounter,
    klms_reachable: IntGauge,
}

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let fobs = IntCounterVec::new(
            Opts::new(
                "kf_station_fobs_total",
                "Fobs finished, by reader and outcome",
            ),
            &["reader", "outcome"],
        )?;
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kf_station_stage_duration_seconds",
                "Time spent in each personalization stage",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["stage"],
        )?;
        let upload_backlog = IntGauge::new(
            "kf_station_upload_backlog",
            "Journal outcome records not yet acknowledged by the KLMS",
        )?;
        let klms_errors = IntCounter::new(
            "kf_station_klms_errors_total",
            "Fobs that failed on a KLMS error (unreachable, refused, invalid answer)",
        )?;
        let klms_reachable = IntGauge::new(
            "kf_station_klms_reachable",
            "1 when the KLMS answered last time it was asked, 0 when it could not be reached",
        )?;
        registry.register(Box::new(fobs.clone()))?;
        registry.register(Box::new(stage_seconds.clone()))?;
        registry.register(Box::new(upload_backlog.clone()))?;
        registry.register(Box::new(klms_errors.clone()))?;
        registry.register(Box::new(klms_reachable.clone()))?;
        Ok(Metrics {
            registry,
            fobs,
            stage_seconds,
            upload_backlog,
            klms_errors,
            klms_reachable,
        })
    }
}

struct Inner {
    state: Mutex<LineState>,
    metrics: Metrics,
    /// Bumped on every change; the live page waits on it.
    version: tokio::sync::watch::Sender<u64>,
}

/// The handle the station loops publish to. Clone it into every reader
/// worker; every method is cheap and never blocks on the network.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

impl Console {
    /// An empty console (no reader yet).
    pub fn new() -> anyhow::Result<Console> {
        let (version, _) = tokio::sync::watch::channel(0);
        Ok(Console {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                metrics: Metrics::new()?,
                version,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LineState> {
        // A poisoned lock only means a publisher panicked; the state is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.inner.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Sets a reader's state (a reader seen for the first time gets a tile).
    pub fn publish(&self, event: LineEvent) {
        {
            let mut line = self.lock();
            tile(&mut line, &event.reader_id).state = event.state;
        }
        self.changed();
    }

    /// The handle of one reader.
    pub fn reader(&self, reader_id: &str) -> ReaderConsole {
        let reader = ReaderConsole {
            console: self.clone(),
            reader_id: reader_id.to_owned(),
        };
        {
            let mut line = self.lock();
            tile(&mut line, reader_id);
        }
        self.changed();
        reader
    }

    /// Records a finished fob: the reader's tile turns PASS or FAIL, the
    /// yield counters, the outcome list, the stage times and the metrics
    /// take it in; a KLMS error also updates the KLMS reachability.
    pub fn fob_finished(&self, reader_id: &str, outcome: &FobOutcome) {
        let uid = outcome.uid.as_ref().map(hex::encode_upper);
        let ms = outcome.elapsed.as_secs_f64() * 1000.0;
        let metrics = &self.inner.metrics;
        let (state, reason) = match &outcome.error {
            None => (
                ReaderState::Pass {
                    uid: uid.clone(),
                    ms,
                },
                None,
            ),
            Some(e) => {
                let reason = words::failure_words(e).to_owned();
                (
                    ReaderState::Fail {
                        uid: uid.clone(),
                        reason: reason.clone(),
                        stage: Some(e.stage.as_str()),
                    },
                    Some(reason),
                )
            }
        };
        let pass = outcome.error.is_none();
        metrics
            .fobs
            .with_label_values(&[reader_id, if pass { "pass" } else { "fail" }])
            .inc();
        for (stage, stage_ms) in &outcome.record.stage_durations_ms {
            metrics
                .stage_seconds
                .with_label_values(&[stage.as_str()])
                .observe(stage_ms / 1000.0);
        }
        let klms = match &outcome.error {
            Some(e) => {
                if words::is_klms_error(e) {
                    metrics.klms_errors.inc();
                }
                words::klms_reachability(e)
            }
            None => None,
        };
        {
            let mut line = self.lock();
            let t = tile(&mut line, reader_id);
            t.state = state;
            if pass {
                t.good += 1;
                line.good += 1;
            } else {
                t.failed += 1;
                line.failed += 1;
            }
            if outcome.error.as_ref().is_some_and(words::is_klms_error) {
                line.klms_errors += 1;
            }
            for (stage, stage_ms) in &outcome.record.stage_durations_ms {
                let samples = line.stage_samples.entry(*stage).or_default();
                if samples.len() == STAGE_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(*stage_ms);
            }
            if line.recent.len() == RECENT_OUTCOMES {
                line.recent.pop_back();
            }
            line.recent.push_front(RecentOutcome {
                time: outcome.record.timestamp_iso8601.clone(),
                reader_id: reader_id.to_owned(),
                pass,
                uid,
                ms,
                reason,
            });
            if klms.is_some() {
                line.klms_reachable = klms;
            }
        }
        if let Some(reachable) = klms {
            metrics.klms_reachable.set(i64::from(reachable));
        }
        self.changed();
    }

    /// Sets the KLMS reachability (e.g. after a successful key fetch, or
    /// from the audit uploader's last error).
    pub fn set_klms_reachable(&self, reachable: bool) {
        self.inner.metrics.klms_reachable.set(i64::from(reachable));
        self.lock().klms_reachable = Some(reachable);
        self.changed();
    }

    /// Sets the number of outcome records waiting for the KLMS.
    pub fn set_upload_backlog(&self, pending: u64) {
        self.inner
            .metrics
            .upload_backlog
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.lock().upload_backlog = Some(pending);
        self.changed();
    }

    /// Takes in the audit uploader's counters: the backlog, and the KLMS
    /// reachability when the uploader has talked to it.
    pub fn upload_status(&self, stats: &kf_audit::UploaderStats) {
        self.set_upload_backlog(stats.pending);
        if stats.uploaded > 0 || stats.last_error.is_some() {
            self.set_klms_reachable(stats.last_error.is_none());
        }
    }

    /// The whole line as JSON (what the page renders).
    pub fn snapshot(&self) -> serde_json::Value {
        let line = self.lock();
        // In pipeline order (the order of `Stage`).
        let medians: Vec<(&'static str, f64)> = line
            .stage_samples
            .iter()
            .filter_map(|(stage, samples)| {
                let samples: Vec<f64> = samples.iter().copied().collect();
                kf_stats::median(&samples).map(|m| (stage.as_str(), m))
            })
            .collect();
        serde_json::json!({
            "readers": line.readers.values().collect::<Vec<_>>(),
            "good": line.good,
            "failed": line.failed,
            "recent": line.recent,
            "stage_medians_ms": medians,
            "klms_reachable": line.klms_reachable,
            "upload_backlog": line.upload_backlog,
            "klms_errors": line.klms_errors,
        })
    }

    /// The metrics in Prometheus text format.
    pub fn metrics_text(&self) -> anyhow::Result<String> {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.inner.metrics.registry.gather(), &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    /// A receiver that sees every change (for the live page).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.version.subscribe()
    }
}

fn tile<'a>(line: &'a mut LineState, reader_id: &str) -> &'a mut Tile {
    line.readers
        .entry(reader_id.to_owned())
        .or_insert_with(|| Tile {
            reader_id: reader_id.to_owned(),
            state: ReaderState::Idle,
            good: 0,
            failed: 0,
        })
}

/// One reader's view of the console: what its worker calls.
#[derive(Clone)]
pub struct ReaderConsole {
    console: Console,
    reader_id: String,
}

impl ReaderConsole {
    fn set(&self, state: ReaderState) {
        self.console.publish(LineEvent {
            reader_id: self.reader_id.clone(),
            state,
        });
    }

    /// Waiting for a fob.
    pub fn idle(&self) {
        self.set(ReaderState::Idle);
    }

    /// A fob arrived.
    pub fn fob_present(&self) {
        self.set(ReaderState::FobPresent);
    }

    /// The pipeline is at `stage`.
    pub fn working(&self, stage: Stage) {
        self.set(ReaderState::working(stage));
    }

    /// The fob is done (PASS or FAIL), see [`Console::fob_finished`].
    pub fn finished(&self, outcome: &FobOutcome) {
        self.console.fob_finished(&self.reader_id, outcome);
    }

    /// The reader is gone or failed; `reason` in operator words.
    pub fn offline(&self, reason: &str) {
        self.set(ReaderState::Offline {
            reason: reason.to_owned(),
        });
    }

    /// The whole console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// Pipeline hooks that show each stage on the tile and then call `inner`
    /// (e.g. the journal's hooks).
    pub fn hooks<'a>(&'a self, inner: &'a mut dyn PipelineHooks) -> ConsoleHooks<'a> {
        self.working(Stage::ReadUid);
        ConsoleHooks {
            reader: self,
            inner,
        }
    }
}

/// [`PipelineHooks`] that publish the stage under way, wrapping other hooks.
pub struct ConsoleHooks<'a> {
    reader: &'a ReaderConsole,
    inner: &'a mut dyn PipelineHooks,
}

impl PipelineHooks for ConsoleHooks<'_> {
    fn check_identity(&mut self, identity: &FobIdentity) -> Result<(), HookError> {
        self.inner.check_identity(identity)
    }

    fn check_input(
        &mut self,
        input: &kf_source::ProvisioningInput,
        record: &mut AuditRecord,
    ) -> Result<(), HookError> {
        self.inner.check_input(input, record)
    }

    fn before_first_store_data(&mut self, record: &AuditRecord) -> Result<(), HookError> {
        self.inner.before_first_store_data(record)
    }

    fn stage_finished(&mut self, stage: Stage, elapsed: Duration) {
        self.inner.stage_finished(stage, elapsed);
        let next = Stage::ALL
            .iter()
            .skip_while(|s| **s != stage)
            .nth(1)
            .copied();
        if let Some(next) = next {
            self.reader.working(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<Console>();
        shared::<ReaderConsole>();
    }

    #[test]
    fn states_reach_tiles_and_metrics() -> anyhow::Result<()> {
        let console = Console::new()?;
        let reader = console.reader("LINE_04_READER_01");
        reader.working(Stage::PayloadDelivery);
        let snap = console.snapshot();
        assert_eq!(snap["readers"][0]["state"], "working");
        assert_eq!(snap["readers"][0]["words"], "writing keys");
        console.set_upload_backlog(3);
        let text = console.metrics_text()?;
        assert!(text.contains("kf_station_upload_backlog 3"), "{text}");
        Ok(())
    }
}
