//! The provisioning pipeline driver: one fob, every stage of the provisioning specification plus
//! Verify and Zeroize, over any [`Transport`].
//!
//! ```text
//!  ReadUid (UID, CPLC, identity check) ─▶ FetchKeys (+ key-pair check) ─▶ InitializeUpdate ─▶ ExternalAuthenticate ─▶ [journal "started"]
//!   ─▶ PayloadDelivery (STORE DATA blocks) ─▶ LifecycleTransition (last block)
//!   ─▶ PostPersonalization (raw 00 DB ..) ─▶ Verify (ECDSA over a fresh challenge)
//!   ─▶ [optional ISD SET STATUS] ─▶ Zeroize (always, also after a failure)
//! ```
//!
//! The SCP03 state machine and the plan are sans-IO; this module is the thin
//! driver that moves their bytes over the transport, times every stage and
//! fills the audit record (the KLMS contract's shape) from a redacting trace.

mod error;
mod verify;

use std::time::{Duration, Instant};

use kf_apdu::{CommandApdu, ResponseApdu};
use kf_profile::TransportConfig;
use kf_scp03::{
    AwaitingExternalAuthenticate, ChallengeSource, HostSession, OsRandom, SecureChannel,
};
use kf_source::{ProvisioningInput, ProvisioningSource};
use kf_transport::iso7816::Iso7816Driver;
use kf_transport::trace::{ApduTrace, TraceEntry, TracingTransport};
use kf_transport::transport::Transport;
use kf_transport::TransportExt;
use time::OffsetDateTime;

pub use error::{BoxedError, HookError, PipelineError, StageError, VerifyError};
pub use verify::{check_signature, verify_command};

use crate::{ApduTraceEntry, AuditRecord, Direction, PersoPlan, PlanOptions, Stage};

/// What the Verify stage does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyMode {
    /// Send a fresh challenge and check the signature (default).
    Require,
    /// Skip, recording why (e.g. an applet profile without the command).
    Skip(String),
}

/// ISD life-cycle state to set at the end (GPC 2.3.1 §11.10, `80 F0 80 xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsdStatus {
    /// `0F` SECURED.
    Secured,
    /// `7F` CARD_LOCKED.
    CardLocked,
}

/// Options of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Station identifier written into every audit record.
    pub station_id: String,
    /// With `plan.extended_length`: use extended-length STORE DATA only when
    /// the card's ATR announces extended Lc/Le (ISO/IEC 7816-4 §8.1.1.2.7)
    /// as well as the reader carrying such APDUs; `false` trusts the reader
    /// alone (a card known to take them although its ATR does not say so).
    pub extended_length_needs_atr: bool,
    /// The reader's name in audit records (provisioning specification, `reader_id`).
    pub reader_id: Option<String>,
    /// Security level, S8/S16, P1 style, extended length, last-block style.
    pub plan: PlanOptions,
    /// Raw post-perso commands, in order (provisioning specification: UICC then BLE).
    pub post_perso: Vec<TransportConfig>,
    /// Key-pair verification.
    pub verify: VerifyMode,
    /// Optional final ISD SET STATUS (off by default).
    pub isd_status: Option<IsdStatus>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            station_id: "EOL-STATION".into(),
            extended_length_needs_atr: true,
            reader_id: None,
            plan: PlanOptions::default(),
            post_perso: vec![TransportConfig::Uicc, TransportConfig::Ble],
            verify: VerifyMode::Require,
            isd_status: None,
        }
    }
}

/// Who the fob is: its UID and its chip's CPLC, read before anything is
/// fetched for it or written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FobIdentity {
    /// The UID (GET DATA `FF CA 00 00` through the reader).
    pub uid: Vec<u8>,
    /// The Card Production Life Cycle data (GPC 2.3.1 §11.3, tag `9F7F`).
    pub cplc: kf_apdu::gp::Cplc,
}

/// Callbacks of the pipeline (journal, progress).
pub trait PipelineHooks {
    /// Called once the fob's identity is read, before its keys are fetched.
    /// [`HookError::Refused`] refuses the fob (e.g. already personalized),
    /// [`HookError::Failed`] stops it for a fault of the hook; either way
    /// nothing is fetched for it or written to it.
    fn check_identity(&mut self, _identity: &FobIdentity) -> Result<(), HookError> {
        Ok(())
    }

