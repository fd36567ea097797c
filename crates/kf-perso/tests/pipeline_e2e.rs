//! End-to-end: the pipeline against the virtual fob (kf-card) over the
//! in-process loopback transport, for each source, security level and failure path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_card::{FobConfig, Uid, VirtualFob};
use kf_perso::pipeline::{
    provision_fob, provision_fob_with_random, FobOutcome, HookError, IsdStatus, NoHooks,
    PipelineError, PipelineHooks, PipelineOptions, RetryAdvice, VerifyMode,
};
use kf_perso::{AuditRecord, OverallResult, PlanOptions, Stage};
use kf_profile::{AppletLifeCycle, P1Style};
use kf_scp03::{Mode, SecurityLevel};
use kf_source::{CardKeys, ContainerSource, DevSampleSource};
use kf_transport::fault::FaultPlan;
use kf_transport::loopback::LoopbackTransport;
use kf_transport::transport::Transport;

const UID: &str = "04112233445566778899";

fn fob() -> LoopbackTransport<VirtualFob> {
    LoopbackTransport::new(
        VirtualFob::new(FobConfig::dev_sample().with_uid(Uid::from_hex(UID).unwrap())).unwrap(),
    )
}

fn options(level: SecurityLevel) -> PipelineOptions {
    PipelineOptions {
        station_id: "TEST-STATION".into(),
        plan: PlanOptions {
            security_level: level,
            ..PlanOptions::default()
        },
        ..PipelineOptions::default()
    }
}

fn dev_source(count: usize) -> DevSampleSource {
    DevSampleSource::generated(count, Some(7)).unwrap()
}

fn assert_personalized(fob: &VirtualFob) {
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
    assert_eq!(
        fob.stored_dgi_tags(),
        vec![0xA001, 0xA002, 0xA003, 0xA004, 0xA005, 0xA006]
    );
    let flags = fob.transport_flags();
    assert!(flags.uicc && flags.ble);
}

/// Nothing was written: the applet is still unpersonalized and holds no DGI.
fn assert_untouched(fob: &VirtualFob) {
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
    assert!(fob.stored_dgi_tags().is_empty());
}

fn assert_success(outcome: &FobOutcome) {
    assert!(outcome.is_success(), "failed: {:?}", outcome.error);
    let r = &outcome.record;
    assert_eq!(r.overall_result, OverallResult::Success);
    assert_eq!(r.stage_reached, Stage::Zeroize);
    assert_eq!(r.fob_uid, UID);
    assert!(r.failure_reason.is_none());
    for stage in Stage::ALL {
        assert!(
            r.stage_durations_ms.contains_key(&stage),
            "no duration for {stage:?}"
        );
    }
}

#[test]
fn dev_source_provisions_at_every_supported_level() {
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::C_DEC_C_MAC_R_MAC,
        SecurityLevel::FULL,
        SecurityLevel::C_MAC_R_MAC,
    ] {
        let mut link = fob();
        let mut source = dev_source(1);
        let outcome = provision_fob(&mut link, &mut source, &options(level), &mut NoHooks);
        assert_success(&outcome);
        assert_personalized(link.card());
        // STORE DATA commands go out wrapped (CLA 84) at every level.
        let store_data = outcome
            .record
            .apdu_trace
            .iter()
            .filter(|e| e.apdu_hex.starts_with("84E2"))
            .count();
        assert!(store_data >= 7, "level {level:?}: {store_data} STORE DATA");
    }
}

#[test]
fn both_p1_styles_s16_and_block_on_last_data_block_work() {
    for style in [P1Style::JcShell, P1Style::GpDgi] {
        for last in [
            kf_perso::LastBlockStyle::SeparateEmptyBlock,
            kf_perso::LastBlockStyle::OnLastDataBlock,
        ] {
            let mut link = LoopbackTransport::new(
                VirtualFob::new(
                    FobConfig::dev_sample()
                        .with_uid(Uid::from_hex(UID).unwrap())
                        .with_mode(Mode::S16),
                )
                .unwrap(),
            );
            let mut opts = options(SecurityLevel::FULL);
            opts.plan.p1_style = style;
            opts.plan.mode = Mode::S16;
            opts.plan.last_block = last;
            let outcome = provision_fob(&mut link, &mut dev_source(1), &opts, &mut NoHooks);
            assert_success(&outcome);
            assert_personalized(link.card());
        }
    }
}

