//! vpcd protocol tests against a fake vpcd (a TcpListener in this process).

use std::io::{Read, Write};
use std::net::TcpListener;

use super::*;
use crate::echo::{EchoCard, ECHO_CARD_ATR};

fn fast_config(addr: String) -> VpcdConfig {
    VpcdConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        poll_interval: Duration::from_millis(10),
        ..VpcdConfig::new(addr)
    }
}

fn accept(listener: &TcpListener) -> VpcdPeer {
    VpcdPeer::accept(listener, Duration::from_secs(5)).unwrap()
}

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// A bridge serving `card` to a fake vpcd, and that vpcd's end of the connection.
fn bridged(card: EchoCard) -> (TcpListener, BridgeHandle<EchoCard>, VpcdPeer) {
    let (l, addr) = listener();
    let bridge = BridgeHandle::spawn(card, fast_config(addr)).unwrap();
    let peer = accept(&l);
    (l, bridge, peer)
}

/// The echo card refuses the echo of `byte` ('6F00') until it is powered on,
/// and echoes it then.
fn assert_refused_until_powered_on(peer: &mut VpcdPeer, byte: u8) {
    let echo = [0x80, 0x10, 0, 0, 1, byte];
    assert_eq!(peer.exchange(&echo).unwrap(), vec![0x6F, 0x00]);
    peer.send(&[CTRL_POWER_ON]).unwrap();
    assert_eq!(peer.exchange(&echo).unwrap(), vec![byte, 0x90, 0x00]);
}

#[test]
fn control_codes_and_apdus_follow_the_vpcd_protocol() {
    let (_l, bridge, mut vpcd) = bridged(EchoCard::new(&[9, 8, 7, 6]));

    assert_eq!(
        vpcd.exchange(&[CTRL_GET_ATR]).unwrap(),
        ECHO_CARD_ATR.to_vec()
    );
    // Not powered yet: the echo card refuses APDUs.
    assert_refused_until_powered_on(&mut vpcd, 0x33);
    assert_eq!(
        vpcd.exchange(&[0xFF, 0xCA, 0, 0, 0]).unwrap(),
        vec![9, 8, 7, 6, 0x90, 0x00]
    );
    vpcd.send(&[CTRL_RESET]).unwrap();
    let big: Vec<u8> = (0..255u8).collect();
    let apdu = [&[0x80, 0x10, 0, 0, 0xFF][..], &big].concat();
    assert_eq!(
        vpcd.exchange(&apdu).unwrap(),
        [big.as_slice(), &[0x90, 0x00]].concat()
    );
    vpcd.send(&[CTRL_POWER_OFF]).unwrap();
    assert_eq!(
        vpcd.exchange(&[0x80, 0x10, 0, 0, 1, 0x33]).unwrap(),
        vec![0x6F, 0x00]
    );
    // Unknown control code: ignored, the link stays usable.
    vpcd.send(&[0x07]).unwrap();
    assert_eq!(
        vpcd.exchange(&[CTRL_GET_ATR]).unwrap(),
        ECHO_CARD_ATR.to_vec()
    );

    assert_eq!(bridge.control().apdus(), 5);
    let card = bridge.stop_and_join().unwrap();
    assert_eq!(card.apdus_processed(), 3);
}

#[test]
fn frames_split_across_writes_are_reassembled() {
    let (_l, bridge, mut vpcd) = bridged(EchoCard::default());
    vpcd.send(&[CTRL_POWER_ON]).unwrap();
    let apdu = [0x80, 0x10, 0, 0, 2, 0xAA, 0xBB];
    vpcd.stream_mut().write_all(&[0x00]).unwrap();
    thread::sleep(Duration::from_millis(30));
    vpcd.stream_mut().write_all(&[0x07, 0x80, 0x10]).unwrap();
    thread::sleep(Duration::from_millis(30));
    // The rest of this frame plus a whole second frame in one write.
    let mut tail = apdu[2..].to_vec();
    tail.extend_from_slice(&[0x00, 0x01, CTRL_GET_ATR]);
    vpcd.stream_mut().write_all(&tail).unwrap();
    assert_eq!(vpcd.recv().unwrap(), vec![0xAA, 0xBB, 0x90, 0x00]);
    assert_eq!(vpcd.recv().unwrap(), ECHO_CARD_ATR.to_vec());
    bridge.stop_and_join().unwrap();
}

#[test]
fn reconnects_after_the_connection_drops_and_powers_the_card_off() {
    let (l, bridge, mut first) = bridged(EchoCard::default());
    first.send(&[CTRL_POWER_ON]).unwrap();
    assert_eq!(
        first.exchange(&[0x80, 0x10, 0, 0, 1, 1]).unwrap(),
        vec![1, 0x90, 0]
    );
    drop(first);

    let mut second = accept(&l);
    // The drop powered the card off: a new power-on is needed.
    assert_refused_until_powered_on(&mut second, 2);
    assert!(bridge.wait_connected(Duration::from_secs(5)));
    assert_eq!(bridge.control().connections(), 2);
    let card = bridge.stop_and_join().unwrap();
    assert!(!card.is_powered());
}

#[test]
fn reconnects_when_vpcd_comes_back_on_the_same_port() {
    let (l, addr) = listener();
    drop(l);
    let bridge = BridgeHandle::spawn(EchoCard::default(), fast_config(addr.clone())).unwrap();
    wait_for_failed_connect(&bridge);
    assert!(!bridge.control().is_connected());
    let l = TcpListener::bind(&addr).unwrap();
    let mut vpcd = accept(&l);
    assert_eq!(
        vpcd.exchange(&[CTRL_GET_ATR]).unwrap(),
        ECHO_CARD_ATR.to_vec()
    );
    bridge.stop_and_join().unwrap();
}

#[test]
fn stop_returns_while_connected_and_while_disconnected() {
    let (_l, bridge, mut vpcd) = bridged(EchoCard::default());
    assert!(bridge.wait_connected(Duration::from_secs(5)));
    bridge.stop_and_join().unwrap();
    // The bridge closed its side: vpcd reads EOF.
    let mut buf = [0u8; 1];
    assert_eq!(vpcd.stream_mut().read(&mut buf).unwrap(), 0);

    let (l2, addr2) = listener();
    drop(l2);
    let bridge = BridgeHandle::spawn(EchoCard::default(), fast_config(addr2)).unwrap();
    wait_for_failed_connect(&bridge);
    bridge.stop_and_join().unwrap();
}

/// Waits until the bridge found no vpcd listening at least once.
fn wait_for_failed_connect(bridge: &BridgeHandle<EchoCard>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bridge.control().failed_connects() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge never tried to connect"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn unresolvable_address_is_an_error() {
    let mut card = EchoCard::default();
    let err = serve(
        &mut card,
        &VpcdConfig::new("not an address"),
        &BridgeControl::new(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TransportError::Io(ref m) if m.contains("cannot resolve")),
        "{err}"
    );
}

#[test]
fn frame_reader_waits_for_complete_frames() {
    let mut reader = FrameReader::default();
    let mut input: &[u8] = &[0x00, 0x03, 0xAA];
    assert_eq!(reader.poll(&mut input).unwrap(), None);
    let mut input: &[u8] = &[0xBB, 0xCC, 0x00, 0x00];
    assert_eq!(
        reader.poll(&mut input).unwrap(),
        Some(vec![0xAA, 0xBB, 0xCC])
    );
    let mut empty: &[u8] = &[];
    assert_eq!(reader.poll(&mut empty).unwrap(), Some(vec![]));
    assert_eq!(
        reader.poll(&mut empty).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
}