    /// Called once the content is fetched (and its key pair checked), before
    /// any SCP03 command: the hook may add facts about the content to the
    /// record (the station's journal sets `irk_fingerprint`) and may refuse
    /// the content (e.g. an IRK already personalized on an earlier fob);
    /// a refusal or a failure stops the fob at FetchKeys with nothing written
    /// to it.
    fn check_input(
        &mut self,
        _input: &ProvisioningInput,
        _record: &mut AuditRecord,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// Called once the channel is open, before the first STORE DATA. An error
    /// stops the fob before anything is written to it (the journal must hold
    /// the "started" record first).
    fn before_first_store_data(&mut self, _record: &AuditRecord) -> Result<(), HookError> {
        Ok(())
    }

    /// Called after every stage.
    fn stage_finished(&mut self, _stage: Stage, _elapsed: Duration) {}
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl PipelineHooks for NoHooks {}

/// The result of one fob.
#[derive(Debug)]
pub struct FobOutcome {
    /// The audit record (result, stage reached, redacted trace, durations).
    pub record: AuditRecord,
    /// The failure, if any.
    pub error: Option<StageError>,
    /// The UID read, if the first stage got that far.
    pub uid: Option<Vec<u8>>,
    /// Where the content came from (package name), when fetched.
    pub origin: Option<String>,
    /// Total wall time.
    pub elapsed: Duration,
}

impl FobOutcome {
    /// True when every stage passed.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// True when a STORE DATA went out: from then on part or all of the
    /// content may be on the fob, whatever the host saw afterwards (a tear or
    /// a lost response after the card executed a command looks the same to
    /// the host as one before it).
    pub fn store_data_sent(&self) -> bool {
        self.record
            .apdu_trace
            .iter()
            .any(|e| e.direction == crate::Direction::Tx && e.apdu_hex.get(2..4) == Some("E2"))
    }

    /// What to tell the operator about a failed fob; `None` on success.
    pub fn retry_advice(&self) -> Option<RetryAdvice> {
        self.error.as_ref()?;
        Some(if self.store_data_sent() {
            RetryAdvice::CheckFob
        } else {
            RetryAdvice::RetrySafe
        })
    }
}

/// What the operator may do with a fob that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAdvice {
    /// Nothing that writes the applet reached the fob: presenting it again
    /// starts from scratch.
    RetrySafe,
    /// A STORE DATA went out and its outcome is not known to be a refusal:
    /// the fob may be partly or fully personalized, so it goes to a check
    /// (its life cycle and stored content) before it is used or retried.
    CheckFob,
}

impl RetryAdvice {
    /// The advice in the operator's words.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryAdvice::RetrySafe => "nothing was written; the fob may be presented again",
            RetryAdvice::CheckFob => {
                "the fob may hold part of its content; set it aside for a check"
            }
        }
    }
}

/// Provisions the fob on `transport` with content from `source`.
///
/// Never panics on card or source input; every failure ends in an outcome
/// whose record says FAILURE, the stage and the reason. Secrets (static and
/// session keys, the private scalar) are dropped (zeroized) in the Zeroize
/// stage, which runs whatever happened before.
pub fn provision_fob(
    transport: &mut dyn Transport,
    source: &mut dyn ProvisioningSource,
    options: &PipelineOptions,
    hooks: &mut dyn PipelineHooks,
) -> FobOutcome {
    provision_fob_with_random(transport, source, options, hooks, &mut OsRandom)
}