#[test]
fn container_source_provisions_from_generated_packages() {
    let dir = tempfile::tempdir().unwrap();
    kf_source::fixtures::generate(dir.path(), 2, Some(3)).unwrap();
    let mut source = ContainerSource::open(dir.path(), CardKeys::dev_sample().unwrap()).unwrap();
    for _ in 0..2 {
        let mut link = LoopbackTransport::new(VirtualFob::new(FobConfig::dev_sample()).unwrap());
        let outcome = provision_fob(
            &mut link,
            &mut source,
            &options(SecurityLevel::C_MAC),
            &mut NoHooks,
        );
        assert!(outcome.is_success(), "{:?}", outcome.error);
        assert!(
            outcome.origin.as_deref().unwrap_or("").contains('-'),
            "{:?}",
            outcome.origin
        );
        assert_eq!(
            link.card().applet_life_cycle(),
            AppletLifeCycle::Personalized
        );
    }
    assert_eq!(source.remaining().unwrap(), 0);
}

#[test]
fn wrong_keys_fail_at_initialize_update_and_nothing_is_written() {
    let other = kf_crypto::StaticKeys::from_hex(
        "000102030405060708090A0B0C0D0E0F",
        "101112131415161718191A1B1C1D1E1F",
        "202122232425262728292A2B2C2D2E2F",
    )
    .unwrap();
    let mut link = LoopbackTransport::new(
        VirtualFob::new(FobConfig::dev_sample().with_only_key_set(0xFF, other)).unwrap(),
    );
    let outcome = provision_dev(&mut link, SecurityLevel::C_MAC);
    let error = outcome.error.as_ref().unwrap();
    // The host notices first: the card cryptogram does not verify.
    assert_eq!(error.stage, Stage::InitializeUpdate);
    assert!(
        matches!(error.error, PipelineError::SecureChannel(_)),
        "{error}"
    );
    assert_eq!(outcome.record.overall_result, OverallResult::Failure);
    assert_eq!(outcome.record.stage_reached, Stage::InitializeUpdate);
    assert!(outcome.record.failure_reason.is_some());
    assert_untouched(link.card());
}

#[test]
fn an_already_personalized_fob_is_refused_at_payload_delivery() {
    let mut link = fob();
    assert!(provision_fob(
        &mut link,
        &mut dev_source(2),
        &options(SecurityLevel::C_MAC),
        &mut NoHooks
    )
    .is_success());
    let outcome = provision_dev(&mut link, SecurityLevel::C_MAC);
    let error = outcome.error.unwrap();
    assert_eq!(error.stage, Stage::PayloadDelivery);
    match error.error {
        PipelineError::Card { sw, .. } => assert_eq!(sw.as_u16(), 0x6985),
        other => panic!("{other}"),
    }
}

/// One fob through the pipeline with a development key package and no hooks.
fn provision_dev(link: &mut dyn Transport, level: SecurityLevel) -> FobOutcome {
    provision_fob(link, &mut dev_source(1), &options(level), &mut NoHooks)
}

/// One dev-sample fob at level 01 through `hooks`.
fn provision_with_hooks(link: &mut dyn Transport, hooks: &mut dyn PipelineHooks) -> FobOutcome {
    provision_fob(
        link,
        &mut dev_source(1),
        &options(SecurityLevel::C_MAC),
        hooks,
    )
}

/// How many commands a session sent.
fn commands_sent(outcome: &FobOutcome) -> u64 {
    outcome
        .record
        .apdu_trace
        .iter()
        .filter(|e| e.direction == kf_perso::Direction::Tx)
        .count() as u64
}

