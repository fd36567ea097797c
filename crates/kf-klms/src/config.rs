//! TOML configuration file of `kf-klms serve --config FILE`.
//!
//! Relative paths are resolved against the file's directory. The master key
//! comes from `master_key_file` (hex) or, when set, the environment variable
//! `KF_KLMS_MASTER_KEY` (hex), which wins; with an `[hsm]` section it stays in
//! a PKCS#11 token instead (see [`crate::keystore::HsmConfig`]).
//!
//! Every file is read as a regular file (a FIFO, device or directory is
//! refused before it is opened) with a size cap fitting its content:
//! [`CONFIG_MAX_BYTES`] for this file, [`PEM_MAX_BYTES`] for certificates
//! and keys, [`MASTER_KEY_MAX_BYTES`] for the master key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kf_crypto::AesKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::container_pool::ContainerPoolContent;
use crate::content::{ContentProvider, SynthesizedContent};
use crate::keystore::{FileKey, KeyBackend};
use crate::ledger::postgres::PgTarget;
use crate::ledger::{LedgerLocation, LedgerUrl, LEDGER_URL_ENV};
use crate::limits::Limits;
use crate::server::{KlmsConfig, ServerError, DEFAULT_TTL, DEFAULT_UID_LEN};
use crate::tls::TlsMaterial;

/// Environment variable that overrides `master_key_file`.
pub const MASTER_KEY_ENV: &str = "KF_KLMS_MASTER_KEY";
/// Largest configuration file.
pub const CONFIG_MAX_BYTES: u64 = kf_files::CONFIG_MAX_BYTES;
/// Largest PEM file (certificate chain or key).
pub const PEM_MAX_BYTES: u64 = kf_files::PEM_MAX_BYTES;
/// Largest master key file (hex of an AES key and white space).
pub const MASTER_KEY_MAX_BYTES: u64 = 1024;

/// On-disk configuration.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// CA certificate (PEM) of station client certificates.
    pub ca_cert: PathBuf,
    /// Server certificate chain (PEM).
    pub server_cert: PathBuf,
    /// Server key (PEM).
    pub server_key: PathBuf,
    /// Allowed client certificate CNs.
    pub allowed_stations: Vec<String>,
    /// File holding the master key in hex.
    pub master_key_file: Option<PathBuf>,
    /// Master key in a PKCS#11 token instead of `master_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm: Option<crate::keystore::HsmConfig>,
    /// Key version number.
    #[serde(default = "default_kvn")]
    pub key_version: u8,
    /// UID length in bytes.
    #[serde(default = "default_uid_len")]
    pub uid_len: usize,
    /// Key-package lifetime in milliseconds.
    #[serde(default = "default_ttl_ms")]
    pub ttl_ms: u64,
    /// SQLite ledger database path (the embedded default).
    #[serde(default = "default_ledger")]
    pub ledger: PathBuf,
    /// PostgreSQL ledger URL, e.g. `postgresql://klms@db.example/klms`; set
    /// it (or the environment variable `KF_KLMS_LEDGER_URL`, which wins) to
    /// run several instances on one database. `ledger` is then unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_url: Option<LedgerUrl>,
    /// CA certificate(s), PEM, of the PostgreSQL server: when set, the ledger
    /// connection uses TLS (required, not merely preferred) and the server's
    /// certificate must chain to this CA and name the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_ca_file: Option<PathBuf>,
    /// Timeouts, connection cap and body limits (`[limits]`).
    #[serde(default)]
    pub limits: Limits,
    /// Per-fob content.
    pub content: ContentConfig,
}

/// Content section.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContentConfig {
    /// Synthesize content from a fob ICA.
    Synthesized {
        /// Fob ICA certificate (PEM).
        ica_cert: PathBuf,
        /// Fob ICA key (PEM).
        ica_key: PathBuf,
        /// Fob root certificate (PEM).
        root_cert: PathBuf,
    },
    /// Hand out container packages from a pool directory, each once.
    ContainerPool {
        /// Pool directory.
        dir: PathBuf,
    },
}

