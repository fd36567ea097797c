//! `kf-klms`: reference KLMS server and tools.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use kf_klms::config::FileConfig;
use kf_klms::pki::DevPki;

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
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// Who.
        #[arg(long, env = "USER", default_value = "operator")]
        operator: String,
        /// Server configuration (for the ledger path and UID length).
        #[arg(long, conflicts_with = "ledger")]
        config: Option<PathBuf>,
        /// Ledger database, if no configuration is given.
        #[arg(long)]
        ledger: Option<PathBuf>,
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
    },
}

#[derive(Subcommand)]
enum ChainCommand {
    /// One line per station: last anchored sequence number, link, time, alerts.
    State {
        /// Server configuration (for the ledger path).
        #[arg(long, conflicts_with = "ledger")]
        config: Option<PathBuf>,
        /// Ledger database, if no configuration is given.
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a deliberate journal reset of a station: its next upload
    /// starts at record 1 again (recorded as an alert with the reason).
    Reset {
        /// Station (client certificate CN).
        station: String,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// Who.
        #[arg(long, env = "USER", default_value = "operator")]
        operator: String,
        /// Server configuration (for the ledger path).
        #[arg(long, conflicts_with = "ledger")]
        config: Option<PathBuf>,
        /// Ledger database, if no configuration is given.
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
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
            reason,
            operator,
            config,
            ledger,
        } => reissue(
            &uid,
            &reason,
            &operator,
            config.as_deref(),
            ledger.as_deref(),
        ),
        Command::Bench {
            concurrency,
            requests,
            dir,
            audit,
        } => bench(&concurrency, requests, dir, audit),
        Command::Chain { command } => chain(command),
        Command::ReceiptKey { config } => {
            let resolved = FileConfig::load(&config)?.resolve(&base_dir(&config))?;
            let signer = kf_klms::anchor::ReceiptSigner::derive(&resolved.master_key)?;
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
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(())
}

fn pki_init(dir: &Path, stations: &[String]) -> anyhow::Result<()> {
    if dir.join("ca.pem").exists() {
        bail!(
            "{} already contains a PKI (ca.pem); refusing to overwrite",
            dir.display()
        );
    }
    let names: Vec<&str> = stations.iter().map(String::as_str).collect();
    let pki = DevPki::generate("KF Dev Station CA", &names)?;
    pki.write_to(dir)?;
    let mut master = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut master);
    let master_hex = zeroize::Zeroizing::new(hex::encode_upper(master));
    zeroize::Zeroize::zeroize(&mut master);
    let master_path = dir.join("master-key.hex");
    std::fs::write(&master_path, master_hex.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&master_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let config = FileConfig::dev_default(stations);
    std::fs::write(dir.join("klms.toml"), toml::to_string_pretty(&config)?)?;
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

fn reissue(
    uid: &str,
    reason: &str,
    operator: &str,
    config: Option<&Path>,
    ledger: Option<&Path>,
) -> anyhow::Result<()> {
    let (ledger_path, uid_len) = match (config, ledger) {
        (Some(c), _) => {
            let file = FileConfig::load(c)?;
            (file.ledger_path(&base_dir(c)), file.uid_len)
        }
        (None, Some(l)) => (l.to_path_buf(), kf_klms::DEFAULT_UID_LEN),
        (None, None) => bail!("give --config FILE or --ledger FILE"),
    };
    let uid_bytes = hex::decode(uid).context("UID is not valid hex")?;
    if uid_bytes.len() != uid_len {
        bail!("UID has {} bytes, expected {uid_len}", uid_bytes.len());
    }
    let mut ledger = kf_klms::ledger::Ledger::open(&ledger_path)?;
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let id = ledger.record_reissue(&hex::encode_upper(&uid_bytes), reason, operator, now_ms)?;
    println!(
        "{}",
        serde_json::json!({"reissue_id": id, "fob_uid": hex::encode_upper(&uid_bytes), "ledger": ledger_path})
    );
    Ok(())
}

fn existing_ledger(config: Option<&Path>, ledger: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match (config, ledger) {
        (Some(c), _) => FileConfig::load(c)?.ledger_path(&base_dir(c)),
        (None, Some(l)) => l.to_path_buf(),
        (None, None) => bail!("give --config FILE or --ledger FILE"),
    };
    if !path.is_file() {
        bail!("no ledger at {}", path.display());
    }
    Ok(path)
}

fn chain(command: ChainCommand) -> anyhow::Result<()> {
    match command {
        ChainCommand::State {
            config,
            ledger,
            json,
        } => {
            let path = existing_ledger(config.as_deref(), ledger.as_deref())?;
            let states = kf_klms::ledger::Ledger::open(&path)?.chain_states()?;
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
            reason,
            operator,
            config,
            ledger,
        } => {
            let path = existing_ledger(config.as_deref(), ledger.as_deref())?;
            let now_ms =
                (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            let dropped = kf_klms::ledger::Ledger::open(&path)?
                .reset_chain(&station, &reason, &operator, now_ms)?;
            println!(
                "{}",
                serde_json::json!({"station": station, "dropped_head_seq": dropped, "ledger": path})
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
) -> anyhow::Result<()> {
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
    let mut config = kf_klms::KlmsConfig::dev(&pki, dir.join("bench-ledger.db"), master)?;
    config.ttl = std::time::Duration::from_secs(60);
    let server = kf_klms::spawn_server(config)?;
    let base = server.base_url();
    let client = kf_klms::bench::BenchClient {
        base_url: &base,
        ca_pem: &pki.ca.cert_pem,
        identity_pem: &identity,
    };
    let identities: Vec<String> = pki
        .stations
        .iter()
        .map(|(_, s)| format!("{}{}", s.cert_pem, s.key_pem))
        .collect();
    if audit {
        println!("anchored audit ingest (POST /v1/audit/chain), one station per concurrent client");
    }
    println!("concurrency requests errors   req/s   p50_ms   p99_ms");
    let mut next_station = 0;
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
            kf_klms::bench::run_issuance_bench(&client, c, requests, kf_klms::DEFAULT_UID_LEN)
        }
        .map_err(anyhow::Error::msg)?;
        println!(
            "{:>11} {:>8} {:>6} {:>7.1} {:>8.2} {:>8.2}",
            r.concurrency, r.requests, r.errors, r.requests_per_sec, r.p50_ms, r.p99_ms
        );
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