#[test]
fn a_tear_at_every_apdu_index_fails_cleanly_and_the_fob_can_be_provisioned_again() {
    // Count the APDUs of a full session first.
    let mut link = fob();
    let full = provision_dev(&mut link, SecurityLevel::FULL);
    assert!(full.is_success());
    let commands = commands_sent(&full);
    assert!(commands > 10);
    for n in 0..commands {
        let mut torn = FaultPlan::new().tear_before(n).build(fob());
        let outcome = provision_dev(&mut torn, SecurityLevel::FULL);
        let error = outcome
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("tear before {n} went unnoticed"));
        assert!(error.is_card_lost(), "tear before {n}: {error}");
        assert_eq!(outcome.record.overall_result, OverallResult::Failure);
        // Re-present the fob: a new session personalizes it, unless the tear
        // came after the last STORE DATA (then it is already personalized).
        let mut link = torn.into_inner();
        kf_transport::transport::Transport::reset(&mut link).unwrap();
        let already = link.card().applet_life_cycle() == AppletLifeCycle::Personalized;
        let again = provision_dev(&mut link, SecurityLevel::FULL);
        if already {
            assert_eq!(
                again.error.unwrap().stage,
                Stage::PayloadDelivery,
                "tear before {n}"
            );
        } else {
            assert!(
                again.is_success(),
                "tear before {n}: retry failed: {:?}",
                again.error
            );
            assert_personalized(link.card());
        }
    }
}

#[test]
fn a_corrupted_response_terminates_the_channel() {
    // Response 6 is inside the STORE DATA sequence at level 33 (R-MAC).
    let mut link = FaultPlan::new().corrupt_response(6, 0, 0x01).build(fob());
    let outcome = provision_dev(&mut link, SecurityLevel::FULL);
    let error = outcome.error.unwrap();
    assert!(
        matches!(error.error, PipelineError::SecureChannel(_)),
        "{error}"
    );
}

struct RefusingJournal;
impl PipelineHooks for RefusingJournal {
    fn before_first_store_data(&mut self, _record: &AuditRecord) -> Result<(), HookError> {
        Err(HookError::failed("disk full"))
    }
}

#[test]
fn a_journal_failure_stops_before_the_first_store_data() {
    let mut link = fob();
    let outcome = provision_with_hooks(&mut link, &mut RefusingJournal);
    let error = outcome.error.unwrap();
    assert_eq!(error.stage, Stage::PayloadDelivery);
    assert!(matches!(error.error, PipelineError::Journal(_)));
    assert!(!outcome
        .record
        .apdu_trace
        .iter()
        .any(|e| e.apdu_hex.starts_with("84E2")));
    assert_eq!(
        link.card().applet_life_cycle(),
        AppletLifeCycle::Unpersonalized
    );
}

/// Identity and content checks that refuse, or fail, with the given error.
struct Checks {
    identity: Option<fn() -> HookError>,
    input: Option<fn() -> HookError>,
}

impl PipelineHooks for Checks {
    fn check_identity(
        &mut self,
        _identity: &kf_perso::pipeline::FobIdentity,
    ) -> Result<(), HookError> {
        self.identity.map_or(Ok(()), |e| Err(e()))
    }
    fn check_input(
        &mut self,
        _input: &kf_source::ProvisioningInput,
        _record: &mut AuditRecord,
    ) -> Result<(), HookError> {
        self.input.map_or(Ok(()), |e| Err(e()))
    }
}

