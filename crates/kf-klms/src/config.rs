//! TOML configuration file of `kf-klms serve --config FILE`.
//!
//! Relative paths are resolved against the file's directory. The master key
//! comes from `master_key_file` (hex) or, when set, the environment variable
//! `KF_KLMS_MASTER_KEY` (hex), which wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kf_crypto::AesKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::container_pool::ContainerPoolContent;
use crate::content::{ContentProvider, SynthesizedContent};
use crate::server::{KlmsConfig, ServerError, DEFAULT_BODY_LIMIT, DEFAULT_TTL, DEFAULT_UID_LEN};
use crate::tls::TlsMaterial;

/// Environment variable that overrides `master_key_file`.
pub const MASTER_KEY_ENV: &str = "KF_KLMS_MASTER_KEY";

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
    /// Key version number.
    #[serde(default = "default_kvn")]
    pub key_version: u8,
    /// UID length in bytes.
    #[serde(default = "default_uid_len")]
    pub uid_len: usize,
    /// Key-package lifetime in milliseconds.
    #[serde(default = "default_ttl_ms")]
    pub ttl_ms: u64,
    /// Ledger database path.
    pub ledger: PathBuf,
    /// Request body limit in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
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
    /// Hand out seed 001 container packages from a pool directory, each once.
    ContainerPool {
        /// Pool directory.
        dir: PathBuf,
    },
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
fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}

fn read(base: &Path, path: &Path) -> Result<String, ServerError> {
    let full = base.join(path);
    std::fs::read_to_string(&full)
        .map_err(|e| ServerError::Config(format!("{}: {e}", full.display())))
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
            key_version: default_kvn(),
            uid_len: DEFAULT_UID_LEN,
            ttl_ms: default_ttl_ms(),
            ledger: "klms-ledger.db".into(),
            body_limit: DEFAULT_BODY_LIMIT,
            content: ContentConfig::Synthesized {
                ica_cert: "fob-ica.pem".into(),
                ica_key: "fob-ica.key".into(),
                root_cert: "fob-root.pem".into(),
            },
        }
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
    }

    /// Ledger path resolved against `base`.
    pub fn ledger_path(&self, base: &Path) -> PathBuf {
        base.join(&self.ledger)
    }

    /// Loads every referenced file and builds the server configuration.
    pub fn resolve(&self, base: &Path) -> Result<KlmsConfig, ServerError> {
        let master_hex = match std::env::var(MASTER_KEY_ENV) {
            Ok(v) => Zeroizing::new(v),
            Err(_) => match &self.master_key_file {
                Some(p) => Zeroizing::new(read(base, p)?),
                None => {
                    return Err(ServerError::Config(format!(
                        "no master key: set master_key_file or {MASTER_KEY_ENV}"
                    )))
                }
            },
        };
        let master_key = AesKey::from_hex(master_hex.trim())
            .map_err(|e| ServerError::Config(format!("master key: {e}")))?;
        let content: Arc<dyn ContentProvider> = match &self.content {
            ContentConfig::Synthesized {
                ica_cert,
                ica_key,
                root_cert,
            } => {
                let key = Zeroizing::new(read(base, ica_key)?);
                Arc::new(SynthesizedContent::new(
                    &read(base, ica_cert)?,
                    &key,
                    &read(base, root_cert)?,
                )?)
            }
            ContentConfig::ContainerPool { dir } => {
                Arc::new(ContainerPoolContent::open(base.join(dir))?)
            }
        };
        Ok(KlmsConfig {
            bind: self.bind,
            tls: TlsMaterial {
                client_ca_pem: read(base, &self.ca_cert)?,
                server_cert_pem: read(base, &self.server_cert)?,
                server_key_pem: read(base, &self.server_key)?,
            },
            allowed_stations: self.allowed_stations.clone(),
            master_key,
            key_version: self.key_version,
            uid_len: self.uid_len,
            ttl: Duration::from_millis(self.ttl_ms),
            ledger_path: self.ledger_path(base),
            content,
            body_limit: self.body_limit,
        })
    }
}
