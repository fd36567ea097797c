//! `kf-station demo`: the main job on its embedded defaults. N virtual fobs are
//! provisioned in-process through the full pipeline, with a progress bar and a
//! summary (yield, per-stage median times, failures by stage).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kf_perso::pipeline::{FobOutcome, PipelineOptions};
use kf_perso::Stage;
use kf_source::DevSampleSource;
use kf_transport::loopback::LoopbackTransport;
use kf_transport::LinkModel;

use crate::config::StationConfig;
use crate::exit;
use crate::station::{sim_fob, Recorder};

/// Options of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of virtual fobs.
    #[arg(long, default_value_t = 20)]
    pub fobs: usize,
    /// SCP03 security level.
    #[arg(long, default_value = "33")]
    pub level: String,
    /// Data directory: journal, audit JSON lines (created when missing;
    /// default `kf-demo`, on Windows `%ProgramData%\keyfob-station\kf-demo`).
    #[arg(long, default_value_os_t = crate::paths::default_demo_dir())]
    pub data_dir: PathBuf,
    /// Machine-readable summary.
    #[arg(long)]
    pub json: bool,
    /// Key source: klms (embedded reference KLMS over mTLS, diversified keys)
    /// or dev (the specification's dev-sample keys, in-memory packages).
    #[arg(long, default_value = "klms", value_parser = ["klms", "dev"])]
    pub source: String,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
    /// With --console: wait for a line on standard input before the first
    /// fob, and keep the console up after the last one until standard input
    /// closes (for a supervised demo, or a test driving a browser).
    #[arg(long, requires = "console")]
    pub console_hold: bool,
    /// Virtual readers working in parallel, as on a line station: each takes
    /// the next fob as soon as it is free; one journal, one key source.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub readers: u16,
    /// Make each virtual fob answer at the modeled speed of a real fob on an
    /// ISO/IEC 14443-4 link at this bit rate (106k, 212k, 424k, 848k).
    #[arg(long, value_name = "RATE")]
    pub link: Option<kf_transport::BitRate>,
}

/// The embedded reference KLMS of the demo: dev PKI in the data directory,
/// a random master key, a ledger, and a client with the station's identity.
struct EmbeddedKlms {
    server: kf_klms::ServerHandle,
    master: kf_crypto::AesKey,
    key_version: u8,
    client: std::sync::Arc<kf_source::klms::KlmsClient>,
}

impl EmbeddedKlms {
    fn start(data_dir: &std::path::Path) -> anyhow::Result<EmbeddedKlms> {
        use kf_klms::pki::DevPki;
        use kf_source::klms::{KlmsClient, KlmsClientConfig};
        let pki = DevPki::generate("kf-demo development CA", &[STATION_ID])?;
        pki.write_to(&data_dir.join("pki"))?;
        let mut master = zeroize::Zeroizing::new([0u8; 16]);
        getrandom::getrandom(master.as_mut_slice())
            .map_err(|e| anyhow::anyhow!("no randomness for the master key: {e}"))?;
        let master = kf_crypto::AesKey::from_slice(master.as_slice())?;
        let ledger = data_dir.join("klms-ledger.db");
        let config = kf_klms::KlmsConfig::dev(&pki, ledger, master.duplicate())?;
        let key_version = config.key_version;
        let server = kf_klms::spawn_server(config)?;
        let (_, station) = pki
            .stations
            .first()
            .ok_or_else(|| anyhow::anyhow!("the dev PKI has no station certificate"))?;
        let identity = zeroize::Zeroizing::new(
            format!("{}\n{}", station.cert_pem, station.key_pem).into_bytes(),
        );
        let client = KlmsClient::new(KlmsClientConfig::new(
            server.base_url(),
            pki.ca.cert_pem.as_bytes().to_vec(),
            identity,
        ))?;
        Ok(EmbeddedKlms {
            server,
            master,
            key_version,
            client: std::sync::Arc::new(client),
        })
    }

    /// A virtual fob carrying the keys the KLMS diversifies for its UID.
    fn fob(&self) -> anyhow::Result<kf_card::VirtualFob> {
        let uid = kf_card::Uid::random(kf_card::Uid::DEFAULT_LEN)?;
        let keys = kf_crypto::kdf::diversify_static_keys(&self.master, uid.as_bytes())?;
        Ok(kf_card::VirtualFob::new(
            kf_card::FobConfig::dev_sample()
                .with_uid(uid)
                .with_only_key_set(self.key_version, keys),
        )?)
    }
}

/// Where the demo's keys come from.
enum DemoKeys {
    /// The embedded KLMS: diversified keys, one source per reader (each
    /// names its reader in its requests).
    Klms(EmbeddedKlms),
    /// The dev-sample keys and one in-memory pool for every reader.
    Dev(kf_source::SharedSource),
}