/// A refusal by a hook is the fob's (`Refused`), a failure of the hook the station's
/// (`Journal`), at whichever check it happens; neither lets a secure command reach the fob.
#[test]
fn a_hook_refusal_and_a_hook_failure_are_told_apart_at_each_check() {
    let refused: fn() -> HookError = || HookError::refused("already personalized");
    let failed: fn() -> HookError = || HookError::failed("journal unreadable");
    for (checks, stage, want_refused) in [
        (
            Checks {
                identity: Some(refused),
                input: None,
            },
            Stage::ReadUid,
            true,
        ),
        (
            Checks {
                identity: Some(failed),
                input: None,
            },
            Stage::ReadUid,
            false,
        ),
        (
            Checks {
                identity: None,
                input: Some(refused),
            },
            Stage::FetchKeys,
            true,
        ),
        (
            Checks {
                identity: None,
                input: Some(failed),
            },
            Stage::FetchKeys,
            false,
        ),
    ] {
        let mut checks = checks;
        let mut link = fob();
        let outcome = provision_with_hooks(&mut link, &mut checks);
        let error = outcome.error.unwrap();
        assert_eq!(error.stage, stage, "{error}");
        if want_refused {
            assert!(matches!(error.error, PipelineError::Refused(_)), "{error}");
        } else {
            assert!(matches!(error.error, PipelineError::Journal(_)), "{error}");
        }
        assert!(
            !outcome
                .record
                .apdu_trace
                .iter()
                .any(|e| e.apdu_hex.starts_with("84")),
            "no secure command after a stopped check: {error}"
        );
    }
}

/// A random source that fails once it has served `left` draws.
struct RunsDry {
    left: usize,
}

impl kf_scp03::ChallengeSource for RunsDry {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), kf_scp03::Scp03Error> {
        if self.left == 0 {
            return Err(kf_scp03::Scp03Error::Rng);
        }
        self.left -= 1;
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, buf);
        Ok(())
    }
}

fn provision_with_draws(link: &mut LoopbackTransport<VirtualFob>, draws: usize) -> FobOutcome {
    provision_fob_with_random(
        link,
        &mut dev_source(1),
        &options(SecurityLevel::C_MAC),
        &mut NoHooks,
        &mut RunsDry { left: draws },
    )
}

/// Whether a command starting with `hex_prefix` went to the card.
fn sent(outcome: &FobOutcome, hex_prefix: &str) -> bool {
    outcome
        .record
        .apdu_trace
        .iter()
        .any(|e| e.apdu_hex.starts_with(hex_prefix))
}

/// Asserts that `outcome` failed at `stage` for want of randomness for `want`.
fn assert_no_randomness(outcome: &FobOutcome, stage: Stage, want: &str) {
    let error = outcome.error.as_ref().unwrap();
    assert_eq!(error.stage, stage);
    match &error.error {
        PipelineError::Randomness { purpose, .. } => assert_eq!(*purpose, want),
        other => panic!("expected Randomness, got {other}"),
    }
}

#[test]
fn no_randomness_for_the_transaction_id_stops_before_any_command() {
    let mut link = fob();
    let outcome = provision_with_draws(&mut link, 0);
    assert_no_randomness(&outcome, Stage::ReadUid, "the transaction id");
    assert_eq!(outcome.record.overall_result, OverallResult::Failure);
    assert!(outcome.record.transaction_id.starts_with("local-norandom-"));
    assert!(outcome.record.apdu_trace.is_empty());
    assert!(outcome.uid.is_none());
}

#[test]
fn no_randomness_for_the_verification_challenge_stops_before_the_command() {
    let mut link = fob();
    // Two draws: the transaction id and the host challenge.
    let outcome = provision_with_draws(&mut link, 2);
    assert_no_randomness(&outcome, Stage::Verify, "the verification challenge");
    assert_eq!(
        outcome.record.failure_reason.as_deref(),
        Some("no randomness for the verification challenge")
    );
    assert!(!sent(&outcome, "0088"));
    // One draw fewer: the host challenge is missing, and no INITIALIZE UPDATE goes out.
    let mut link = fob();
    let outcome = provision_with_draws(&mut link, 1);
    let error = outcome.error.as_ref().unwrap();
    assert_eq!(error.stage, Stage::InitializeUpdate);
    assert!(
        matches!(
            error.error,
            PipelineError::SecureChannel(kf_scp03::Scp03Error::Rng)
        ),
        "{error}"
    );
    assert!(!sent(&outcome, "8050"));
    assert_eq!(
        link.card().applet_life_cycle(),
        AppletLifeCycle::Unpersonalized
    );
}

