//! Uploads journal records to the KLMS anchor (`kf_audit::AuditSink`).

use std::sync::Arc;

use kf_audit::receipt::ChainUpload;
use kf_audit::{AuditSink, JournalRecord, RecordKind, UploadError};

use super::{KlmsClient, KlmsError};

/// [`AuditSink`] that posts every journal record to `/v1/audit/chain`: its
/// sequence number and links (the KLMS anchors the chain) and, for an
/// outcome, the audit record. The signed receipt is returned for the journal.
///
/// Classification: unreachable, timeouts, 5xx and 403 (a station certificate
/// problem the operator can fix) are transient; other 4xx (malformed record,
/// unknown transaction, conflicting record, a gap or fork in the chain) are
/// permanent.
pub struct KlmsAuditSink {
    client: Arc<KlmsClient>,
}

impl KlmsAuditSink {
    /// Wraps a client.
    pub fn new(client: Arc<KlmsClient>) -> Self {
        KlmsAuditSink { client }
    }
}

fn classify(e: KlmsError) -> UploadError {
    let transient = e.is_transient()
        || matches!(e, KlmsError::Forbidden { .. })
        || matches!(&e, KlmsError::Http { status, .. } if *status >= 500);
    if transient {
        UploadError::Transient(e.to_string())
    } else {
        UploadError::Permanent(e.to_string())
    }
}

impl AuditSink for KlmsAuditSink {
    fn upload(&mut self, record: &JournalRecord) -> Result<String, UploadError> {
        let body = match record.kind {
            RecordKind::Started => None,
            RecordKind::Outcome => Some(
                record
                    .body_json()
                    .map_err(|e| UploadError::Permanent(e.to_string()))?,
            ),
        };
        let upload = ChainUpload {
            seq: u64::try_from(record.seq)
                .map_err(|_| UploadError::Permanent("negative sequence number".into()))?,
            prev_link: record.prev_link.clone(),
            link: record.link.clone(),
            kind: record.kind.as_str().to_owned(),
            record: body,
        };
        let ack = self.client.post_chain(&upload).map_err(classify)?;
        let link = hex::decode(&record.link)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| UploadError::Permanent("record link is not 32 bytes of hex".into()))?;
        if !ack.receipt.covers(upload.seq, &link) {
            return Err(UploadError::Transient(
                "the KLMS receipt names another record".into(),
            ));
        }
        Ok(ack.receipt.to_json())
    }
}
