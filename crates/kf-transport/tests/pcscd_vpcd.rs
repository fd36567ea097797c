//! Real-stack tests: PC/SC backend → pcscd → vsmartcard vpcd driver → vpcd
//! bridge → EchoCard, all started and stopped by these tests.
//!
//! Needs the Debian packages `pcscd`, `vsmartcard-vpcd`, `libpcsclite-dev` and
//! root (pcscd creates /run/pcscd). Missing pieces make the tests FAIL with a
//! message; they never pass silently. Only one pcscd can run on a machine, so
//! the tests are serialized with a lock.
#![cfg(all(unix, feature = "pcsc"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::thread;
use std::time::{Duration, Instant};

use kf_testkit::VpcdStack;
use kf_transport::echo::ECHO_CARD_ATR;
use kf_transport::pcsc::{CardDisposition, ConnectOptions, PcscContext, ShareMode};
use kf_transport::vpcd::BridgeHandle;
use kf_transport::{
    list_readers_with_status, read_uid, EchoCard, Iso7816Driver, RawApdu, Transport, TransportError,
};

const UID: [u8; 7] = [0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6];
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn start_stack() -> VpcdStack {
    VpcdStack::start().unwrap()
}

fn start_card(stack: &VpcdStack) -> BridgeHandle<EchoCard> {
    stack
        .insert(EchoCard::new(&UID), Duration::from_secs(10))
        .unwrap()
}

fn echo_apdu(data: &[u8]) -> Vec<u8> {
    [&[0x80, 0x10, 0x00, 0x00, data.len() as u8][..], data].concat()
}

/// A stack with an EchoCard in reader 0, once a context sees it there.
fn stack_with_card() -> (VpcdStack, String, BridgeHandle<EchoCard>, PcscContext) {
    let stack = start_stack();
    let reader = stack.reader_name(0);
    let bridge = start_card(&stack);
    let ctx = PcscContext::establish().unwrap();
    ctx.wait_for_card(&reader, WAIT).unwrap();
    (stack, reader, bridge, ctx)
}

/// The EchoCard answers a one-byte echo with that byte and 90 00.
#[track_caller]
fn assert_echoes(card: &mut impl Transport, byte: u8) {
    assert_eq!(
        card.transmit(RawApdu::public(&echo_apdu(&[byte]))).unwrap(),
        vec![byte, 0x90, 0x00]
    );
}

/// Stops pcscd; PC/SC then reports that no service runs.
#[track_caller]
fn stop_pcscd(stack: &mut VpcdStack) {
    stack.pcscd_mut().stop().unwrap();
    assert_eq!(
        PcscContext::establish().unwrap_err(),
        TransportError::NoService
    );
    assert_eq!(
        list_readers_with_status().unwrap_err(),
        TransportError::NoService
    );
}

#[test]
fn lists_virtual_readers_and_card_presence() {
    let stack = start_stack();
    let reader = stack.reader_name(0);
    let ctx = PcscContext::establish().unwrap();
    let names = ctx.list_readers().unwrap();
    assert!(names.contains(&reader), "readers: {names:?}");
    assert!(names.contains(&stack.reader_name(1)), "readers: {names:?}");
    assert!(!ctx.reader_status(&reader).unwrap().card_present);

    let bridge = start_card(&stack);
    let info = ctx.wait_for_card(&reader, WAIT).unwrap();
    assert_eq!(
        info.atr.as_deref(),
        Some(hex::encode_upper(ECHO_CARD_ATR).as_str())
    );

    let all = list_readers_with_status().unwrap();
    let slot0 = all.iter().find(|r| r.name == reader).unwrap();
    let slot1 = all.iter().find(|r| r.name == stack.reader_name(1)).unwrap();
    assert!(slot0.card_present && !slot1.card_present, "{all:?}");
    let json = serde_json::to_value(&all).unwrap();
    assert_eq!(json[0]["name"], serde_json::json!(all[0].name));

    assert!(matches!(
        ctx.reader_status("No Such Reader 00 00"),
        Err(TransportError::NoReader(_))
    ));
    bridge.stop_and_join().unwrap();
}