#[test]
fn verification_can_be_skipped_with_a_reason_and_isd_can_be_secured() {
    let mut link = fob();
    let mut opts = options(SecurityLevel::C_MAC);
    opts.verify = VerifyMode::Skip("profile without INTERNAL AUTHENTICATE".into());
    opts.isd_status = Some(IsdStatus::Secured);
    let outcome = provision_fob(&mut link, &mut dev_source(1), &opts, &mut NoHooks);
    assert!(outcome.is_success(), "{:?}", outcome.error);
    assert!(!sent(&outcome, "0088"));
    assert_eq!(link.card().isd_life_cycle(), kf_card::IsdLifeCycle::Secured);
}

#[test]
fn no_secret_reaches_the_audit_record() {
    let mut link = fob();
    let mut source = dev_source(1);
    let outcome = provision_fob(
        &mut link,
        &mut source,
        &options(SecurityLevel::C_MAC),
        &mut NoHooks,
    );
    assert!(outcome.is_success());
    let json = outcome.record.to_json_line().unwrap().to_uppercase();
    for key in [
        kf_profile::DEV_SAMPLE_ENC,
        kf_profile::DEV_SAMPLE_MAC,
        kf_profile::DEV_SAMPLE_DEK,
    ] {
        assert!(!json.contains(&hex::encode_upper(key)));
    }
    // The DEK-encrypted scalar block is redacted.
    assert!(outcome.record.apdu_trace.iter().any(|e| e.redacted));
    for entry in outcome.record.apdu_trace.iter().filter(|e| e.redacted) {
        assert!(entry.apdu_hex.len() <= 2 * 7, "{}", entry.apdu_hex);
    }
}

/// The dev source with each input changed by `alter` before the pipeline sees it.
struct Altered {
    name: &'static str,
    inner: DevSampleSource,
    alter: fn(&mut kf_source::ProvisioningInput) -> Result<(), kf_source::SourceError>,
}

impl kf_source::ProvisioningSource for Altered {
    fn name(&self) -> &str {
        self.name
    }
    fn fetch(
        &mut self,
        uid: &[u8],
    ) -> Result<kf_source::ProvisioningInput, kf_source::SourceError> {
        let mut input = self.inner.fetch(uid)?;
        (self.alter)(&mut input)?;
        Ok(input)
    }
}

/// A003 as a pre-encrypted blob that does not decrypt to a valid padded
/// scalar under the fob's DEK: the plan accepts it (48 bytes), the card must
/// refuse it.
fn garbage_a003(input: &mut kf_source::ProvisioningInput) -> Result<(), kf_source::SourceError> {
    input.items.private_key = kf_source::PrivateKeyMaterial::DekEncrypted(
        kf_source::EncryptedScalar::from_bytes(&[0x55; 48])?,
    );
    Ok(())
}

#[test]
fn a_malformed_dgi_is_rejected_by_the_card_and_nothing_is_stored() {
    for level in [SecurityLevel::C_MAC, SecurityLevel::FULL] {
        let mut link = fob();
        let mut source = Altered {
            name: "garbage-a003",
            inner: dev_source(1),
            alter: garbage_a003,
        };
        let outcome = provision_fob(&mut link, &mut source, &options(level), &mut NoHooks);
        let error = outcome.error.unwrap();
        assert_eq!(error.stage, Stage::PayloadDelivery);
        match error.error {
            PipelineError::Card { sw, .. } => assert_eq!(sw.as_u16(), 0x6A80, "level {level:?}"),
            other => panic!("{other}"),
        }
        assert_eq!(outcome.record.overall_result, OverallResult::Failure);
        assert_eq!(outcome.record.stage_reached, Stage::PayloadDelivery);
        assert_untouched(link.card());
    }
}