/// [`provision_fob`] with the random source given: the local transaction
/// id, the SCP03 host challenges and the verification challenge are drawn
/// from `random`. A failed draw stops the fob with
/// [`PipelineError::Randomness`] (or [`PipelineError::SecureChannel`] for a
/// host challenge) before the command that needed it.
pub fn provision_fob_with_random(
    transport: &mut dyn Transport,
    source: &mut dyn ProvisioningSource,
    options: &PipelineOptions,
    hooks: &mut dyn PipelineHooks,
    random: &mut dyn ChallengeSource,
) -> FobOutcome {
    let started_at = Instant::now();
    let trace = ApduTrace::new();
    let started = OffsetDateTime::now_utc();
    let (transaction_id, no_randomness) = match local_transaction_id(random) {
        Ok(id) => (id, None),
        // The record still needs a name; the fob gets no command at all.
        Err(e) => (
            format!("local-norandom-{}", started.unix_timestamp_nanos()),
            Some(e),
        ),
    };
    let mut record = AuditRecord::new(transaction_id, &[], options.station_id.clone(), started);
    record.reader_id = options.reader_id.clone();
    let mut run = Run {
        link: Iso7816Driver::new(TracingTransport::with_trace(transport, trace.clone())),
        record,
        options,
        hooks,
        random,
        input: None,
        channel: None,
        uid: None,
    };
    let result = match no_randomness {
        None => run.stages(source),
        Some(error) => run.stage(Stage::ReadUid, |_| Err(error)),
    };
    let origin = run.origin();
    // Zeroize always runs: the input (static keys, scalar, IRK) and the
    // session keys are dropped, which wipes them. Its body cannot fail; the
    // stage only times it and records it.
    let _ = run.stage(Stage::Zeroize, |run| {
        if let Some(mut channel) = run.channel.take() {
            channel.close();
        }
        run.input = None;
        Ok(())
    });
    let Run {
        mut record, uid, ..
    } = run;
    record.apdu_trace = trace.entries().iter().map(audit_entry).collect();
    let error = match result {
        Ok(()) => {
            record.succeed();
            None
        }
        Err(e) => {
            record.fail(e.stage, e.error.to_string());
            Some(e)
        }
    };
    FobOutcome {
        record,
        error,
        uid,
        origin,
        elapsed: started_at.elapsed(),
    }
}

struct Run<'a, 'b> {
    link: Iso7816Driver<TracingTransport<&'a mut dyn Transport>>,
    record: AuditRecord,
    options: &'b PipelineOptions,
    hooks: &'b mut dyn PipelineHooks,
    random: &'b mut dyn ChallengeSource,
    input: Option<ProvisioningInput>,
    channel: Option<SecureChannel>,
    uid: Option<Vec<u8>>,
}

