//! The virtual key fob through the real PC/SC stack: PC/SC backend → pcscd →
//! vsmartcard vpcd driver → vpcd bridge → VirtualFob.
//!
//! Needs root and the Debian packages `pcscd vsmartcard-vpcd libpcsclite-dev`
//! (scripts/test.sh installs them). A missing piece FAILS the test loudly.
#![cfg(all(unix, feature = "pcsc"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kf_card::{FobConfig, Uid, VirtualFob};
use kf_crypto::StaticKeys;
use kf_perso::pipeline::{provision_fob, NoHooks, PipelineHooks, PipelineOptions};
use kf_perso::{PlanOptions, Stage};
use kf_profile::AppletLifeCycle;
use kf_scp03::SecurityLevel;
use kf_source::{CardKeys, DevSampleSource, ProvisioningInput, ProvisioningSource, SourceError};
use kf_testkit::VpcdStack;
use kf_transport::pcsc::{CardDisposition, PcscContext};
use kf_transport::vpcd::{BridgeControl, BridgeHandle};

const WAIT: Option<Duration> = Some(Duration::from_secs(15));

fn insert(stack: &VpcdStack, fob: VirtualFob) -> BridgeHandle<VirtualFob> {
    stack.insert(fob, Duration::from_secs(15)).unwrap()
}

const AES256: (&str, &str, &str) = (
    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
    "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F",
    "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F",
);

fn aes256_keys() -> StaticKeys {
    StaticKeys::from_hex(AES256.0, AES256.1, AES256.2).unwrap()
}

/// Dev packages, with the static keys replaced (AES-256 fobs).
struct KeyedSource {
    inner: DevSampleSource,
    keys: Option<(u8, StaticKeys)>,
}

impl ProvisioningSource for KeyedSource {
    fn name(&self) -> &str {
        "keyed"
    }
    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, SourceError> {
        let mut input = self.inner.fetch(uid)?;
        if let Some((kvn, keys)) = &self.keys {
            input.card_keys = CardKeys {
                kvn: *kvn,
                keys: keys.duplicate(),
            };
        }
        Ok(input)
    }
}

fn options(level: SecurityLevel) -> PipelineOptions {
    PipelineOptions {
        plan: PlanOptions {
            security_level: level,
            ..PlanOptions::default()
        },
        ..PipelineOptions::default()
    }
}

#[test]
fn fob_is_personalized_through_pcscd_at_levels_01_03_33_with_aes128_and_aes256() {
    let stack = VpcdStack::start().unwrap();
    let reader = stack.reader_name(0);
    let context = PcscContext::establish().unwrap();
    assert!(context.list_readers().unwrap().contains(&reader));
    for aes256 in [false, true] {
        for level in [
            SecurityLevel::C_MAC,
            SecurityLevel::C_DEC_C_MAC,
            SecurityLevel::FULL,
        ] {
            let uid = Uid::random(10).unwrap();
            let mut config = FobConfig::dev_sample().with_uid(uid.clone());
            let keys = aes256.then(|| (0x30u8, aes256_keys()));
            if let Some((kvn, k)) = &keys {
                config = config.with_only_key_set(*kvn, k.duplicate());
            }
            let bridge = insert(&stack, VirtualFob::new(config).unwrap());
            let info = context.wait_for_card(&reader, WAIT).unwrap();
            assert!(info.card_present);
            let mut card = context.connect(&reader).unwrap();
            assert_eq!(card.uid().unwrap(), uid.as_bytes());
            let mut source = KeyedSource {
                inner: DevSampleSource::generated(1, None).unwrap(),
                keys,
            };
            let outcome = provision_fob(&mut card, &mut source, &options(level), &mut NoHooks);
            assert!(
                outcome.is_success(),
                "AES-256 {aes256}, level {level:?}: {:?}",
                outcome.error
            );
            // The wrapped STORE DATA went through pcscd (CLA 84).
            assert!(outcome
                .record
                .apdu_trace
                .iter()
                .any(|e| e.apdu_hex.starts_with("84E2")));
            card.disconnect(CardDisposition::Reset).unwrap();
            let fob = bridge.stop_and_join().unwrap();
            assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
            assert_eq!(fob.stored_dgi_tags().len(), 6);
            context.wait_for_removal(&reader, WAIT).unwrap();
        }
    }
}

/// Stops the bridge (the fob leaves the field) right after a stage.
struct PullAfter {
    stage: Stage,
    control: BridgeControl,
    context: PcscContext,
    reader: String,
}

impl PipelineHooks for PullAfter {
    fn stage_finished(&mut self, stage: Stage, _elapsed: Duration) {
        if stage == self.stage {
            self.control.stop();
            // The next APDU goes out only once pcscd has seen the removal.
            let state = self
                .context
                .wait_for_removal(&self.reader, WAIT)
                .expect("pcscd reports the removal");
            assert!(!state.card_present);
        }
    }
}

#[test]
fn fob_pulled_mid_session_is_a_removed_card_and_pcscd_restart_recovers() {
    let mut stack = VpcdStack::start().unwrap();
    let reader = stack.reader_name(0);
    let context = PcscContext::establish().unwrap();
    let fob = VirtualFob::new(FobConfig::dev_sample()).unwrap();
    let bridge = insert(&stack, fob);
    context.wait_for_card(&reader, WAIT).unwrap();
    let mut card = context.connect(&reader).unwrap();
    let mut hooks = PullAfter {
        stage: Stage::ExternalAuthenticate,
        control: bridge.control().clone(),
        context: context.clone(),
        reader: reader.clone(),
    };
    let mut source = DevSampleSource::generated(2, None).unwrap();
    let outcome = provision_fob(
        &mut card,
        &mut source,
        &options(SecurityLevel::FULL),
        &mut hooks,
    );
    let error = outcome
        .error
        .expect("pulling the fob must fail the session");
    assert!(
        error.is_card_lost(),
        "expected a removed-card error, got {error}"
    );
    assert_eq!(error.stage, Stage::PayloadDelivery);
    drop(card);
    let fob = bridge.stop_and_join().unwrap();
    // A tear before the last block leaves the fob unpersonalized and consistent.
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Unpersonalized);
    assert!(fob.stored_dgi_tags().is_empty());

    // Restart pcscd; the re-presented fob is personalized on the new daemon.
    stack.pcscd_mut().restart().unwrap();
    let bridge = insert(&stack, fob);
    let context = PcscContext::establish().unwrap();
    context.wait_for_card(&reader, WAIT).unwrap();
    let mut card = context.connect(&reader).unwrap();
    let outcome = provision_fob(
        &mut card,
        &mut source,
        &options(SecurityLevel::FULL),
        &mut NoHooks,
    );
    assert!(outcome.is_success(), "{:?}", outcome.error);
    card.disconnect(CardDisposition::Reset).unwrap();
    let fob = bridge.stop_and_join().unwrap();
    assert_eq!(fob.applet_life_cycle(), AppletLifeCycle::Personalized);
}