const OTHER_SCALAR: [u8; 32] = [0x42; 32];

/// A valid P-256 scalar that is not the one of the device certificate.
fn other_private_key(
    input: &mut kf_source::ProvisioningInput,
) -> Result<(), kf_source::SourceError> {
    let other = kf_source::PrivateScalar::from_bytes(&OTHER_SCALAR)?;
    input.items.private_key = kf_source::PrivateKeyMaterial::Scalar(other);
    Ok(())
}

/// A Verify key that is not the certificate's.
fn other_verification_key(
    input: &mut kf_source::ProvisioningInput,
) -> Result<(), kf_source::SourceError> {
    let other = kf_source::PrivateScalar::from_bytes(&OTHER_SCALAR)?;
    input.device_public_key = other.public_key()?;
    Ok(())
}

#[test]
fn a_key_package_whose_scalar_does_not_match_its_certificate_is_refused_before_any_store_data() {
    for (alter, expected) in [
        (
            other_private_key as fn(&mut _) -> _,
            kf_perso::KeyPairError::PrivateKeyMismatch,
        ),
        (
            other_verification_key,
            kf_perso::KeyPairError::VerificationKeyMismatch,
        ),
    ] {
        for level in [SecurityLevel::C_MAC, SecurityLevel::FULL] {
            let mut link = fob();
            let mut source = Altered {
                name: "mismatched",
                inner: dev_source(1),
                alter,
            };
            let outcome = provision_fob(&mut link, &mut source, &options(level), &mut NoHooks);
            let error = outcome
                .error
                .as_ref()
                .expect("a mismatched package must fail");
            assert_eq!(error.stage, Stage::FetchKeys, "{error}");
            match &error.error {
                PipelineError::KeyPair(e) => assert_eq!(*e, expected),
                other => panic!("{other}"),
            }
            assert_eq!(outcome.record.overall_result, OverallResult::Failure);
            assert_eq!(outcome.record.stage_reached, Stage::FetchKeys);
            // Only the identity was read (UID, SELECT ISD, CPLC): no applet
            // SELECT, no channel, no STORE DATA.
            let sent: Vec<&str> = outcome
                .record
                .apdu_trace
                .iter()
                .filter(|e| e.direction == kf_perso::Direction::Tx)
                .map(|e| e.apdu_hex.as_str())
                .collect();
            assert_eq!(
                sent,
                vec!["FFCA000000", "00A4040008A00000015100000000", "80CA9F7F00"],
                "{sent:?}"
            );
            assert_untouched(link.card());
            // The reason names the DGIs, never the key.
            let reason = outcome.record.failure_reason.clone().unwrap();
            assert!(reason.contains("A002"), "{reason}");
            let text = format!("{reason} {error} {error:?}").to_uppercase();
            assert!(!text.contains(&hex::encode_upper(OTHER_SCALAR)), "{text}");
            assert!(!text.contains("4242424242"), "{text}");
        }
    }
}

/// A source whose package expires at its `expires_on`-th freshness check
/// (1: before INITIALIZE UPDATE, 2: before the first STORE DATA), as a KLMS
/// package whose TTL ends while the fob is in the field.
struct ExpiresAt {
    inner: DevSampleSource,
    expires_on: usize,
    checks: std::cell::Cell<usize>,
}

impl kf_source::ProvisioningSource for ExpiresAt {
    fn name(&self) -> &str {
        "expiring"
    }
    fn fetch(
        &mut self,
        uid: &[u8],
    ) -> Result<kf_source::ProvisioningInput, kf_source::SourceError> {
        self.inner.fetch(uid)
    }
    fn ensure_fresh(
        &self,
        _input: &kf_source::ProvisioningInput,
    ) -> Result<(), kf_source::SourceError> {
        let n = self.checks.get() + 1;
        self.checks.set(n);
        if n >= self.expires_on {
            return Err(kf_source::klms::KlmsError::Expired {
                transaction_id: "trx_expiring".into(),
                expires_at: "2026-12-06T00:00:00Z".into(),
            }
            .into());
        }
        Ok(())
    }
}