#[test]
fn no_readers_is_an_empty_list_and_no_service_is_typed() {
    let mut stack = VpcdStack::start_without_readers().unwrap();
    let ctx = PcscContext::establish().unwrap();
    assert_eq!(ctx.list_readers().unwrap(), Vec::<String>::new());
    assert_eq!(list_readers_with_status().unwrap(), vec![]);
    assert!(matches!(
        ctx.connect("Virtual PCD 00 00"),
        Err(TransportError::NoReader(_))
    ));
    stop_pcscd(&mut stack);
}

#[test]
fn detects_insertion_and_removal_with_timeout_and_cancel() {
    let stack = start_stack();
    let reader = stack.reader_name(0);
    let ctx = PcscContext::establish().unwrap();
    assert_eq!(
        ctx.wait_for_card(&reader, Some(Duration::from_millis(300)))
            .unwrap_err(),
        TransportError::Timeout
    );

    let bridge = start_card(&stack);
    assert!(ctx.wait_for_card(&reader, WAIT).unwrap().card_present);
    bridge.stop_and_join().unwrap();
    assert!(!ctx.wait_for_removal(&reader, WAIT).unwrap().card_present);

    // A wait without timeout is ended from another thread.
    let canceller = ctx.canceller();
    let waiter = {
        let ctx = ctx.clone();
        let reader = reader.clone();
        thread::spawn(move || ctx.wait_for_card(&reader, None))
    };
    // A cancel that lands before the waiter blocks is lost, so cancel until
    // the waiter returns, failing loudly if it never does.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !waiter.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the cancelled wait did not return"
        );
        canceller.cancel().unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        waiter.join().unwrap().unwrap_err(),
        TransportError::Cancelled
    );
}

#[test]
fn reads_uid_transmits_and_holds_the_card_exclusively() {
    let (_stack, reader, bridge, ctx) = stack_with_card();

    let mut card = ctx.connect(&reader).unwrap();
    assert_eq!(card.atr().unwrap(), ECHO_CARD_ATR.to_vec());
    assert_eq!(card.uid().unwrap(), UID.to_vec());
    assert_echoes(&mut card, 0x42);
    let big: Vec<u8> = (0..255u8).collect();
    assert_eq!(
        card.transmit(RawApdu::public(&echo_apdu(&big))).unwrap(),
        [big.as_slice(), &[0x90, 0x00]].concat()
    );

    // Exclusive: a second connection from another context is refused.
    let other = PcscContext::establish().unwrap();
    let refused = other.connect_with(
        &reader,
        ConnectOptions {
            share: ShareMode::Shared,
            ..Default::default()
        },
    );
    assert_eq!(refused.unwrap_err(), TransportError::SharingViolation);

    // 61xx through the real stack: the driver collects 200 bytes with GET RESPONSE.
    let data: Vec<u8> = (0..200u8).rev().collect();
    let mut apdu = echo_apdu(&data);
    apdu[2] = 0x01;
    let mut driver = Iso7816Driver::new(&mut card);
    assert_eq!(
        driver.transmit(RawApdu::public(&apdu)).unwrap(),
        [data.as_slice(), &[0x90, 0x00]].concat()
    );

    // Warm reset through SCardReconnect.
    card.reset().unwrap();
    assert!(card.was_reset());
    assert!(!card.was_reset());
    assert_eq!(read_uid(&mut card).unwrap(), UID.to_vec());

    // A transaction is a Transport too.
    {
        let mut tx = card.transaction().unwrap();
        assert_echoes(&mut tx, 7);
        tx.end(CardDisposition::Leave).unwrap();
    }
    card.disconnect(CardDisposition::Unpower).unwrap();
    // Once released, the other context may connect.
    let mut second = other.connect(&reader).unwrap();
    assert_echoes(&mut second, 9);
    second.disconnect(CardDisposition::Leave).unwrap();
    bridge.stop_and_join().unwrap();
}