impl DemoKeys {
    fn client(&self) -> Option<&std::sync::Arc<kf_source::klms::KlmsClient>> {
        match self {
            DemoKeys::Klms(k) => Some(&k.client),
            DemoKeys::Dev(_) => None,
        }
    }

    fn source_for(&self, reader_id: &str) -> Box<dyn kf_source::ProvisioningSource + Send> {
        match self {
            DemoKeys::Klms(k) => Box::new(crate::klms::source(&k.client, reader_id)),
            DemoKeys::Dev(pool) => Box::new(pool.clone()),
        }
    }
}

const STATION_ID: &str = "DEMO-STATION";
const DEMO_READER: &str = "DEMO-READER-01";

/// Runs the demo.
pub fn run(args: DemoArgs) -> u8 {
    // Arguments first: a bad --level is the operator's input (exit 2, like
    // clap's usage errors and `provision --level`), not a failed fob (exit 1),
    // and it is refused before the data directory is created.
    let options = match demo_options(&args) {
        Ok(options) => options,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            return exit::BAD_INPUT;
        }
    };
    match demo(&args, &options) {
        Ok(true) => exit::OK,
        Ok(false) => exit::FAILED,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::FAILED
        }
    }
}

fn demo_options(args: &DemoArgs) -> anyhow::Result<PipelineOptions> {
    let config = StationConfig {
        station_id: STATION_ID.into(),
        security_level: args.level.clone(),
        ..StationConfig::default()
    };
    config.pipeline_options().context("--level")
}

fn demo(args: &DemoArgs, options: &PipelineOptions) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&args.data_dir)?;
    let journal = args.data_dir.join("journal.db");
    let audit_file = args.data_dir.join("audit.jsonl");
    let keys = if args.source == "klms" {
        DemoKeys::Klms(EmbeddedKlms::start(&args.data_dir)?)
    } else {
        DemoKeys::Dev(kf_source::SharedSource::new(Box::new(
            DevSampleSource::generated(args.fobs, None)?,
        )))
    };
    let recorder = Recorder::open(&journal, Some(&audit_file), keys.client())?;
    let console = args.console.start(args.json)?;
    let readers: Vec<String> = (1..=args.readers)
        .map(|n| match args.readers {
            1 => DEMO_READER.to_string(),
            _ => format!("DEMO-READER-{n:02}"),
        })
        .collect();
    let tiles: Vec<_> = readers
        .iter()
        .map(|id| console.as_ref().map(|(c, _)| c.reader(id)))
        .collect();
    if args.console_hold {
        errln!("console up: press Enter to start the fobs");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    let bar = ProgressBar::new(args.fobs as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} fobs  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let line = Line {
        args,
        keys: &keys,
        recorder: &recorder,
        bar: &bar,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<FobOutcome>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = readers
            .iter()
            .zip(tiles)
            .map(|(reader_id, tile)| {
                let source = keys.source_for(reader_id);
                let mut options = options.clone();
                options.reader_id = Some(reader_id.clone());
                let line = &line;
                scope.spawn(move || line.reader(source, &options, tile))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader worker panicked")))
            })
            .collect()
    });
    let mut outcomes = Vec::with_capacity(args.fobs);
    for result in results {
        outcomes.extend(result?);
    }
    bar.finish_and_clear();
    let wall = started.elapsed();
    let upload = recorder.close(Duration::from_secs(10));
    if let Some((console, server)) = console {
        if let Some(stats) = &upload {
            console.upload_status(stats);
        }
        if args.console_hold {
            errln!("console up: close standard input to stop");
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())?;
        }
        server.shutdown();
    }
    if let DemoKeys::Klms(k) = keys {
        k.server.shutdown();
    }
    let mut summary = Summary::of(&outcomes, wall);
    summary.readers = args.readers;
    summary.upload = upload;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary.to_json())?);
    } else {
        summary.print(&journal, &audit_file);
    }
    Ok(summary.failed == 0)
}

/// What the demo's reader workers share.
struct Line<'a> {
    args: &'a DemoArgs,
    keys: &'a DemoKeys,
    recorder: &'a Recorder,
    bar: &'a ProgressBar,
    /// Fobs handed out so far.
    next: AtomicUsize,
    /// Set when a worker fails: the others stop after their current fob.
    stop: AtomicBool,
}