fn default_ledger() -> PathBuf {
    "klms-ledger.db".into()
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_kvn() -> u8 {
    1
}
fn default_uid_len() -> usize {
    DEFAULT_UID_LEN
}
fn default_ttl_ms() -> u64 {
    DEFAULT_TTL.as_millis() as u64
}

/// Reads `path` as a regular file of at most `cap` bytes of UTF-8 text
/// (the shared rule of [`kf_files::read_regular`]: a FIFO, device or
/// directory is refused without blocking).
pub fn read_regular_file(path: &Path, cap: u64) -> Result<String, ServerError> {
    kf_files::read_regular_text(path, cap, kf_files::Links::Follow)
        .map_err(|e| ServerError::Config(e.to_string()))
}

fn read(base: &Path, path: &Path, cap: u64) -> Result<String, ServerError> {
    read_regular_file(&base.join(path), cap)
}

/// A master key from a file of 32, 48 or 64 hex digits (surrounding white space ignored).
/// Errors name the file, never its content.
pub fn read_master_key_file(path: &Path) -> Result<AesKey, ServerError> {
    let hex = Zeroizing::new(read_regular_file(path, MASTER_KEY_MAX_BYTES)?);
    master_key_from_hex(&hex).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
}

fn master_key_from_hex(hex: &str) -> Result<AesKey, ServerError> {
    AesKey::from_hex(hex.trim()).map_err(|e| ServerError::Config(format!("master key: {e}")))
}

impl FileConfig {
    /// The development configuration written by `kf-klms pki init`.
    pub fn dev_default(stations: &[String]) -> FileConfig {
        FileConfig {
            bind: default_bind(),
            ca_cert: "ca.pem".into(),
            server_cert: "server.pem".into(),
            server_key: "server.key".into(),
            allowed_stations: stations.to_vec(),
            master_key_file: Some("master-key.hex".into()),
            hsm: None,
            key_version: default_kvn(),
            uid_len: DEFAULT_UID_LEN,
            ttl_ms: default_ttl_ms(),
            ledger: default_ledger(),
            ledger_url: None,
            ledger_ca_file: None,
            limits: Limits::default(),
            content: ContentConfig::Synthesized {
                ica_cert: "fob-ica.pem".into(),
                ica_key: "fob-ica.key".into(),
                root_cert: "fob-root.pem".into(),
            },
        }
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = read_regular_file(path, CONFIG_MAX_BYTES)?;
        let config: FileConfig = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        config
            .limits
            .validate()
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        for station in &config.allowed_stations {
            crate::wire::check_identifier(station).map_err(|e| {
                ServerError::Config(format!("{}: allowed_stations: {e}", path.display()))
            })?;
        }
        Ok(config)
    }

    /// Ledger path resolved against `base`.
    pub fn ledger_path(&self, base: &Path) -> PathBuf {
        base.join(&self.ledger)
    }

    /// The PostgreSQL ledger URL: `KF_KLMS_LEDGER_URL`, else `ledger_url`.
    pub fn ledger_url(&self) -> Option<Zeroizing<String>> {
        match std::env::var(LEDGER_URL_ENV) {
            Ok(url) if !url.is_empty() => Some(Zeroizing::new(url)),
            _ => self.ledger_url.as_ref().map(|u| u.0.clone()),
        }
    }

    /// The PEM of `ledger_ca_file`, if set.
    pub fn ledger_ca_pem(&self, base: &Path) -> Result<Option<String>, ServerError> {
        self.ledger_ca_file
            .as_ref()
            .map(|p| read(base, p, PEM_MAX_BYTES))
            .transpose()
    }

    /// The ledger this configuration names (PostgreSQL when a URL is set).
    pub fn ledger_location(&self, base: &Path) -> Result<LedgerLocation, ServerError> {
        Ok(match self.ledger_url() {
            Some(url) => {
                LedgerLocation::Postgres(PgTarget::new(url, self.ledger_ca_pem(base)?.as_deref())?)
            }
            None => LedgerLocation::Sqlite(self.ledger_path(base)),
        })
    }

    /// The master key of the file backend: `KF_KLMS_MASTER_KEY` or `master_key_file`.
    pub fn file_master_key(&self, base: &Path) -> Result<AesKey, ServerError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) => master_key_from_hex(&Zeroizing::new(v)),
            Err(_) => match &self.master_key_file {
                Some(p) => read_master_key_file(&base.join(p)),
                None => Err(ServerError::Config(format!(
                    "no master key: set master_key_file or {MASTER_KEY_ENV}"
                ))),
            },
        }
    }

    /// Loads every referenced file and builds the server configuration.
    pub fn resolve(&self, base: &Path) -> Result<KlmsConfig, ServerError> {
        let key: Arc<dyn KeyBackend> = match &self.hsm {
            Some(hsm) => Arc::new(
                hsm.open(base)
                    .map_err(|e| ServerError::Config(e.to_string()))?,
            ),
            None => Arc::new(FileKey::new(self.file_master_key(base)?)),
        };
        let content: Arc<dyn ContentProvider> = match &self.content {
            ContentConfig::Synthesized {
                ica_cert,
                ica_key,
                root_cert,
            } => {
                let key = Zeroizing::new(read(base, ica_key, PEM_MAX_BYTES)?);
                Arc::new(SynthesizedContent::new(
                    &read(base, ica_cert, PEM_MAX_BYTES)?,
                    &key,
                    &read(base, root_cert, PEM_MAX_BYTES)?,
                )?)
            }
            ContentConfig::ContainerPool { dir } => {
                Arc::new(ContainerPoolContent::open(base.join(dir))?)
            }
        };
        Ok(KlmsConfig {
            bind: self.bind,
            tls: TlsMaterial {
                client_ca_pem: read(base, &self.ca_cert, PEM_MAX_BYTES)?,
                server_cert_pem: read(base, &self.server_cert, PEM_MAX_BYTES)?,
                server_key_pem: read(base, &self.server_key, PEM_MAX_BYTES)?,
            },
            allowed_stations: self.allowed_stations.clone(),
            key,
            key_version: self.key_version,
            uid_len: self.uid_len,
            ttl: Duration::from_millis(self.ttl_ms),
            ledger_path: self.ledger_path(base),
            ledger_url: self.ledger_url(),
            ledger_ca_pem: self.ledger_ca_pem(base)?,
            content,
            limits: self.limits,
            clock: crate::clock::Clock::system(),
        })
    }
}