fn provision_expiring(link: &mut LoopbackTransport<VirtualFob>, expires_on: usize) -> FobOutcome {
    let mut source = ExpiresAt {
        inner: dev_source(1),
        expires_on,
        checks: std::cell::Cell::new(0),
    };
    provision_fob(
        link,
        &mut source,
        &options(SecurityLevel::FULL),
        &mut NoHooks,
    )
}

/// Nothing of the expired package stayed on the fob, and a fresh one provisions it.
fn provisions_afterwards(link: &mut LoopbackTransport<VirtualFob>) {
    assert_untouched(link.card());
    assert_success(&provision_dev(link, SecurityLevel::FULL));
    assert_personalized(link.card());
}

fn assert_expired(outcome: &FobOutcome, stage: Stage) {
    let error = outcome
        .error
        .as_ref()
        .expect("an expired package must fail");
    assert_eq!(error.stage, stage);
    match &error.error {
        PipelineError::Source(kf_source::SourceError::Klms(
            kf_source::klms::KlmsError::Expired { transaction_id, .. },
        )) => assert_eq!(transaction_id, "trx_expiring"),
        other => panic!("expected an expired package, got {other}"),
    }
    assert_eq!(outcome.record.overall_result, OverallResult::Failure);
    assert_eq!(outcome.record.stage_reached, stage);
    assert!(
        outcome
            .record
            .failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("expired")),
        "the operator is told the package expired: {:?}",
        outcome.record.failure_reason
    );
}

#[test]
fn a_package_expired_before_initialize_update_opens_no_channel() {
    let mut link = fob();
    let outcome = provision_expiring(&mut link, 1);
    assert_expired(&outcome, Stage::InitializeUpdate);
    // No secure channel was opened with the expired keys.
    assert!(!sent(&outcome, "8050"), "INITIALIZE UPDATE sent");
    // A fresh package for the same fob then provisions it.
    provisions_afterwards(&mut link);
}

#[test]
fn a_package_expired_during_the_handshake_stores_nothing() {
    let mut link = fob();
    let outcome = provision_expiring(&mut link, 2);
    assert_expired(&outcome, Stage::PayloadDelivery);
    // The channel was opened, no STORE DATA was sent.
    assert!(sent(&outcome, "8050"), "INITIALIZE UPDATE not sent");
    assert!(!sent(&outcome, "80E2"), "STORE DATA sent");
    assert!(!sent(&outcome, "84E2"), "STORE DATA sent");
    provisions_afterwards(&mut link);
}

/// Where a session is cut: before the card sees APDU `n`, after it executed
/// it (torn away before answering), or with its response lost on the way.
#[derive(Debug, Clone, Copy)]
enum Cut {
    TearBefore,
    TearAfter,
    ResponseLost,
}

fn cut_at(cut: Cut, n: u64) -> FaultPlan {
    match cut {
        Cut::TearBefore => FaultPlan::new().tear_before(n),
        Cut::TearAfter => FaultPlan::new().tear_after(n),
        Cut::ResponseLost => FaultPlan::new().drop_response(n),
    }
}