#[test]
fn extended_length_apdu_over_vpcd() {
    let (_stack, reader, bridge, ctx) = stack_with_card();
    let mut card = ctx.connect(&reader).unwrap();
    let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let mut apdu = vec![0x80, 0x10, 0x00, 0x00, 0x00, 0x02, 0x58];
    apdu.extend_from_slice(&data);
    // Without an advertised limit the driver refuses before sending.
    let mut driver = Iso7816Driver::new(&mut card);
    assert!(matches!(
        driver.transmit(RawApdu::public(&apdu)),
        Err(TransportError::ApduTooLong { .. })
    ));
    card.set_max_apdu_len(kf_transport::EXTENDED_APDU_MAX);
    let mut driver = Iso7816Driver::new(&mut card);
    assert_eq!(
        driver.transmit(RawApdu::public(&apdu)).unwrap(),
        [data.as_slice(), &[0x90, 0x00]].concat()
    );
    drop(card);
    bridge.stop_and_join().unwrap();
}

#[test]
fn killed_card_gives_card_removed_and_reset_recovers() {
    let (stack, reader, bridge, ctx) = stack_with_card();
    let mut card = ctx.connect(&reader).unwrap();
    assert_echoes(&mut card, 1);

    bridge.stop_and_join().unwrap();
    ctx.wait_for_removal(&reader, WAIT).unwrap();
    let err = card
        .transmit(RawApdu::public(&echo_apdu(&[2])))
        .unwrap_err();
    assert!(
        matches!(err, TransportError::CardRemoved | TransportError::NoCard),
        "expected a removed-card error, got {err:?}"
    );
    assert!(err.is_session_lost());

    let bridge = start_card(&stack);
    ctx.wait_for_card(&reader, WAIT).unwrap();
    card.reset().unwrap();
    assert!(card.was_reset());
    assert_echoes(&mut card, 3);
    drop(card);
    bridge.stop_and_join().unwrap();
}

#[test]
fn pcscd_restart_is_survived_by_bridge_and_host() {
    let (mut stack, reader, bridge, ctx) = stack_with_card();
    let mut card = ctx.connect(&reader).unwrap();
    assert_echoes(&mut card, 1);

    let old_pid = stack.pcscd().pid().unwrap();
    stop_pcscd(&mut stack);
    let err = card
        .transmit(RawApdu::public(&echo_apdu(&[2])))
        .unwrap_err();
    assert_ne!(
        err,
        TransportError::Timeout,
        "a dead service must not look like a timeout"
    );
    drop(card);

    stack
        .pcscd_mut()
        .restart()
        .unwrap_or_else(|e| panic!("pcscd restart failed: {e}"));
    assert_ne!(stack.pcscd().pid().unwrap(), old_pid);
    let ctx = PcscContext::establish().unwrap();
    ctx.wait_for_card(&reader, WAIT).unwrap();
    assert!(
        bridge.control().connections() >= 2,
        "bridge did not reconnect"
    );
    let mut card = ctx.connect(&reader).unwrap();
    assert_echoes(&mut card, 3);
    drop(card);
    bridge.stop_and_join().unwrap();
}

#[test]
fn reset_by_another_application_is_reported_once_then_recovered() {
    let (_stack, reader, bridge, ctx) = stack_with_card();
    let shared = ConnectOptions {
        share: ShareMode::Shared,
        ..Default::default()
    };
    let mut ours = ctx.connect_with(&reader, shared).unwrap();
    let other_ctx = PcscContext::establish().unwrap();
    let mut theirs = other_ctx.connect_with(&reader, shared).unwrap();
    assert_echoes(&mut ours, 1);

    theirs.reset().unwrap();
    assert_eq!(
        ours.transmit(RawApdu::public(&echo_apdu(&[2])))
            .unwrap_err(),
        TransportError::CardReset
    );
    assert!(
        ours.was_reset(),
        "the reset must be visible to the session owner"
    );
    assert_echoes(&mut ours, 3);
    theirs.disconnect(CardDisposition::Leave).unwrap();
    ours.disconnect(CardDisposition::Leave).unwrap();
    bridge.stop_and_join().unwrap();
}
