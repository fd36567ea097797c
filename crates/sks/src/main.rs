//! `sks`: command-line front end of the software SKS.
//!
//! ```text
//! sks init --db FILE                      create the device key and certificate
//! sks serve --db FILE [--socket PATH]      Unix domain socket (default FILE.sock), owner only
//! sks serve --db FILE --listen 127.0.0.1:PORT --token-file TOKEN   loopback TCP + token
//! sks [--db FILE | --socket PATH | --connect ADDR --token-file TOKEN] device-info | keys | key show HANDLE
//! sks [...] sign HANDLE --data-hex HEX [--alg URI] [--pin PIN]
//! sks [...] change-pin HANDLE --old-pin PIN --new-pin PIN
//! sks [...] demo   (in-memory SKS when no store or server is given)
//! sks bench-limits [--connections N] [--clients N] [--seconds S]   `sks serve` under attack
//! ```
//!
//! A thin command layer over `sks-core`, `sks-sqlite` and `sks-issuer`; it uses no
//! key-fob crate.

mod bench_limits;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sks::net::{serve, Client, Listener, ServeOptions, Token};
use sks_core::api::{req, KeyUse, SksApi};
use sks_core::consts::ALG_ECDSA_SHA256;
use sks_core::secret::Secret;
use sks_core::{Config, MemoryStorage, Sks};
use sks_sqlite::{SqliteStorage, StorageKey};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "sks", about = "Software Secure Key Store (SKS API 1.00)")]
struct Cli {
    /// SQLite credential database.
    #[arg(long, global = true, env = "SKS_DB")]
    db: Option<PathBuf>,
    /// Storage key file sealing the database (default: the database path with `.key`
    /// appended; created 0600 with a new database).
    #[arg(long, global = true, env = "SKS_STORAGE_KEY_FILE")]
    storage_key: Option<PathBuf>,
    /// Unix domain socket of a running `sks serve` (for `serve`: where to listen; default
    /// the database path with `.sock` appended).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Loopback TCP address of a running `sks serve --listen` (needs --token-file).
    #[arg(long, global = true, conflicts_with_all = ["db", "socket"], requires = "token_file")]
    connect: Option<String>,
    /// Token file (mode 0600) authenticating TCP clients; `serve --listen` creates it with a
    /// random token if it does not exist.
    #[arg(long, global = true, env = "SKS_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the device key and certificate in --db.
    Init,
    /// Serve the SKS over length-prefixed frames: on a Unix domain socket (mode 0600, only
    /// the server's own user may connect) by default, or on loopback TCP with --listen, where
    /// every client must present the token of --token-file.
    Serve {
        /// Serve on loopback TCP (127.0.0.1:PORT) instead of a Unix socket; requires --token-file.
        #[arg(long)]
        listen: Option<String>,
        /// Most connections served at once; the excess is refused.
        #[arg(long, default_value_t = 32)]
        max_connections: usize,
        /// Seconds a connection may stay idle between requests.
        #[arg(long, default_value_t = 60)]
        idle_timeout: u64,
        /// Seconds a started request (or the token) may take to arrive.
        #[arg(long, default_value_t = 10)]
        frame_timeout: u64,
        /// Most provisioning sessions open at once.
        #[arg(long, default_value_t = 64)]
        max_open_sessions: usize,
        /// Seconds after which an unfinished provisioning session is aborted (at most its
        /// SessionLifeTime).
        #[arg(long, default_value_t = 900)]
        session_timeout: u64,
    },
    /// getDeviceInfo.
    DeviceInfo,
    /// enumerateKeys.
    Keys,
    /// Key commands.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// signHashedData.
    Sign {
        /// Key handle.
        handle: u32,
        /// Hashed data in hex.
        #[arg(long)]
        data_hex: String,
        /// Signature algorithm URI.
        #[arg(long, default_value = ALG_ECDSA_SHA256)]
        alg: String,
        /// PIN (prefer the SKS_PIN environment variable).
        #[arg(long, env = "SKS_PIN", hide_env_values = true, default_value = "")]
        pin: String,
    },
    /// changePIN.
    ChangePin {
        /// Key handle.
        handle: u32,
        /// Current PIN.
        #[arg(long, env = "SKS_PIN", hide_env_values = true)]
        old_pin: String,
        /// New PIN.
        #[arg(long, env = "SKS_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Run Appendix B end to end.
    Demo,
    /// Measure `sks serve` (TCP, default limits, throwaway store) while an attacker holds
    /// many idle and slow connections: call rate, p99 and server memory before, during and
    /// after.
    BenchLimits {
        /// Attacker connections held open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Authenticated clients calling getDeviceInfo throughout.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// getKeyAttributes + getKeyProtectionInfo.
    Show {
        /// Key handle.
        handle: u32,
    },
}

fn storage(cli: &Cli, path: &Path) -> Result<SqliteStorage> {
    let key_file = cli
        .storage_key
        .clone()
        .unwrap_or_else(|| StorageKey::default_path(path));
    let key = StorageKey::load_or_create(&key_file)?;
    Ok(SqliteStorage::open_with_key(path, key)?)
}

fn open_db(cli: &Cli, config: Config) -> Result<Sks<SqliteStorage>> {
    let path = cli
        .db
        .as_ref()
        .context("--db FILE (or --socket PATH, or --connect ADDR) is required")?;
    if !path.exists() {
        bail!(
            "{} does not exist; run `sks init --db {}` first",
            path.display(),
            path.display()
        );
    }
    Ok(Sks::open(storage(cli, path)?, config)?)
}

fn token(cli: &Cli) -> Result<&Path> {
    cli.token_file
        .as_deref()
        .context("TCP needs --token-file FILE (a 0600 file holding the shared token)")
}

#[cfg(unix)]
fn connect_unix(path: &Path) -> Result<Box<dyn SksApi>> {
    Ok(Box::new(Client::connect_unix(path)?))
}

#[cfg(not(unix))]
fn connect_unix(_: &Path) -> Result<Box<dyn SksApi>> {
    bail!("Unix domain sockets are not available here; use --connect ADDR --token-file FILE")
}

#[cfg(unix)]
fn unix_listener(cli: &Cli) -> Result<Listener> {
    let path = match (&cli.socket, &cli.db) {
        (Some(p), _) => p.clone(),
        (None, Some(db)) => {
            let mut p = db.clone().into_os_string();
            p.push(".sock");
            PathBuf::from(p)
        }
        (None, None) => bail!("--socket PATH or --db FILE is required"),
    };
    Ok(Listener::unix(&path)?)
}

#[cfg(not(unix))]
fn unix_listener(_: &Cli) -> Result<Listener> {
    bail!("Unix domain sockets are not available here; use --listen ADDR --token-file FILE")
}

fn client(cli: &Cli) -> Result<Box<dyn SksApi>> {
    if let Some(addr) = &cli.connect {
        let token = Token::load(token(cli)?)?;
        return Ok(Box::new(Client::connect_tcp(addr, &token)?));
    }
    if let Some(path) = &cli.socket {
        return connect_unix(path);
    }
    Ok(Box::new(open_db(cli, Config::default())?))
}

/// Adapts a `dyn SksApi` to the typed `SksApi` functions (which need `Sized`).
struct Dyn<'a>(&'a mut dyn SksApi);
impl SksApi for Dyn<'_> {
    fn call(&mut self, r: sks_core::Request) -> Result<sks_core::Response, sks_core::SksError> {
        self.0.call(r)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Init => {
            let path = cli.db.as_ref().context("--db FILE is required")?;
            let mut sks = Sks::initialize(storage(&cli, path)?, Config::default())?;
            let info = sks.get_device_info(req::GetDeviceInfo {})?;
            println!("initialized {}", path.display());
            print_cert("device certificate", &info.certificate_path.0[..]);
        }
        Command::Serve {
            listen,
            max_connections,
            idle_timeout,
            frame_timeout,
            max_open_sessions,
            session_timeout,
        } => {
            let config = Config {
                max_open_sessions: *max_open_sessions,
                session_timeout: Duration::from_secs(*session_timeout),
                ..Config::default()
            };
            let sks = open_db(&cli, config)?;
            let listener = match listen {
                Some(addr) => Listener::tcp(addr, Token::load_or_create(token(&cli)?)?)?,
                None => unix_listener(&cli)?,
            };
            let options = ServeOptions {
                max_connections: *max_connections,
                idle_timeout: Duration::from_secs(*idle_timeout),
                frame_timeout: Duration::from_secs(*frame_timeout),
                ..ServeOptions::default()
            };
            println!("sks serving on {}", listener.describe()?);
            serve(listener, sks, options)?;
        }
        Command::DeviceInfo => {
            let mut c = client(&cli)?;
            let i = Dyn(c.as_mut()).get_device_info(req::GetDeviceInfo {})?;
            println!("APILevel:          {}", i.api_level);
            println!("DeviceType:        0x{:02X}", i.device_type);
            println!("VendorName:        {}", i.vendor_name);
            println!("VendorDescription: {}", i.vendor_description);
            println!("UpdateURL:         {:?}", i.update_url);
            println!("CryptoDataSize:    {}", i.crypto_data_size);
            println!("ExtensionDataSize: {}", i.extension_data_size);
            println!("DevicePINSupport:  {}", i.device_pin_support);
            println!("BiometricSupport:  {}", i.biometric_support);
            print_cert("certificate", &i.certificate_path.0);
            println!("SupportedAlgorithms ({}):", i.supported_algorithms.0.len());
            for a in &i.supported_algorithms.0 {
                println!("  {a}");
            }
        }
        Command::Keys => {
            let mut c = client(&cli)?;
            let mut api = Dyn(c.as_mut());
            let mut h = 0;
            loop {
                let k = api.enumerate_keys(req::EnumerateKeys { key_handle: h })?;
                if k.key_handle == 0 {
                    break;
                }
                let a = api.get_key_attributes(req::GetKeyAttributes {
                    key_handle: k.key_handle,
                })?;
                let subject = a
                    .certificate_path
                    .0
                    .first()
                    .and_then(|c| sks_core::x509::certificate_subject(c).ok())
                    .unwrap_or_default();
                let kind = if a.symmetric_key_length > 0 {
                    "symmetric"
                } else {
                    "asymmetric"
                };
                println!(
                    "{:>6}  session {:>4}  {kind:<10}  {subject}  {:?}",
                    k.key_handle, k.provisioning_handle, a.friendly_name
                );
                h = k.key_handle;
            }
        }
        Command::Key {
            cmd: KeyCmd::Show { handle },
        } => {
            let mut c = client(&cli)?;
            let mut api = Dyn(c.as_mut());
            let a = api.get_key_attributes(req::GetKeyAttributes {
                key_handle: *handle,
            })?;
            let p = api.get_key_protection_info(req::GetKeyProtectionInfo {
                key_handle: *handle,
            })?;
            println!("KeyHandle:          {handle}");
            println!("FriendlyName:       {:?}", a.friendly_name);
            println!("AppUsage:           {}", a.app_usage);
            println!("SymmetricKeyLength: {}", a.symmetric_key_length);
            print_cert("certificate", &a.certificate_path.0);
            println!("EndorsedAlgorithms: {:?}", a.endorsed_algorithms.0);
            println!("Extensions:         {:?}", a.extension_types.0);
            println!("ProtectionStatus:   0x{:02X}", p.protection_status);
            println!(
                "PIN: format {} retry {} errors {} grouping {} patterns 0x{:02X} length {}..{}",
                p.pin_policy.format,
                p.pin_policy.retry_limit,
                p.pin_error_count,
                p.pin_policy.grouping,
                p.pin_policy.pattern_restrictions,
                p.pin_policy.min_length,
                p.pin_policy.max_length
            );
            println!(
                "PUK: format {} retry {} errors {}",
                p.puk_format, p.puk_retry_limit, p.puk_error_count
            );
            println!(
                "Export/Delete protection: {}/{}  KeyBackup 0x{:02X}",
                p.export_protection, p.delete_protection, p.key_backup
            );
        }
        Command::Sign {
            handle,
            data_hex,
            alg,
            pin,
        } => {
            let mut c = client(&cli)?;
            let data = hex::decode(data_hex.trim()).context("--data-hex is not hex")?;
            let out = Dyn(c.as_mut()).sign_hashed_data(req::SignHashedData {
                key: KeyUse {
                    key_handle: *handle,
                    algorithm: alg.clone(),
                    parameters: vec![],
                    authorization: Secret::from(pin.as_str()),
                },
                data,
            })?;
            println!("{}", hex::encode(out.result));
        }
        Command::ChangePin {
            handle,
            old_pin,
            new_pin,
        } => {
            let mut c = client(&cli)?;
            Dyn(c.as_mut()).change_pin(req::ChangePin {
                key_handle: *handle,
                authorization: Secret::from(old_pin.as_str()),
                new_pin: Secret::from(new_pin.as_str()),
            })?;
            println!("PIN changed");
        }
        Command::BenchLimits {
            connections,
            clients,
            seconds,
        } => bench_limits::run(*connections, *clients, *seconds)?,
        Command::Demo => {
            let mut c: Box<dyn SksApi> =
                if cli.db.is_some() || cli.connect.is_some() || cli.socket.is_some() {
                    client(&cli)?
                } else {
                    Box::new(Sks::initialize(MemoryStorage::new(), Config::default())?)
                };
            let rep = sks_issuer::demo::run(&mut Dyn(c.as_mut()))?;
            for s in &rep.steps {
                println!("- {s}");
            }
            println!(
                "Appendix B session (P-256, create..close): {:.1} ms",
                rep.session_time.as_secs_f64() * 1e3
            );
            println!(
                "signHashedData (ECDSA P-256, PIN):         {:.3} ms",
                rep.sign_time.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

fn print_cert(label: &str, path: &[Vec<u8>]) {
    for (i, c) in path.iter().enumerate() {
        let subject =
            sks_core::x509::certificate_subject(c).unwrap_or_else(|_| "<unparsable>".into());
        println!("{label}[{i}]: {subject} ({} bytes)", c.len());
    }
}