impl Line<'_> {
    /// One reader: takes fobs until none is left, returns their outcomes.
    fn reader(
        &self,
        mut source: Box<dyn kf_source::ProvisioningSource + Send>,
        options: &PipelineOptions,
        tile: Option<crate::console::ReaderConsole>,
    ) -> anyhow::Result<Vec<FobOutcome>> {
        let result = self.fobs(source.as_mut(), options, tile.as_ref());
        if result.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
        result
    }

    fn fobs(
        &self,
        source: &mut dyn kf_source::ProvisioningSource,
        options: &PipelineOptions,
        tile: Option<&crate::console::ReaderConsole>,
    ) -> anyhow::Result<Vec<FobOutcome>> {
        let mut outcomes = Vec::new();
        while !self.stop.load(Ordering::SeqCst)
            && self.next.fetch_add(1, Ordering::SeqCst) < self.args.fobs
        {
            let fob = match self.keys {
                DemoKeys::Klms(k) => k.fob()?,
                DemoKeys::Dev(_) => sim_fob()?,
            };
            let fob = kf_transport::PacedCard::new(fob, self.args.link.map(LinkModel::new));
            let mut link = LoopbackTransport::new(fob);
            if let Some(tile) = tile {
                tile.fob_present();
            }
            let outcome = self
                .recorder
                .provision_shown(&mut link, source, options, tile)?;
            self.bar.set_message(crate::station::outcome_line(&outcome));
            self.bar.inc(1);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

/// Yield, per-stage medians and failures by stage.
pub struct Summary {
    readers: u16,
    total: usize,
    failed: usize,
    wall: Duration,
    per_fob_median_ms: f64,
    stage_medians_ms: BTreeMap<Stage, f64>,
    failures_by_stage: BTreeMap<Stage, usize>,
    upload: Option<kf_audit::UploaderStats>,
}

/// Median, 0 when there are no samples.
fn median(v: Vec<f64>) -> f64 {
    kf_stats::median(&v).unwrap_or(0.0)
}

impl Summary {
    /// Summarizes outcomes.
    pub fn of(outcomes: &[FobOutcome], wall: Duration) -> Summary {
        let mut per_stage: BTreeMap<Stage, Vec<f64>> = BTreeMap::new();
        let mut failures_by_stage = BTreeMap::new();
        for o in outcomes {
            for (stage, ms) in &o.record.stage_durations_ms {
                per_stage.entry(*stage).or_default().push(*ms);
            }
            if let Some(e) = &o.error {
                *failures_by_stage.entry(e.stage).or_insert(0) += 1;
            }
        }
        Summary {
            readers: 1,
            total: outcomes.len(),
            failed: outcomes.iter().filter(|o| !o.is_success()).count(),
            wall,
            per_fob_median_ms: median(
                outcomes
                    .iter()
                    .map(|o| o.elapsed.as_secs_f64() * 1000.0)
                    .collect(),
            ),
            stage_medians_ms: per_stage.into_iter().map(|(s, v)| (s, median(v))).collect(),
            failures_by_stage,
            upload: None,
        }
    }

    fn print(&self, journal: &std::path::Path, audit: &std::path::Path) {
        let good = self.total - self.failed;
        outln!(
            "provisioned {good}/{} fobs ({:.1}% yield) on {} reader{} in {:.2} s; per fob median {:.2} ms",
            self.total,
            if self.total == 0 {
                0.0
            } else {
                100.0 * good as f64 / self.total as f64
            },
            self.readers,
            if self.readers == 1 { "" } else { "s" },
            self.wall.as_secs_f64(),
            self.per_fob_median_ms
        );
        outln!("per-stage medians:");
        for (stage, ms) in &self.stage_medians_ms {
            outln!("  {:<22} {ms:>8.3} ms", format!("{stage:?}"));
        }
        if !self.failures_by_stage.is_empty() {
            outln!("failures by stage:");
            for (stage, n) in &self.failures_by_stage {
                outln!("  {:<22} {n}", format!("{stage:?}"));
            }
        }
        if let Some(u) = &self.upload {
            outln!(
                "KLMS (mutual TLS): journal records anchored {}, pending {}, rejected {}",
                u.uploaded,
                u.pending,
                u.rejected
            );
        }
        outln!(
            "journal: {} (kf-station audit verify --journal {0})",
            journal.display()
        );
        outln!("audit records: {}", audit.display());
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fobs": self.total,
            "readers": self.readers,
            "failed": self.failed,
            "wall_s": self.wall.as_secs_f64(),
            "per_fob_median_ms": self.per_fob_median_ms,
            "stage_medians_ms": self.stage_medians_ms,
            "failures_by_stage": self.failures_by_stage,
            "audit_uploaded": self.upload.as_ref().map(|u| u.uploaded),
            "audit_pending": self.upload.as_ref().map(|u| u.pending),
        })
    }
}