impl Run<'_, '_> {
    fn stages(&mut self, source: &mut dyn ProvisioningSource) -> Result<(), StageError> {
        let uid = self.stage(Stage::ReadUid, |run| {
            Ok(kf_transport::iso7816::read_uid(&mut run.link)?)
        })?;
        self.record.fob_uid = hex::encode_upper(&uid);
        self.uid = Some(uid.clone());
        self.stage(Stage::ReadUid, |run| {
            run.exchange_ok(
                &kf_apdu::gp::select_by_aid(kf_profile::ISD_AID)?,
                "SELECT ISD",
            )?;
            let response = run.exchange_ok(&kf_apdu::gp::get_cplc(), "GET DATA (CPLC)")?;
            let cplc = kf_apdu::gp::Cplc::parse(response.data())?;
            run.record.ic_serial = Some(cplc.ic_serial());
            run.record.ic_fabrication_date = Some(cplc.fabrication_date());
            let identity = FobIdentity {
                uid: uid.clone(),
                cplc,
            };
            Ok(run.hooks.check_identity(&identity)?)
        })?;

        self.stage(Stage::FetchKeys, |run| {
            let input = source.fetch(&uid)?;
            if input.fob_uid != uid {
                return Err(PipelineError::UidMismatch {
                    delivered: hex::encode_upper(&input.fob_uid),
                });
            }
            run.record.transaction_id = input.transaction_id.clone();
            // Before any card command: a mismatched package written in full
            // would only fail at Verify, with the fob already PERSONALIZED.
            let checked = crate::check_key_pair(&input);
            // Kept even when refused, so Zeroize drops it like any other input.
            run.input = Some(input);
            checked?;
            let input = run.input.as_ref().ok_or(PipelineError::NoInput)?;
            Ok(run.hooks.check_input(input, &mut run.record)?)
        })?;

        let mut plan_options = self.options.plan;
        plan_options.extended_length &= self.link.supports_extended()
            && (!self.options.extended_length_needs_atr
                || self
                    .link
                    .atr()
                    .is_some_and(|atr| kf_apdu::atr::announces_extended_length(&atr)));
        let plan = self.stage(Stage::PayloadDelivery, |run| {
            Ok(PersoPlan::build(run.input()?, &plan_options)?)
        });
        // A plan error is reported at PayloadDelivery but before any card I/O.
        let plan = plan?;

        let awaiting = self.stage(Stage::InitializeUpdate, |run| {
            // A KLMS package has a TTL: never open a channel with expired keys.
            source.ensure_fresh(run.input()?)?;
            run.initialize_update(kf_profile::APPLET_AID, "SELECT", &plan_options)
        })?;

        self.stage(Stage::ExternalAuthenticate, |run| {
            let (command, awaiting) = awaiting;
            let response = run.exchange(&command)?;
            run.channel = Some(awaiting.complete(&response)?);
            Ok(())
        })?;

        self.stage(Stage::PayloadDelivery, |run| {
            source.ensure_fresh(run.input()?)?;
            run.hooks.before_first_store_data(&run.record)?;
            for block in plan.blocks() {
                run.exchange_secure(block.command.clone(), "STORE DATA")?;
            }
            Ok(())
        })?;

        self.stage(Stage::LifecycleTransition, |run| {
            if let Some(last) = plan.lifecycle_command() {
                run.exchange_secure(last.clone(), "STORE DATA (last block)")?;
            }
            Ok(())
        })?;
        drop(plan);

        self.stage(Stage::PostPersonalization, |run| {
            for config in &run.options.post_perso {
                let command = CommandApdu::parse(&config.enable_command())?;
                run.exchange_ok(&command, "post-perso configuration")?;
            }
            Ok(())
        })?;

        self.stage(Stage::Verify, |run| match &run.options.verify {
            VerifyMode::Skip(reason) => {
                tracing::info!(%reason, "key-pair verification skipped");
                Ok(())
            }
            VerifyMode::Require => {
                let mut challenge = [0u8; kf_profile::verify::DEFAULT_CHALLENGE_LEN];
                run.random
                    .fill(&mut challenge)
                    .map_err(|source| PipelineError::Randomness {
                        purpose: "the verification challenge",
                        source,
                    })?;
                let response = run.exchange(&verify_command(&challenge))?;
                check_signature(&run.input()?.device_public_key, &challenge, &response)
            }
        })?;

        if let Some(status) = self.options.isd_status {
            // Reported as a life-cycle transition: it is the ISD's.
            self.stage(Stage::LifecycleTransition, |run| run.set_isd_status(status))?;
        }
        Ok(())
    }

    /// Runs one stage: marks it entered, times it, reports it to the hooks.
    fn stage<R>(
        &mut self,
        stage: Stage,
        body: impl FnOnce(&mut Self) -> Result<R, PipelineError>,
    ) -> Result<R, StageError> {
        self.record.enter(stage);
        let start = Instant::now();
        let result = body(self);
        let elapsed = start.elapsed();
        self.record.record_duration(stage, elapsed);
        self.hooks.stage_finished(stage, elapsed);
        result.map_err(|error| StageError { stage, error })
    }

    fn input(&self) -> Result<&ProvisioningInput, PipelineError> {
        self.input.as_ref().ok_or(PipelineError::NoInput)
    }

    fn origin(&self) -> Option<String> {
        self.input.as_ref().map(|i| i.origin.clone())
    }

