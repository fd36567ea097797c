//! The station side of the durable audit journal (kf-audit): a "started"
//! record committed before the first STORE DATA, the outcome after.

use kf_audit::{Journal, RecordKind};
use kf_perso::pipeline::{FobIdentity, FobOutcome, HookError, PipelineHooks};
use kf_perso::AuditRecord;
use kf_source::ProvisioningInput;

/// Why the journal refused a fob or a package's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentRefused {
    /// A SUCCESS outcome already names this fob.
    #[error(
        "fob already personalized: {identity} passed at {when} on reader {reader} (journal \
         record {seq}); set it aside, or give --repersonalize to personalize it again"
    )]
    AlreadyPersonalized {
        /// What identified the fob: `IC serial …` or `UID …`.
        identity: String,
        /// The journal record of the earlier SUCCESS.
        seq: i64,
        /// When the earlier fob started.
        when: String,
        /// The reader of the earlier fob, when recorded.
        reader: String,
    },
    /// The package's BLE IRK was already written to a fob that passed.
    #[error(
        "package {package}: BLE IRK already personalized (rule: an IRK is written to one fob \
         only; journal record {seq} is a SUCCESS with IRK fingerprint {fingerprint})"
    )]
    IrkReused {
        /// Where the content came from (package directory name).
        package: String,
        /// The journal record of the earlier fob.
        seq: i64,
        /// The keyed fingerprint (not the IRK).
        fingerprint: String,
    },
}

/// Name of the audit-record field holding the keyed IRK fingerprint.
pub const IRK_FINGERPRINT_FIELD: &str = "irk_fingerprint";

/// One field of the journal's SUCCESS outcomes, each value with the sequence
/// number of its first record: read once when the station opens the
/// journal, extended as outcomes are appended, so a fob's check is a lookup
/// rather than a scan of the whole journal.
#[derive(Debug)]
pub struct SuccessIndex {
    of: fn(&AuditRecord) -> Option<&str>,
    seqs: std::collections::HashMap<String, i64>,
}

impl SuccessIndex {
    /// Reads the index of `field` (read from new records with `of`).
    pub fn load(
        journal: &Journal,
        field: &'static str,
        of: fn(&AuditRecord) -> Option<&str>,
    ) -> anyhow::Result<SuccessIndex> {
        Ok(SuccessIndex {
            of,
            seqs: journal.successful_outcome_index(field)?,
        })
    }

    /// The record of the SUCCESS outcome with this value, if any.
    pub fn get(&self, value: &str) -> Option<i64> {
        self.seqs.get(value).copied()
    }

    /// Adds the value of an outcome just appended (when it is a SUCCESS).
    pub fn note(&mut self, record: &AuditRecord, seq: i64) {
        if record.overall_result == kf_perso::OverallResult::Success {
            if let Some(value) = (self.of)(record) {
                self.seqs.entry(value.to_owned()).or_insert(seq);
            }
        }
    }
}

/// The indexes the station checks each fob against.
#[derive(Debug)]
pub struct Indexes {
    /// IRK fingerprints: an IRK goes to one fob only.
    pub irks: SuccessIndex,
    /// Chip serials (CPLC): a personalized fob is not personalized again.
    pub ic_serials: SuccessIndex,
    /// UIDs, for fobs whose CPLC was not read.
    pub uids: SuccessIndex,
}

impl Indexes {
    /// Reads every index from the journal.
    pub fn load(journal: &Journal) -> anyhow::Result<Indexes> {
        Ok(Indexes {
            irks: SuccessIndex::load(journal, IRK_FINGERPRINT_FIELD, |r| {
                r.irk_fingerprint.as_deref()
            })?,
            ic_serials: SuccessIndex::load(journal, "ic_serial", |r| r.ic_serial.as_deref())?,
            uids: SuccessIndex::load(journal, "fob_uid", |r| Some(r.fob_uid.as_str()))?,
        })
    }

    /// Adds an outcome just appended.
    pub fn note(&mut self, record: &AuditRecord, seq: i64) {
        self.irks.note(record, seq);
        self.ic_serials.note(record, seq);
        self.uids.note(record, seq);
    }
}

/// The journal and the indexes built from it, shared by every reader.
pub struct JournalState {
    /// The journal.
    pub journal: Journal,
    /// Its SUCCESS outcomes' IRK fingerprints, chip serials and UIDs.
    pub indexes: Indexes,
    /// Personalize a fob again although a SUCCESS names it (`--repersonalize`).
    pub repersonalize: bool,
}

/// Takes the journal lock. A worker that panicked while holding it may have
/// left an append half done in memory (never on disk: each append is one
/// transaction), so the station stops rather than go on.
pub fn lock(
    state: &std::sync::Mutex<JournalState>,
) -> anyhow::Result<std::sync::MutexGuard<'_, JournalState>> {
    state
        .lock()
        .map_err(|_| anyhow::anyhow!("journal lock poisoned by a failed reader worker"))
}

