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