    /// SELECT the security domain `aid` (the command named `select` in
    /// errors), then INITIALIZE UPDATE with the input's keys at the level and
    /// mode of `plan`; returns EXTERNAL AUTHENTICATE once the card's answer
    /// checked out.
    fn initialize_update(
        &mut self,
        aid: &[u8],
        select: &'static str,
        plan: &PlanOptions,
    ) -> Result<(CommandApdu, AwaitingExternalAuthenticate), PipelineError> {
        self.exchange_ok(&kf_apdu::gp::select_by_aid(aid)?, select)?;
        let input = self.input()?;
        let host = HostSession::new(input.card_keys.keys.duplicate())
            .security_level(plan.security_level)
            .sd_aid(aid);
        let kvn = input.card_keys.kvn;
        let (command, awaiting) =
            host.initialize_update_random(kvn, plan.mode, &mut *self.random)?;
        let response = self.exchange(&command)?;
        Ok(awaiting.process_response(&response)?)
    }

    /// Sends a plain command and parses the response.
    fn exchange(&mut self, command: &CommandApdu) -> Result<ResponseApdu, PipelineError> {
        Ok(self.link.transmit_apdu(command)?)
    }

    /// Sends a plain command that must answer 9000.
    fn exchange_ok(
        &mut self,
        command: &CommandApdu,
        name: &'static str,
    ) -> Result<ResponseApdu, PipelineError> {
        succeeded(self.exchange(command)?, name)
    }

    /// Wraps, sends, unwraps (checking the R-MAC where the level has one) a
    /// command that must answer 9000.
    fn exchange_secure(
        &mut self,
        command: CommandApdu,
        name: &'static str,
    ) -> Result<ResponseApdu, PipelineError> {
        let channel = self.channel.as_mut().ok_or(PipelineError::ChannelNotOpen)?;
        // The wrapped command keeps the plaintext's sensitivity.
        let wrapped = channel.wrap(command)?;
        let raw = self.exchange(&wrapped)?;
        let channel = self.channel.as_mut().ok_or(PipelineError::ChannelNotOpen)?;
        succeeded(channel.unwrap(raw)?, name)
    }

    /// SELECT the ISD, open a channel with it and SET STATUS (GPC 2.3.1 §11.10).
    fn set_isd_status(&mut self, status: IsdStatus) -> Result<(), PipelineError> {
        if let Some(mut applet_channel) = self.channel.take() {
            applet_channel.close();
        }
        let plan_options = self.options.plan;
        let (command, awaiting) =
            self.initialize_update(kf_profile::ISD_AID, "SELECT ISD", &plan_options)?;
        let response = self.exchange(&command)?;
        self.channel = Some(awaiting.complete(&response)?);
        let state = match status {
            IsdStatus::Secured => kf_apdu::gp::CardLifeCycle::Secured,
            IsdStatus::CardLocked => kf_apdu::gp::CardLifeCycle::CardLocked,
        };
        self.exchange_secure(kf_apdu::gp::set_card_status(state), "SET STATUS")?;
        Ok(())
    }
}

/// A transaction id for fobs that fail before the source issues one.
fn local_transaction_id(random: &mut dyn ChallengeSource) -> Result<String, PipelineError> {
    let mut bytes = [0u8; 8];
    random
        .fill(&mut bytes)
        .map_err(|source| PipelineError::Randomness {
            purpose: "the transaction id",
            source,
        })?;
    Ok(format!("local-{}", hex::encode(bytes)))
}

/// `response` when it answers 9000, else the card's refusal of command `name`.
fn succeeded(response: ResponseApdu, name: &'static str) -> Result<ResponseApdu, PipelineError> {
    if response.sw().is_success() {
        Ok(response)
    } else {
        Err(PipelineError::Card {
            command: name,
            sw: response.sw(),
        })
    }
}

/// Converts a transport trace entry (already redacted) to the KLMS contract's shape.
fn audit_entry(entry: &TraceEntry) -> ApduTraceEntry {
    let direction = match entry.direction {
        kf_transport::trace::Direction::Tx => Direction::Tx,
        kf_transport::trace::Direction::Rx => Direction::Rx,
    };
    let apdu_hex = match &entry.error {
        Some(error) => format!("ERROR: {error}"),
        None => entry.apdu_hex.to_uppercase(),
    };
    ApduTraceEntry {
        direction,
        apdu_hex,
        sw1: entry.sw1.map(ApduTraceEntry::status_byte_hex),
        sw2: entry.sw2.map(ApduTraceEntry::status_byte_hex),
        redacted: entry.redacted,
    }
}
