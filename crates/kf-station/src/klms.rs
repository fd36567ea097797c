//! The station's KLMS side: client from PEM files, the provisioning source and
//! the audit uploader (store and forward from the journal).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kf_audit::{Uploader, UploaderConfig};
use kf_source::klms::{
    KlmsAuditSink, KlmsClient, KlmsClientConfig, KlmsProvisioningSource, KlmsSource,
};
use serde::Deserialize;

/// `[klms]` table of `station.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KlmsSettings {
    /// Base URL, `https://host:port` (`KF_KLMS_URL`).
    pub url: String,
    /// Pinned CA certificate of the KLMS (PEM).
    pub ca: PathBuf,
    /// Station client certificate (PEM).
    pub cert: PathBuf,
    /// Station client key (PEM).
    pub key: PathBuf,
    /// Reader identifier sent with each request (default: the station id).
    pub reader_id: Option<String>,
}

impl KlmsSettings {
    /// A client with the pinned CA and the station identity.
    pub fn client(&self) -> anyhow::Result<Arc<KlmsClient>> {
        if self.url.is_empty() {
            anyhow::bail!("the klms source needs [klms] url, ca, cert and key in the config");
        }
        let config = KlmsClientConfig::from_pem_files(&self.url, &self.ca, &self.cert, &self.key)?;
        Ok(Arc::new(KlmsClient::new(config)?))
    }
}

/// The provisioning source over a client.
pub fn source(client: &Arc<KlmsClient>, reader_id: &str) -> KlmsProvisioningSource {
    KlmsProvisioningSource::new(KlmsSource::new(client.clone(), reader_id))
}

/// Starts the uploader that sends the journal's outcome records to the KLMS.
pub fn uploader(
    journal: &Path,
    key: kf_audit::JournalKey,
    client: &Arc<KlmsClient>,
) -> anyhow::Result<Uploader> {
    let config = UploaderConfig {
        poll_interval: Duration::from_millis(500),
        ..UploaderConfig::default()
    };
    Uploader::spawn(journal, key, KlmsAuditSink::new(client.clone()), config)
        .context("cannot start the audit uploader")
}