/// Pipeline hooks that write the "started" record.
pub struct JournalHooks<'a> {
    state: &'a std::sync::Mutex<JournalState>,
}

impl<'a> JournalHooks<'a> {
    /// Hooks writing to the shared journal and checking its IRK index.
    pub fn new(state: &'a std::sync::Mutex<JournalState>) -> Self {
        JournalHooks { state }
    }
}

impl PipelineHooks for JournalHooks<'_> {
    /// Refuses a fob a SUCCESS outcome of this journal already names, by its
    /// chip serial (CPLC) or its UID, unless the station re-personalizes.
    fn check_identity(&mut self, identity: &FobIdentity) -> Result<(), HookError> {
        let state = lock(self.state).map_err(HookError::failed)?;
        if state.repersonalize {
            return Ok(());
        }
        let serial = identity.cplc.ic_serial();
        let uid = hex::encode_upper(&identity.uid);
        let found = state
            .indexes
            .ic_serials
            .get(&serial)
            .map(|seq| (format!("IC serial {serial}"), seq))
            .or_else(|| {
                state
                    .indexes
                    .uids
                    .get(&uid)
                    .map(|seq| (format!("UID {uid}"), seq))
            });
        let Some((identity, seq)) = found else {
            return Ok(());
        };
        let earlier = state.journal.show(seq).map_err(HookError::failed)?;
        let body: serde_json::Value = serde_json::from_str(&earlier.body).unwrap_or_default();
        let text = |key: &str| {
            body[key]
                .as_str()
                .map_or_else(|| "(not recorded)".to_string(), str::to_owned)
        };
        Err(HookError::refused(ContentRefused::AlreadyPersonalized {
            identity,
            seq,
            when: text("timestamp_iso8601"),
            reader: text("reader_id"),
        }))
    }

    /// Fingerprints the BLE IRK (HMAC-SHA-256 under the journal key's IRK
    /// subkey, truncated to 16 bytes; `kf_audit::record`) into the record and
    /// refuses an IRK whose fingerprint a SUCCESS outcome of this journal
    /// already carries (provisioning specification, "DGI Tags": A006 is per fob).
    fn check_input(
        &mut self,
        input: &ProvisioningInput,
        record: &mut AuditRecord,
    ) -> Result<(), HookError> {
        #[cfg(feature = "test-hooks")]
        {
            crate::test_hooks::record_secrets(input).map_err(HookError::failed)?;
            crate::test_hooks::stall_after_fetch().map_err(HookError::failed)?;
        }
        let state = lock(self.state).map_err(HookError::failed)?;
        let fingerprint = state.journal.fingerprint(
            kf_audit::IRK_FINGERPRINT_LABEL,
            input.items.ble_irk.expose_secret(),
        );
        record.irk_fingerprint = Some(fingerprint.clone());
        match state.indexes.irks.get(&fingerprint) {
            Some(seq) => Err(HookError::refused(ContentRefused::IrkReused {
                package: input.origin.clone(),
                seq,
                fingerprint,
            })),
            None => Ok(()),
        }
    }

    fn before_first_store_data(&mut self, record: &AuditRecord) -> Result<(), HookError> {
        let body = serde_json::json!({
            "transaction_id": record.transaction_id,
            "fob_uid": record.fob_uid,
            "timestamp_iso8601": record.timestamp_iso8601,
            "eol_station_id": record.eol_station_id,
            "stage_reached": record.stage_reached,
            IRK_FINGERPRINT_FIELD: record.irk_fingerprint,
        });
        lock(self.state)
            .map_err(HookError::failed)?
            .journal
            .append(&record.transaction_id, RecordKind::Started, &body)
            .map(|_| ())
            .map_err(HookError::failed)
    }
}

/// Appends the outcome (the full audit record) to the journal; returns its
/// sequence number.
pub fn append_outcome(journal: &mut Journal, outcome: &FobOutcome) -> anyhow::Result<i64> {
    let body = serde_json::to_value(&outcome.record)?;
    Ok(journal
        .append(&outcome.record.transaction_id, RecordKind::Outcome, &body)?
        .seq)
}

/// The failure reason of a transaction closed by [`close_interrupted`].
pub const INTERRUPTED_REASON: &str =
    "station stopped during personalization; outcome unknown, re-present the fob";

