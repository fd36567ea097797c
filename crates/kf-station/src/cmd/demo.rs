//! `kf-station demo`: the main job on its embedded defaults. N virtual fobs are
//! provisioned in-process through the full pipeline, with a progress bar and a
//! summary (yield, per-stage median times, failures by stage).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kf_perso::pipeline::{FobOutcome, PipelineOptions};
use kf_perso::Stage;
use kf_source::DevSampleSource;
use kf_transport::loopback::LoopbackTransport;

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
    /// or dev (seed dev-sample keys, in-memory packages).
    #[arg(long, default_value = "klms", value_parser = ["klms", "dev"])]
    pub source: String,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
    /// With --console: wait for a line on standard input before the first
    /// fob, and keep the console up after the last one until standard input
    /// closes (for a supervised demo, or a test driving a browser).
    #[arg(long, requires = "console")]
    pub console_hold: bool,
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
    let klms = if args.source == "klms" {
        Some(EmbeddedKlms::start(&args.data_dir)?)
    } else {
        None
    };
    let mut recorder = Recorder::open(
        &journal,
        Some(&audit_file),
        klms.as_ref().map(|k| &k.client),
    )?;
    let mut source: Box<dyn kf_source::ProvisioningSource> = match &klms {
        Some(k) => Box::new(crate::klms::source(&k.client, DEMO_READER)),
        None => Box::new(DevSampleSource::generated(args.fobs, None)?),
    };
    let console = args.console.start(args.json)?;
    let reader = console.as_ref().map(|(c, _)| c.reader(DEMO_READER));
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
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(args.fobs);
    for _ in 0..args.fobs {
        let fob = match &klms {
            Some(k) => k.fob()?,
            None => sim_fob()?,
        };
        let fob = kf_transport::PacedCard::new(fob, args.link.map(kf_transport::LinkModel::new));
        let mut link = LoopbackTransport::new(fob);
        if let Some(reader) = &reader {
            reader.fob_present();
        }
        let outcome =
            recorder.provision_shown(&mut link, source.as_mut(), options, reader.as_ref())?;
        bar.set_message(crate::station::outcome_line(&outcome));
        bar.inc(1);
        outcomes.push(outcome);
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
    if let Some(k) = klms {
        k.server.shutdown();
    }
    let mut summary = Summary::of(&outcomes, wall);
    summary.upload = upload;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary.to_json())?);
    } else {
        summary.print(&journal, &audit_file);
    }
    Ok(summary.failed == 0)
}

/// Yield, per-stage medians and failures by stage.
pub struct Summary {
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
    kf_bench::stats::median(&v).unwrap_or(0.0)
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
            "provisioned {good}/{} fobs ({:.1}% yield) in {:.2} s; per fob median {:.2} ms",
            self.total,
            if self.total == 0 {
                0.0
            } else {
                100.0 * good as f64 / self.total as f64
            },
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
