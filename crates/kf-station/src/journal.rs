//! The station side of the durable audit journal (kf-audit): a "started"
//! record committed before the first STORE DATA, the outcome after.

use kf_audit::Journal;
use kf_perso::pipeline::{FobOutcome, HookError, PipelineHooks};
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
    fn before_first_store_data(&mut self, record: &AuditRecord) -> Result<(), HookError> {
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
            .map_err(HookError::new)
    }
}

/// Appends the outcome (the full audit record) to the journal.
pub fn append_outcome(journal: &mut Journal, outcome: &FobOutcome) -> anyhow::Result<()> {
    let body = serde_json::to_value(&outcome.record)?;
    journal.append_outcome(&outcome.record.transaction_id, &body)?;
    Ok(())
}

/// After a crash (kill -9, power loss) some fobs have a "started" record and
/// no outcome: the station cannot know how far the card got. Each gets a
/// FAILURE outcome so the KLMS learns of it and the fob is re-presented.
/// Returns the number of transactions closed this way.
pub fn close_interrupted(journal: &mut Journal) -> anyhow::Result<usize> {
    let unfinished = journal.unfinished()?;
    for transaction_id in &unfinished {
        let filter = kf_audit::ListFilter {
            transaction_id: Some(transaction_id.clone()),
            kind: Some(kf_audit::RecordKind::Started),
            ..kf_audit::ListFilter::default()
        };
        let started = journal
            .list(&filter)?
            .pop()
            .map(|r| r.body_json())
            .transpose()?
            .unwrap_or_default();
        let field = |name: &str| {
            started
                .get(name)
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        };
        let body = serde_json::json!({
            "transaction_id": transaction_id,
            "fob_uid": field("fob_uid"),
            "timestamp_iso8601": field("timestamp_iso8601"),
            "overall_result": "FAILURE",
            "stage_reached": field("stage_reached"),
            "apdu_trace": [],
            "eol_station_id": field("eol_station_id"),
            "stage_durations_ms": {},
            "failure_reason": "station stopped during personalization; outcome unknown, re-present the fob",
        });
        journal.append_outcome(transaction_id, &body)?;
    }
    Ok(unfinished.len())
}
