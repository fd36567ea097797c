//! `kf-klms`: reference KLMS server and tools.
//!
//! ```text
//! klms.toml ──FileConfig::load──▶ KlmsConfig ──serve──▶ REST over mTLS (kf_klms::serve)
//! pki init ──▶ CA, server and station certificates, klms.toml
//! derive | reissue | chain state | chain reset | receipt-key | hsm init ──▶ the key backend or the ledger
//! bench | bench-limits ──▶ timings of KDF3 and the ledger, the server under attack
//! ```
//!
//! A thin command layer: every rule lives in the `kf_klms` library.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kf_klms::config::FileConfig;
use kf_klms::ledger::LedgerLocation;
use kf_klms::pki::DevPki;
use rand::RngCore;

#[derive(Parser)]
#[command(
    name = "kf-klms",
    version,
    about = "Reference KLMS: REST over mutual TLS, KDF3, issuance ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML configuration (see `pki init`, which writes klms.toml).
        #[arg(long)]
        config: PathBuf,
        /// Override the listen address.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Print the KDF3-diversified static keys as JSON (upper-case hex).
    Derive {
        /// Master key, hex (16, 24 or 32 bytes).
        #[arg(long)]
        master_key: String,
        /// Fob UID, hex.
        #[arg(long)]
        uid: String,
        /// Expected UID length in bytes.
        #[arg(long, default_value_t = kf_klms::DEFAULT_UID_LEN)]
        uid_len: usize,
    },
    /// Development PKI.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Record an operator re-issue: the UID's next request gets a new package.
    Reissue {
        /// Fob UID, hex.
        uid: String,
        #[command(flatten)]
        action: OperatorAction,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Master key in a PKCS#11 token (the `[hsm]` section of the configuration).
    Hsm {
        #[command(subcommand)]
        command: HsmCommand,
    },
    /// Station journal anchors: each station's last anchored record and alerts.
    Chain {
        #[command(subcommand)]
        command: ChainCommand,
    },
    /// Print the public key that verifies journal receipts (PEM).
    ReceiptKey {
        /// Server configuration (for the master key the receipt key derives from).
        #[arg(long)]
        config: PathBuf,
    },
    /// Issuance throughput over mutual TLS against an in-process server.
    Bench {
        /// Concurrency levels, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
        concurrency: Vec<usize>,
        /// Requests per level.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Directory for the ledger (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Anchored audit ingest instead of issuance: as many stations as the
        /// concurrency level, each uploading its own journal chain.
        #[arg(long)]
        audit: bool,
        /// KLMS configuration whose `[hsm]` section holds the master key
        /// (default: a master key in memory).
        #[arg(long)]
        hsm_config: Option<PathBuf>,
        /// PostgreSQL ledger URL instead of a SQLite file in `--dir`
        /// (default: the environment variable KF_KLMS_LEDGER_URL, if set).
        #[arg(long, env = "KF_KLMS_LEDGER_URL", hide_env_values = true)]
        ledger_url: Option<String>,
        /// KLMS instances on the one ledger (needs `--ledger-url`); requests
        /// go round robin over them.
        #[arg(long, default_value_t = 1)]
        instances: usize,
    },
    /// Issuance under attack: starts `kf-klms serve` as a child process on
    /// loopback, measures issuance by `--clients` stations quiet and while
    /// `--connections` idle or slow connections are held open, and the
    /// server's RSS before, during and after (raise `ulimit -n` above
    /// `--connections` first).
    BenchLimits {
        /// Hostile connections held open during the attack.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Stations issuing (one keep-alive connection each).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds of each measured phase.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum HsmCommand {
    /// Create the master key in the token named by the `[hsm]` section:
    /// generated inside the token, or imported with `--import-key-file`.
    /// Prints the key check value; refuses an existing key label.
    Init {
        /// Server configuration with an `[hsm]` section.
        #[arg(long)]
        config: PathBuf,
        /// AES key length of a generated key.
        #[arg(long, default_value = "128", value_parser = ["128", "192", "256"])]
        bits: String,
        /// Import this master key (hex file, e.g. the old `master-key.hex`)
        /// instead of generating one, to keep serving fobs personalized under it.
        #[arg(long)]
        import_key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ChainCommand {
    /// One line per station: last anchored sequence number, link, time, alerts.
    State {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a deliberate journal reset of a station: its next upload
    /// starts at record 1 again (recorded as an alert with the reason).
    Reset {
        /// Station (client certificate CN).
        station: String,
        #[command(flatten)]
        action: OperatorAction,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// An operator's decision recorded in the ledger.
#[derive(Args)]
struct OperatorAction {
    /// Why (kept in the ledger).
    #[arg(long)]
    reason: String,
    /// Who.
    #[arg(long, env = "USER", default_value = "operator")]
    operator: String,
}

impl OperatorAction {
    /// This decision, taken at `now_ms`, as the ledger records it.
    fn at(&self, now_ms: i64) -> kf_klms::ledger::OperatorAction<'_> {
        kf_klms::ledger::OperatorAction::new(&self.reason, &self.operator, now_ms)
    }
}

/// Where the ledger is.
#[derive(Args)]
struct LedgerArgs {
    /// Server configuration (for the ledger path; for `reissue`, also the UID length).
    #[arg(long, conflicts_with = "ledger")]
    config: Option<PathBuf>,
    /// Ledger database, if no configuration is given.
    #[arg(long)]
    ledger: Option<PathBuf>,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a CA, a server certificate (localhost, 127.0.0.1), station
    /// certificates, the fob CA hierarchy, a master key and klms.toml.
    Init {
        /// Target directory.
        dir: PathBuf,
        /// Station CNs (client certificates).
        #[arg(long = "station", default_value = "station-01")]
        stations: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { config, bind } => serve(&config, bind),
        Command::Derive {
            master_key,
            uid,
            uid_len,
        } => {
            let json =
                kf_klms::derive_json(&master_key, &uid, uid_len).map_err(anyhow::Error::msg)?;
            println!("{json}");
            Ok(())
        }
        Command::Pki {
            command: PkiCommand::Init { dir, stations },
        } => pki_init(&dir, &stations),
        Command::Reissue {
            uid,
            action,
            ledger,
        } => reissue(&uid, &action, &ledger),
        Command::Bench {
            concurrency,
            requests,
            dir,
            audit,
            hsm_config,
            ledger_url,
            instances,
        } => bench(
            &concurrency,
            requests,
            dir,
            audit,
            hsm_config.as_deref(),
            ledger_url.map(zeroize::Zeroizing::new),
            instances,
        ),
        Command::Hsm {
            command:
                HsmCommand::Init {
                    config,
                    bits,
                    import_key_file,
                },
        } => hsm_init(&config, &bits, import_key_file.as_deref()),
        Command::BenchLimits {
            connections,
            clients,
            seconds,
        } => bench_limits(connections, clients, seconds),
        Command::Chain { command } => chain(command),
        Command::ReceiptKey { config } => {
            let resolved = FileConfig::load(&config)?.resolve(&base_dir(&config))?;
            let signer = kf_klms::receipt::ReceiptSigner::from_backend(resolved.key.as_ref())?;
            print!("{}", signer.public_key_pem()?);
            Ok(())
        }
    }
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn serve(config_path: &Path, bind: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let file = FileConfig::load(config_path)?;
    let mut config = file.resolve(&base_dir(config_path))?;
    if let Some(bind) = bind {
        config.bind = bind;
    }
    if !config.bind.ip().is_loopback() {
        tracing::warn!(bind = %config.bind, "listening on a non-loopback address");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(kf_klms::serve(config, async {
        // Without a signal handler the server keeps serving (stopped by
        // SIGTERM/SIGKILL) rather than shutting down at once.
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; serving until killed");
            std::future::pending::<()>().await;
        }
    }))?;
    Ok(())
}

fn hsm_init(config_path: &Path, bits: &str, import: Option<&Path>) -> anyhow::Result<()> {
    let file = FileConfig::load(config_path)?;
    let base = base_dir(config_path);
    let hsm = file
        .hsm
        .as_ref()
        .with_context(|| format!("{} has no [hsm] section", config_path.display()))?;
    let imported = import
        .map(kf_klms::config::read_master_key_file)
        .transpose()?;
    let report = kf_klms::keystore::pkcs11::init_key(
        &base.join(&hsm.module),
        &hsm.token()?,
        &hsm.key_label,
        &hsm.pin(&base)?,
        bits.parse()?,
        imported.as_ref(),
    )?;
    println!(
        "{} AES-{} master key {:?} in slot {}, KCV {}",
        if imported.is_some() {
            "imported"
        } else {
            "generated"
        },
        report.bits,
        hsm.key_label,
        report.slot,
        hex::encode_upper(report.kcv)
    );
    Ok(())
}

fn pki_init(dir: &Path, stations: &[String]) -> anyhow::Result<()> {
    if dir.join("ca.pem").exists() {
        bail!(
            "{} already contains a PKI (ca.pem); refusing to overwrite",
            dir.display()
        );
    }
    for station in stations {
        kf_klms::wire::check_identifier(station)
            .with_context(|| format!("--station {:?}", station.escape_debug().to_string()))?;
    }
    let names: Vec<&str> = stations.iter().map(String::as_str).collect();
    let pki = DevPki::generate("KF Dev Station CA", &names)?;
    pki.write_to(dir)?;
    let mut master = zeroize::Zeroizing::new([0u8; 16]);
    rand::rngs::OsRng
        .try_fill_bytes(master.as_mut())
        .context("no randomness for the master key")?;
    let master_hex = zeroize::Zeroizing::new(hex::encode_upper(master.as_ref()));
    kf_klms::pki::write_atomic(&dir.join("master-key.hex"), master_hex.as_bytes(), true)?;
    let config = FileConfig::dev_default(stations);
    kf_klms::pki::write_atomic(
        &dir.join("klms.toml"),
        toml::to_string_pretty(&config)?.as_bytes(),
        false,
    )?;
    println!("development PKI written to {}", dir.display());
    println!(
        "  server:   kf-klms serve --config {}",
        dir.join("klms.toml").display()
    );
    for s in stations {
        println!("  station:  {s}.pem / {s}.key (trust ca.pem)");
    }
    Ok(())
}

fn reissue(uid: &str, action: &OperatorAction, ledger: &LedgerArgs) -> anyhow::Result<()> {
    let (location, uid_len) = match (ledger.config.as_deref(), ledger.ledger.as_deref()) {
        (Some(c), _) => {
            let file = FileConfig::load(c)?;
            (file.ledger_location(&base_dir(c))?, file.uid_len)
        }
        (None, Some(l)) => (
            LedgerLocation::Sqlite(l.to_path_buf()),
            kf_klms::DEFAULT_UID_LEN,
        ),
        (None, None) => bail!("give --config FILE or --ledger FILE"),
    };
    let uid_bytes = hex::decode(uid).context("UID is not valid hex")?;
    if uid_bytes.len() != uid_len {
        bail!("UID has {} bytes, expected {uid_len}", uid_bytes.len());
    }
    let fob_uid = hex::encode_upper(&uid_bytes);
    let mut ledger = location.open()?;
    let id = ledger.record_reissue(&fob_uid, &action.at(now_ms()))?;
    println!(
        "{}",
        serde_json::json!({"reissue_id": id, "fob_uid": fob_uid, "ledger": location.to_string()})
    );
    Ok(())
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The ledger `args` name; an SQLite one must exist already.
fn existing_ledger(args: &LedgerArgs) -> anyhow::Result<LedgerLocation> {
    let location = match (args.config.as_deref(), args.ledger.as_deref()) {
        (Some(c), _) => FileConfig::load(c)?.ledger_location(&base_dir(c))?,
        (None, Some(l)) => LedgerLocation::Sqlite(l.to_path_buf()),
        (None, None) => bail!("give --config FILE or --ledger FILE"),
    };
    if let LedgerLocation::Sqlite(path) = &location {
        if !path.is_file() {
            bail!("no ledger at {}", path.display());
        }
    }
    Ok(location)
}

fn chain(command: ChainCommand) -> anyhow::Result<()> {
    match command {
        ChainCommand::State { ledger, json } => {
            let location = existing_ledger(&ledger)?;
            let states = location.open()?.chain_states()?;
            if !json {
                println!(
                    "{:<24} {:>8}  {:<64}  {:<24} alerts",
                    "station", "seq", "link", "anchored"
                );
            }
            for s in states {
                if json {
                    println!("{}", serde_json::to_string(&s)?);
                } else {
                    let at = time::OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(s.updated_at_ms) * 1_000_000,
                    )
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                    println!(
                        "{:<24} {:>8}  {:<64}  {:<24} {}",
                        s.station, s.seq, s.link, at, s.alerts
                    );
                }
            }
            Ok(())
        }
        ChainCommand::Reset {
            station,
            action,
            ledger,
        } => {
            let location = existing_ledger(&ledger)?;
            let dropped = location
                .open()?
                .reset_chain(&station, &action.at(now_ms()))?;
            println!(
                "{}",
                serde_json::json!({"station": station, "dropped_head_seq": dropped, "ledger": location.to_string()})
            );
            Ok(())
        }
    }
}

fn bench(
    levels: &[usize],
    requests: usize,
    dir: Option<PathBuf>,
    audit: bool,
    hsm_config: Option<&Path>,
    ledger_url: Option<zeroize::Zeroizing<String>>,
    instances: usize,
) -> anyhow::Result<()> {
    if instances == 0 || (instances > 1 && ledger_url.is_none()) {
        bail!("--instances N needs N >= 1, and --ledger-url for N > 1 (one SQLite file has one owner)");
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kf-klms-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    // Each anchored-ingest level gets its own stations (a chain starts at record 1).
    let names: Vec<String> = (0..levels.iter().map(|c| (*c).max(1)).sum::<usize>().max(1))
        .map(|i| format!("bench-station-{i}"))
        .collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = DevPki::generate("KF Bench CA", &name_refs)?;
    let (_, station) = pki.stations.first().context("no station certificate")?;
    let identity = format!("{}{}", station.cert_pem, station.key_pem);
    let master = kf_crypto::AesKey::from_slice(&[0x42; 16])?;
    let key: Option<std::sync::Arc<dyn kf_klms::keystore::KeyBackend>> = match hsm_config {
        Some(path) => {
            let file = FileConfig::load(path)?;
            let hsm = file
                .hsm
                .with_context(|| format!("{} has no [hsm] section", path.display()))?;
            Some(std::sync::Arc::new(hsm.open(&base_dir(path))?))
        }
        None => None,
    };
    let mut servers = Vec::with_capacity(instances);
    for _ in 0..instances {
        let mut config =
            kf_klms::KlmsConfig::dev(&pki, dir.join("bench-ledger.db"), master.duplicate())?;
        config.ttl = std::time::Duration::from_secs(60);
        config.ledger_url = ledger_url.clone();
        if let Some(key) = &key {
            config.key = key.clone();
        }
        if servers.is_empty() {
            println!("key backend: {}", config.key.describe());
        }
        servers.push(kf_klms::spawn_server(config)?);
    }
    let mut urls: Vec<String> = servers.iter().map(|s| s.base_url()).collect();
    let base = urls.remove(0);
    println!(
        "ledger: {}, {instances} instance(s)",
        if ledger_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let client = kf_klms::bench::BenchClient {
        base_url: &base,
        ca_pem: &pki.ca.cert_pem,
        identity_pem: &identity,
    };
    let identities: Vec<(String, String)> = pki
        .stations
        .iter()
        .map(|(name, s)| (name.clone(), format!("{}{}", s.cert_pem, s.key_pem)))
        .collect();
    if audit {
        println!("anchored audit ingest (POST /v1/audit/chain), one station per concurrent client");
    }
    println!("concurrency requests errors   req/s   p50_ms   p99_ms");
    let mut next_station = 0;
    let mut failed = 0;
    for &c in levels {
        let stations = next_station..(next_station + c.max(1)).min(identities.len());
        next_station = stations.end;
        let r = if audit {
            kf_klms::bench::run_anchor_bench(
                &base,
                &pki.ca.cert_pem,
                &identities[stations],
                requests,
                kf_klms::DEFAULT_UID_LEN,
            )
        } else {
            kf_klms::bench::run_issuance_bench(
                &client,
                &urls,
                c,
                requests,
                kf_klms::DEFAULT_UID_LEN,
            )
        }
        .map_err(anyhow::Error::msg)?;
        println!(
            "{:>11} {:>8} {:>6} {:>7.1} {:>8.2} {:>8.2}",
            r.concurrency, r.requests, r.errors, r.requests_per_sec, r.p50_ms, r.p99_ms
        );
        failed += r.errors;
    }
    for server in servers {
        server.shutdown();
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::debug!(error = %e, "bench directory not removed");
    }
    if failed > 0 {
        anyhow::bail!("{failed} requests failed; the figures above do not count them");
    }
    Ok(())
}

/// Kills the child server on every exit path.
struct ChildServer(std::process::Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill() {
            tracing::debug!(error = %e, "server already stopped");
        }
        if let Err(e) = self.0.wait() {
            tracing::debug!(error = %e, "server not reaped");
        }
    }
}

fn bench_limits(connections: usize, clients: usize, seconds: u64) -> anyhow::Result<()> {
    use kf_klms::bench::{issue_loop, rss_kib, Attack, BenchReport, Budget};
    use std::time::{Duration, Instant};
    let dir = std::env::temp_dir().join(format!("kf-klms-bench-limits-{}", std::process::id()));
    let pki_dir = dir.join("pki");
    pki_init(&pki_dir, &["bench-station".to_owned()])?;
    let ca = std::fs::read_to_string(pki_dir.join("ca.pem"))?;
    let identity = format!(
        "{}{}",
        std::fs::read_to_string(pki_dir.join("bench-station.pem"))?,
        std::fs::read_to_string(pki_dir.join("bench-station.key"))?
    );
    // A free loopback port for the child.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(pki_dir.join("klms.toml"))
        .args(["--bind", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    let _server = ChildServer(child);
    let base = format!("https://{addr}");
    let bases = [base.as_str()];
    let client = kf_klms::bench::BenchClient {
        base_url: &base,
        ca_pem: &ca,
        identity_pem: &identity,
    };
    let http = kf_klms::bench::bench_http_client(&client, clients).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The attacker gets its own thread, so its tasks do not queue in front of
    // the stations' requests inside this process.
    let attack_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let uid_len = kf_klms::DEFAULT_UID_LEN;
    let rss = || rss_kib(pid).map_or("n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    let row = |label: &str, r: &BenchReport, rss: String| {
        println!(
            "{label:<22} {:>8} {:>6} {:>8.1} {:>8.2} {:>8.2} {:>9}",
            r.requests, r.errors, r.requests_per_sec, r.p50_ms, r.p99_ms, rss
        );
    };
    runtime.block_on(async {
        // Up, and one keep-alive connection per station established.
        let start = Instant::now();
        loop {
            match http.get(format!("{base}/healthz")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if start.elapsed() > Duration::from_secs(10) => {
                    anyhow::bail!("the server did not come up on {addr}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let phase = Budget::Duration(Duration::from_secs(seconds));
        println!("phase                  requests errors    req/s   p50_ms   p99_ms   rss_MiB");
        // The ledger and the allocator settle during a first quiet phase.
        let warm = issue_loop(&http, &bases, clients, phase, uid_len)
            .await
            .map_err(anyhow::Error::msg)?;
        row("warm-up", &warm, rss());
        let quiet = issue_loop(&http, &bases, clients, phase, uid_len)
            .await
            .map_err(anyhow::Error::msg)?;
        row("quiet", &quiet, rss());
        let mut worst = f64::INFINITY;
        for round in 1..=2 {
            let attack = {
                let _in_attack_runtime = attack_runtime.enter();
                Attack::start(addr, connections)
            };
            // Let the attacker connections pile up before measuring.
            let ramp = Instant::now();
            while attack.open.load(std::sync::atomic::Ordering::Relaxed) < connections.min(1024)
                && ramp.elapsed() < Duration::from_secs(10)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut peak_rss = 0u64;
            let measure = issue_loop(&http, &bases, clients, phase, uid_len);
            tokio::pin!(measure);
            let under = loop {
                tokio::select! {
                    r = &mut measure => break r,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        peak_rss = peak_rss.max(rss_kib(pid).unwrap_or(0));
                    }
                }
            }
            .map_err(anyhow::Error::msg)?;
            row(
                &format!("attack #{round} ({connections})"),
                &under,
                format!("{:.1} peak", peak_rss as f64 / 1024.0),
            );
            println!(
                "  attacker: {} connections open at the end, {} closed by the server, {} connect errors",
                attack.open.load(std::sync::atomic::Ordering::Relaxed),
                attack.closed_by_server.load(std::sync::atomic::Ordering::Relaxed),
                attack.connect_errors.load(std::sync::atomic::Ordering::Relaxed)
            );
            worst = worst.min(under.requests_per_sec);
            attack.stop().await;
            let after = issue_loop(&http, &bases, clients, phase, uid_len)
                .await
                .map_err(anyhow::Error::msg)?;
            row(&format!("after #{round}"), &after, rss());
        }
        println!(
            "  issuance under attack: {:.0} % of the quiet rate (worst round)",
            100.0 * worst / quiet.requests_per_sec.max(1e-9)
        );
        Ok(())
    })?;
    drop(_server);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::debug!(error = %e, "bench directory not removed");
    }
    Ok(())
}
