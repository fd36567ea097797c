//! The station side of the durable audit journal (kf-audit): a "started"
//! record committed before the first STORE DATA, the outcome after.

use kf_audit::Journal;
use kf_perso::pipeline::{FobOutcome, PipelineHooks};
use kf_perso::AuditRecord;

/// Pipeline hooks that write the "started" record.
pub struct JournalHooks<'a> {
    journal: &'a mut Journal,
}

impl<'a> JournalHooks<'a> {
    /// Hooks writing to `journal`.
    pub fn new(journal: &'a mut Journal) -> Self {
        JournalHooks { journal }
    }
}

impl PipelineHooks for JournalHooks<'_> {
    fn before_first_store_data(&mut self, record: &AuditRecord) -> Result<(), String> {
        let body = serde_json::json!({
            "transaction_id": record.transaction_id,
            "fob_uid": record.fob_uid,
            "timestamp_iso8601": record.timestamp_iso8601,
            "eol_station_id": record.eol_station_id,
            "stage_reached": record.stage_reached,
        });
        self.journal
            .append_started(&record.transaction_id, &body)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Appends the outcome (the full audit record) to the journal.
pub fn append_outcome(journal: &mut Journal, outcome: &FobOutcome) -> anyhow::Result<()> {
    let body = serde_json::to_value(&outcome.record)?;
    journal.append_outcome(&outcome.record.transaction_id, &body)?;
    Ok(())
}