/// Every cut at every APDU index at levels 01, 03 and 33: the host never
/// reports success, the record names the stage it failed in, and the advice
/// to the operator is never "safe" when anything reached the fob's applet —
/// the dangerous case being the card that executed the last STORE DATA or
/// the life-cycle change while the host saw a failure.
#[test]
fn every_cut_at_every_apdu_fails_with_advice_that_matches_the_fob() {
    let mut card_done_host_failed = 0;
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::FULL,
    ] {
        let full = provision_fob(
            &mut fob(),
            &mut dev_source(1),
            &options(level),
            &mut NoHooks,
        );
        assert_success(&full);
        let commands = commands_sent(&full);
        for cut in [Cut::TearBefore, Cut::TearAfter, Cut::ResponseLost] {
            for n in 0..commands {
                let what = format!("{cut:?} at APDU {n}, level {level:?}");
                let mut link = cut_at(cut, n).build(fob());
                let outcome =
                    provision_fob(&mut link, &mut dev_source(1), &options(level), &mut NoHooks);
                let error = outcome
                    .error
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: reported success"));
                assert_eq!(
                    outcome.record.overall_result,
                    OverallResult::Failure,
                    "{what}"
                );
                assert_eq!(outcome.record.stage_reached, error.stage, "{what}");
                assert_ne!(error.stage, Stage::Zeroize, "{what}");
                let card = link.into_inner();
                let touched = card.card().applet_life_cycle() != AppletLifeCycle::Unpersonalized
                    || !card.card().stored_dgi_tags().is_empty();
                let advice = outcome.retry_advice().unwrap();
                if touched {
                    assert_eq!(
                        advice,
                        RetryAdvice::CheckFob,
                        "{what}: the fob holds content"
                    );
                }
                if advice == RetryAdvice::RetrySafe {
                    assert!(!sent(&outcome, "80E2") && !sent(&outcome, "84E2"), "{what}");
                }
                if card.card().applet_life_cycle() == AppletLifeCycle::Personalized {
                    card_done_host_failed += 1;
                }
            }
        }
    }
    // The cuts after the card's last write exist and were all advised CheckFob.
    assert!(card_done_host_failed > 0);
}

/// The virtual fob behind an ATR whose historical bytes announce no card
/// capabilities (no extended Lc/Le).
struct SilentAtr(VirtualFob);

impl kf_transport::VirtualCard for SilentAtr {
    fn power_on(&mut self) -> Vec<u8> {
        self.0.power_on();
        self.atr()
    }
    fn power_off(&mut self) {
        self.0.power_off()
    }
    fn reset(&mut self) -> Vec<u8> {
        self.0.reset();
        self.atr()
    }
    fn atr(&self) -> Vec<u8> {
        kf_card::atr::contactless_atr(&[0x80, 0x54, b'J', b'C', b'O', b'P'])
    }
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.0.process_apdu(apdu)
    }
}

/// STORE DATA commands the fob received (from the audit trace).
fn store_data_count(outcome: &FobOutcome) -> usize {
    outcome
        .record
        .apdu_trace
        .iter()
        .filter(|e| e.direction == kf_perso::Direction::Tx && e.apdu_hex.get(2..4) == Some("E2"))
        .count()
}

#[test]
fn extended_store_data_needs_the_fobs_atr_to_announce_it_unless_the_reader_alone_decides() {
    let mut options = options(SecurityLevel::C_MAC);
    options.plan.extended_length = true;
    // The virtual fob's ATR announces extended Lc/Le: long blocks.
    let outcome = provision_fob(&mut fob(), &mut dev_source(1), &options, &mut NoHooks);
    assert_success(&outcome);
    let announced = store_data_count(&outcome);
    // Short blocks carry at most 247 bytes at C-MAC: 1,710 bytes need 8.
    assert!(announced < 8, "{announced} STORE DATA");

    // The same fob behind an ATR that says nothing: short blocks.
    let silent = || {
        let fob = VirtualFob::new(FobConfig::dev_sample().with_uid(Uid::from_hex(UID).unwrap()));
        LoopbackTransport::new(SilentAtr(fob.unwrap()))
    };
    let outcome = provision_fob(&mut silent(), &mut dev_source(1), &options, &mut NoHooks);
    assert_success(&outcome);
    let short = store_data_count(&outcome);
    assert!(short >= 8, "{short} STORE DATA");

    // Trusting the reader alone: long blocks again.
    options.extended_length_needs_atr = false;
    let outcome = provision_fob(&mut silent(), &mut dev_source(1), &options, &mut NoHooks);
    assert_success(&outcome);
    assert_eq!(store_data_count(&outcome), announced);
}
