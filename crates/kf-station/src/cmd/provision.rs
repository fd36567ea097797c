//! `kf-station provision`: one fob, from a reader or the in-process virtual fob.

use std::path::PathBuf;

use clap::Args;

use crate::config::StationConfig;
use crate::exit;
use crate::station::{open_source, outcome_json, outcome_line, provision_sim, Recorder};

/// Options shared by `provision` and `run`.
#[derive(Args, Debug, Clone)]
pub struct StationArgs {
    /// Station configuration (TOML); `KF_*` environment variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// PC/SC reader name (see `kf-station readers`).
    #[arg(long, conflicts_with = "sim")]
    pub reader: Option<String>,
    /// Use an in-process virtual fob (dev-sample keys) instead of a reader.
    #[arg(long)]
    pub sim: bool,
    /// UID of the virtual fob, hex (default: a random one); the same UID
    /// presents the same fob to the source again.
    #[arg(long, requires = "sim", value_name = "HEX")]
    pub sim_uid: Option<String>,
    /// Make the virtual fob answer at the modeled speed of a real fob at
    /// this ISO/IEC 14443-4 bit rate (106k, 212k, 424k, 848k).
    #[arg(long, requires = "sim", value_name = "RATE")]
    pub sim_link: Option<kf_transport::BitRate>,
    /// Provisioning source: dev, container, klms (klms reads `[klms]` from --config).
    #[arg(long)]
    pub source: Option<String>,
    /// Container pool directory (for --source container; optional for dev).
    #[arg(long)]
    pub source_dir: Option<PathBuf>,
    /// Where the packages of fobs that passed are moved (default: DIR/done of --source-dir).
    #[arg(long)]
    pub done_dir: Option<PathBuf>,
    /// Keep the private-key file of packages of fobs that passed (debugging only;
    /// by default it is overwritten with zeros and removed).
    #[arg(long)]
    pub keep_packages: bool,
    /// The package producer's public key (PEM, EC P-256): a package's
    /// `manifest.json` is verified with it.
    #[arg(long)]
    pub manifest_key: Option<PathBuf>,
    /// Refuse packages without a signed `manifest.json` (needs --manifest-key).
    #[arg(long)]
    pub require_manifest: bool,
    /// Personalize a fob although the journal holds a SUCCESS for its chip
    /// serial or UID (by default such a fob is refused: "already
    /// personalized").
    #[arg(long)]
    pub repersonalize: bool,
    /// SCP03 security level (01, 03, 11, 13, 33).
    #[arg(long)]
    pub level: Option<String>,
    /// The durable audit journal (SQLite).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Also append every audit record to this file as JSON lines.
    #[arg(long)]
    pub audit_file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl StationArgs {
    /// The configuration after file, environment and flags.
    pub fn config(&self) -> anyhow::Result<StationConfig> {
        let mut config = StationConfig::load(self.config.as_deref())?;
        if let Some(r) = &self.reader {
            config.reader = r.clone();
            config.sim = false;
        }
        if self.sim {
            config.sim = true;
        }
        if let Some(s) = &self.source {
            config.source.kind = s.clone();
        }
        if let Some(d) = &self.source_dir {
            config.source.dir = Some(d.clone());
        }
        if let Some(d) = &self.done_dir {
            config.source.done_dir = Some(d.clone());
        }
        if self.keep_packages {
            config.source.keep_packages = true;
        }
        if let Some(k) = &self.manifest_key {
            config.source.manifest_key = Some(k.clone());
        }
        if self.require_manifest {
            config.source.require_manifest = true;
        }
        if let Some(l) = &self.level {
            config.security_level = l.clone();
        }
        if let Some(a) = &self.audit_file {
            config.audit_file = Some(a.clone());
        }
        if let Some(j) = &self.journal {
            config.journal = j.clone();
        }
        Ok(config)
    }
}

/// Provisions one fob.
pub fn run(args: StationArgs) -> u8 {
    match provision_one(&args) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::BAD_INPUT
        }
    }
}

fn provision_one(args: &StationArgs) -> anyhow::Result<u8> {
    let config = args.config()?;
    let options = config.pipeline_options()?;
    // Every refusal comes before the source and the journal are opened: a
    // refused invocation leaves no journal (nor claim marker) behind.
    if config.sim {
        crate::station::ensure_sim("provision --sim")?;
    } else {
        if config.reader.is_empty() {
            anyhow::bail!("no reader: give --reader NAME (see `kf-station readers`) or --sim");
        }
        crate::reader::ensure_supported()?;
    }
    let opened = open_source(&config)?;
    let mut source = opened.source;
    let recorder = Recorder::open(
        &config.journal,
        config.audit_file.as_deref(),
        opened.klms.as_ref(),
    )?
    .repersonalize(args.repersonalize)?;
    let outcome = if config.sim {
        provision_sim(
            &recorder,
            source.as_mut(),
            &options,
            args.sim_uid.as_deref(),
            args.sim_link,
        )?
    } else {
        crate::reader::provision_on_reader(&config.reader, source.as_mut(), &options, &recorder)?
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome_json(&outcome))?);
    } else {
        outln!("{}", outcome_line(&outcome));
    }
    if let Some(stats) = recorder.close(std::time::Duration::from_secs(5)) {
        if stats.pending > 0 {
            errln!(
                "audit upload pending ({} record(s)): they stay in the journal and go out with the next run",
                stats.pending
            );
        }
    }
    Ok(if outcome.is_success() {
        exit::OK
    } else {
        exit::FAILED
    })
}
