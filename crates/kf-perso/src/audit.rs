//! The per-fob audit record, in the JSON shape of the KLMS contract ("Audit Response"),
//! extended with per-stage durations and the failure reason.
//!
//! ```json
//! {"transaction_id": "trx_889900", "fob_uid": "11223344556677",
//!  "timestamp_iso8601": "2023-10-27T14:32:01.123Z", "overall_result": "SUCCESS",
//!  "stage_reached": "PAYLOAD_DELIVERY",
//!  "apdu_trace": [{"direction": "TX", "apdu_hex": "8050000008..."},
//!                 {"direction": "RX", "apdu_hex": "...9000", "sw1": "90", "sw2": "00"}],
//!  "eol_station_id": "LINE-04-PC-12",
//!  "stage_durations_ms": {"READ_UID": 1.2}, "failure_reason": null}
//! ```
//!
//! Sensitive commands are recorded as the transport's trace records them
//! ([`ApduTrace::record_command`]: the 4-byte header only), with
//! `"redacted": true`.

use std::collections::BTreeMap;
use std::time::Duration;

use kf_transport::trace::ApduTrace;
use kf_transport::transport::RawApdu;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The record's timestamp text, shared with the journal and the KLMS.
pub use kf_audit::format_timestamp;

/// The pipeline stages (provisioning specification, "Provisioning Pipeline Stages" plus Verify and Zeroize).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Stage {
    /// Read the fob UID (`FF CA 00 00 00`).
    ReadUid,
    /// Fetch static keys and personalization items from the source.
    FetchKeys,
    /// SCP03 INITIALIZE UPDATE (GPC Amd D §7.1).
    InitializeUpdate,
    /// SCP03 EXTERNAL AUTHENTICATE (GPC Amd D §7.2).
    ExternalAuthenticate,
    /// STORE DATA blocks with the DGIs (GPC 2.3.1 §11.11).
    PayloadDelivery,
    /// Last STORE DATA block: UNPERSONALIZED → PERSONALIZED.
    LifecycleTransition,
    /// Raw post-perso commands (`00 DB ...`).
    PostPersonalization,
    /// Signature over a fresh challenge checked with the device certificate's key.
    Verify,
    /// Session and static keys wiped from memory.
    Zeroize,
}

impl Stage {
    /// Every stage in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::ReadUid,
        Stage::FetchKeys,
        Stage::InitializeUpdate,
        Stage::ExternalAuthenticate,
        Stage::PayloadDelivery,
        Stage::LifecycleTransition,
        Stage::PostPersonalization,
        Stage::Verify,
        Stage::Zeroize,
    ];

    /// The SCREAMING_SNAKE name used in audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::ReadUid => "READ_UID",
            Stage::FetchKeys => "FETCH_KEYS",
            Stage::InitializeUpdate => "INITIALIZE_UPDATE",
            Stage::ExternalAuthenticate => "EXTERNAL_AUTHENTICATE",
            Stage::PayloadDelivery => "PAYLOAD_DELIVERY",
            Stage::LifecycleTransition => "LIFECYCLE_TRANSITION",
            Stage::PostPersonalization => "POST_PERSONALIZATION",
            Stage::Verify => "VERIFY",
            Stage::Zeroize => "ZEROIZE",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of a fob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OverallResult {
    /// Every stage passed.
    Success,
    /// A stage failed; see `stage_reached` and `failure_reason`.
    Failure,
}

/// Direction of a traced APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Station → fob.
    #[serde(rename = "TX")]
    Tx,
    /// Fob → station.
    #[serde(rename = "RX")]
    Rx,
}

/// One traced APDU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApduTraceEntry {
    /// TX or RX.
    pub direction: Direction,
    /// Upper-case hex; for redacted commands only the header.
    pub apdu_hex: String,
    /// First status byte (RX only), two hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw1: Option<String>,
    /// Second status byte (RX only), two hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw2: Option<String>,
    /// Whether the data field was left out because the command carries secrets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl ApduTraceEntry {
    /// A status byte as the contract writes it: two upper-case hex digits.
    pub(crate) fn status_byte_hex(byte: u8) -> String {
        format!("{byte:02X}")
    }

    /// A response as received (data and status word).
    pub fn response(bytes: &[u8]) -> ApduTraceEntry {
        let sw = bytes.len().checked_sub(2).map(|i| &bytes[i..]);
        ApduTraceEntry {
            direction: Direction::Rx,
            apdu_hex: hex::encode_upper(bytes),
            sw1: sw.map(|s| Self::status_byte_hex(s[0])),
            sw2: sw.map(|s| Self::status_byte_hex(s[1])),
            redacted: false,
        }
    }
}