/// After a crash (kill -9, power loss) some fobs have a "started" record and
/// no outcome: the station cannot know how far the card got. Each gets a
/// FAILURE outcome so the KLMS learns of it and the fob is re-presented.
/// Returns the number of transactions closed this way.
pub fn close_interrupted(journal: &mut Journal) -> anyhow::Result<usize> {
    let unfinished = journal.unfinished()?;
    for transaction_id in &unfinished {
        let filter = kf_audit::ListFilter {
            transaction_id: Some(transaction_id.clone()),
            kind: Some(RecordKind::Started),
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
            "failure_reason": INTERRUPTED_REASON,
            IRK_FINGERPRINT_FIELD: field(IRK_FINGERPRINT_FIELD),
        });
        journal.append(transaction_id, RecordKind::Outcome, &body)?;
    }
    Ok(unfinished.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_audit::{JournalKey, ListFilter};

    /// A new journal in a temporary folder, keyed with `key_byte` repeated.
    fn temp_journal(key_byte: u8) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(
            dir.path().join("journal.db"),
            JournalKey::from_bytes([key_byte; 32]),
        )
        .unwrap();
        (dir, journal)
    }

    fn outcomes(journal: &Journal, transaction_id: &str) -> Vec<serde_json::Value> {
        let filter = ListFilter {
            transaction_id: Some(transaction_id.to_string()),
            kind: Some(RecordKind::Outcome),
            ..ListFilter::default()
        };
        journal
            .list(&filter)
            .unwrap()
            .iter()
            .map(|r| r.body_json().unwrap())
            .collect()
    }

    #[test]
    fn close_interrupted_fails_only_unfinished_transactions_once_with_their_started_fields() {
        let (_dir, mut journal) = temp_journal(3);
        let started = |uid: &str, stage: &str| {
            serde_json::json!({
                "fob_uid": uid,
                "timestamp_iso8601": "2026-11-22T14:32:01.123Z",
                "eol_station_id": "LINE-04-PC-12",
                "stage_reached": stage,
            })
        };
        journal
            .append(
                "trx_done",
                RecordKind::Started,
                &started("04AA", "STORE_DATA"),
            )
            .unwrap();
        journal
            .append(
                "trx_done",
                RecordKind::Outcome,
                &serde_json::json!({"overall_result": "SUCCESS"}),
            )
            .unwrap();
        journal
            .append(
                "trx_cut",
                RecordKind::Started,
                &started("04BB", "STORE_DATA"),
            )
            .unwrap();
        assert_eq!(close_interrupted(&mut journal).unwrap(), 1);
        assert!(journal.unfinished().unwrap().is_empty());

        let cut = outcomes(&journal, "trx_cut");
        assert_eq!(cut.len(), 1, "exactly one outcome for the interrupted fob");
        let cut = &cut[0];
        assert_eq!(cut["overall_result"], "FAILURE");
        assert_eq!(cut["failure_reason"], INTERRUPTED_REASON);
        assert_eq!(cut["transaction_id"], "trx_cut");
        assert_eq!(cut["fob_uid"], "04BB");
        assert_eq!(cut["stage_reached"], "STORE_DATA");
        assert_eq!(cut["eol_station_id"], "LINE-04-PC-12");
        assert_eq!(cut["timestamp_iso8601"], "2026-11-22T14:32:01.123Z");
        assert_eq!(cut["apdu_trace"], serde_json::json!([]));

        // The finished transaction keeps its single SUCCESS outcome.
        let done = outcomes(&journal, "trx_done");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0]["overall_result"], "SUCCESS");

        // A second start after recovery closes nothing more.
        assert_eq!(close_interrupted(&mut journal).unwrap(), 0);
        assert_eq!(outcomes(&journal, "trx_cut").len(), 1);
    }

    /// Within one run (the `run` loop): the index learns each SUCCESS as it
    /// is appended, and the next package with that IRK is refused.
    #[test]
    fn an_irk_is_refused_in_the_same_run_once_its_fob_passed() {
        use kf_source::ProvisioningSource;
        let (_dir, journal) = temp_journal(5);
        let indexes = Indexes::load(&journal).unwrap();
        let state = std::sync::Mutex::new(JournalState {
            journal,
            indexes,
            repersonalize: false,
        });
        let mut source = kf_source::DevSampleSource::generated(1, Some(3)).unwrap();
        let input = source.fetch(&[4, 1, 2, 3]).unwrap();
        let mut record =
            AuditRecord::new("t1", &[4, 1, 2, 3], "S", time::OffsetDateTime::UNIX_EPOCH);
        JournalHooks::new(&state)
            .check_input(&input, &mut record)
            .unwrap();
        let fingerprint = record.irk_fingerprint.clone().unwrap();
        assert_eq!(fingerprint.len(), 32);
        // A failure does not make the IRK used; a success does.
        {
            let irks = &mut state.lock().unwrap().indexes.irks;
            irks.note(&record, 1);
            assert_eq!(irks.get(&fingerprint), None);
            record.succeed();
            irks.note(&record, 2);
        }
        let mut again =
            AuditRecord::new("t2", &[4, 1, 2, 3], "S", time::OffsetDateTime::UNIX_EPOCH);
        let err = JournalHooks::new(&state)
            .check_input(&input, &mut again)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already personalized") && err.contains("record 2"),
            "{err}"
        );
        assert_eq!(again.irk_fingerprint.as_deref(), Some(fingerprint.as_str()));
    }

    #[test]
    fn close_interrupted_on_a_journal_without_started_records_appends_nothing() {
        let (_dir, mut journal) = temp_journal(4);
        assert_eq!(close_interrupted(&mut journal).unwrap(), 0);
        assert_eq!(journal.head().unwrap().seq, 0);
    }
}
