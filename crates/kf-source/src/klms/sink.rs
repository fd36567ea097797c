//! Uploads journal outcome records to the KLMS (`kf_audit::AuditSink`).

use std::sync::Arc;

use kf_audit::{AuditSink, JournalRecord, UploadError};

use super::{KlmsClient, KlmsError};

/// [`AuditSink`] that posts each outcome record's body to `/v1/audit`.
///
/// Classification: unreachable, timeouts, 5xx and 403 (a station certificate
/// problem the operator can fix) are transient; other 4xx (malformed record,
/// unknown transaction, conflicting record) are permanent.
pub struct KlmsAuditSink {
    client: Arc<KlmsClient>,
}

impl KlmsAuditSink {
    /// Wraps a client.
    pub fn new(client: Arc<KlmsClient>) -> Self {
        KlmsAuditSink { client }
    }
}

impl AuditSink for KlmsAuditSink {
    fn upload(&mut self, record: &JournalRecord) -> Result<String, UploadError> {
        match self.client.post_audit(&record.body) {
            Ok(ack) => Ok(serde_json::json!({
                "transaction_id": ack.transaction_id,
                "status": ack.status,
            })
            .to_string()),
            Err(e) => {
                let transient = e.is_transient()
                    || matches!(e, KlmsError::Forbidden { .. })
                    || matches!(&e, KlmsError::Http { status, .. } if *status >= 500);
                if transient {
                    Err(UploadError::Transient(e.to_string()))
                } else {
                    Err(UploadError::Permanent(e.to_string()))
                }
            }
        }
    }
}