/// The audit record of one fob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Source transaction identifier.
    pub transaction_id: String,
    /// Fob UID, upper-case hex.
    pub fob_uid: String,
    /// Start of the fob's provisioning, RFC 3339 UTC with milliseconds.
    pub timestamp_iso8601: String,
    /// SUCCESS or FAILURE.
    pub overall_result: OverallResult,
    /// The last stage entered (the failing one on failure).
    pub stage_reached: Stage,
    /// Every APDU exchanged, redacted where sensitive.
    pub apdu_trace: Vec<ApduTraceEntry>,
    /// Station identifier.
    pub eol_station_id: String,
    /// The reader the fob was on (provisioning specification: `"LINE_04_READER_01"`), when the
    /// station names its readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_id: Option<String>,
    /// Duration of each completed or failed stage, in milliseconds.
    #[serde(default)]
    pub stage_durations_ms: BTreeMap<Stage, f64>,
    /// Why the fob failed (no secrets), `null` on success.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The chip's identity from its CPLC (see [`kf_apdu::gp::Cplc::ic_serial`]),
    /// when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ic_serial: Option<String>,
    /// The chip's CPLC fabrication date, `YDDD` hex, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ic_fabrication_date: Option<String>,
    /// Keyed fingerprint of the fob's BLE IRK (DGI A006): upper-case hex of
    /// the first 16 bytes of HMAC-SHA-256 under a subkey of the station's
    /// journal key (see `kf_audit::record`), never the IRK itself. Set once
    /// the content is fetched; lets the back end match a fob to its IRK and
    /// the station refuse an IRK it already personalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irk_fingerprint: Option<String>,
}

impl AuditRecord {
    /// A record for a fob whose provisioning starts at `started`; the result is
    /// FAILURE at READ_UID until [`AuditRecord::succeed`] is called.
    pub fn new(
        transaction_id: impl Into<String>,
        fob_uid: &[u8],
        eol_station_id: impl Into<String>,
        started: OffsetDateTime,
    ) -> AuditRecord {
        AuditRecord {
            transaction_id: transaction_id.into(),
            fob_uid: hex::encode_upper(fob_uid),
            timestamp_iso8601: format_timestamp(started),
            overall_result: OverallResult::Failure,
            stage_reached: Stage::ReadUid,
            apdu_trace: Vec::new(),
            eol_station_id: eol_station_id.into(),
            reader_id: None,
            stage_durations_ms: BTreeMap::new(),
            failure_reason: None,
            ic_serial: None,
            ic_fabrication_date: None,
            irk_fingerprint: None,
        }
    }

    /// Records that `stage` was entered.
    pub fn enter(&mut self, stage: Stage) {
        self.stage_reached = stage;
    }

    /// Records how long `stage` took (added to any earlier time of the same stage).
    pub fn record_duration(&mut self, stage: Stage, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        *self.stage_durations_ms.entry(stage).or_insert(0.0) += (ms * 1000.0).round() / 1000.0;
    }

    /// Appends a traced command, redacted by the transport's trace, so a
    /// record built here shows a sensitive command as the pipeline's do.
    pub fn trace_command(&mut self, command: RawApdu<'_>) {
        let trace = ApduTrace::new();
        trace.record_command(command);
        self.apdu_trace
            .extend(trace.entries().into_iter().map(|entry| ApduTraceEntry {
                direction: Direction::Tx,
                apdu_hex: entry.apdu_hex.to_uppercase(),
                sw1: None,
                sw2: None,
                redacted: entry.redacted,
            }));
    }

    /// Appends a traced response.
    pub fn trace_response(&mut self, bytes: &[u8]) {
        self.apdu_trace.push(ApduTraceEntry::response(bytes));
    }

    /// Marks the fob as provisioned.
    pub fn succeed(&mut self) {
        self.overall_result = OverallResult::Success;
        self.failure_reason = None;
    }

    /// Marks the fob as failed at `stage` with a reason (which must not carry secrets).
    pub fn fail(&mut self, stage: Stage, reason: impl Into<String>) {
        self.overall_result = OverallResult::Failure;
        self.stage_reached = stage;
        self.failure_reason = Some(reason.into());
    }

    /// One line of JSON (for the JSON-lines audit file).
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
