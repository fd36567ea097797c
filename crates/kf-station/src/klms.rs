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

/// Compares the journal with the head the KLMS anchored for this station:
/// the journal must hold the anchored record with the same link. A journal
/// that ends before it (restored from an older copy) or differs at it
/// (forked, rewritten) is refused. When the KLMS cannot be reached the check
/// is skipped with a warning: the KLMS refuses a rolled-back chain at upload.
pub fn check_anchor(
    journal: &kf_audit::Journal,
    journal_path: &Path,
    client: &Arc<KlmsClient>,
) -> anyhow::Result<()> {
    let anchored = match client.chain_head() {
        Ok(head) => head,
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "KLMS unreachable: the journal head is not compared with its anchor");
            return Ok(());
        }
        Err(e) => return Err(e).context("cannot read the journal anchor from the KLMS"),
    };
    if anchored.seq == 0 {
        return Ok(());
    }
    let local = journal.head()?;
    let how = format!(
        "restore the current journal, or after a deliberate reset have the KLMS operator run \
         `kf-klms chain reset {} --reason ...` and start with a new journal",
        anchored.station_id
    );
    let seq = i64::try_from(anchored.seq).context("anchored sequence number out of range")?;
    if local.seq < seq {
        anyhow::bail!(
            "journal {} was rolled back: the KLMS anchored record {} but the journal ends at record {}; {how}",
            journal_path.display(),
            anchored.seq,
            local.seq
        );
    }
    let record = journal.show(seq)?;
    if !record.link.eq_ignore_ascii_case(&anchored.link) {
        anyhow::bail!(
            "journal {} forked: record {} differs from the one the KLMS anchored; {how}",
            journal_path.display(),
            anchored.seq
        );
    }
    Ok(())
}
