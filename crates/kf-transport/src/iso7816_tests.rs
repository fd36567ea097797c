use std::collections::VecDeque;

use super::*;
use crate::transport::{EXTENDED_APDU_MAX, SHORT_APDU_MAX};

/// A transport that checks each command against a script and replies.
struct Scripted {
    script: VecDeque<(Vec<u8>, Vec<u8>)>,
    max: usize,
    seen: Vec<(Vec<u8>, Sensitivity)>,
}

impl Scripted {
    fn new(max: usize, script: &[(&[u8], &[u8])]) -> Self {
        Self {
            script: script
                .iter()
                .map(|(c, r)| (c.to_vec(), r.to_vec()))
                .collect(),
            max,
            seen: Vec::new(),
        }
    }
    fn finished(&self) -> bool {
        self.script.is_empty()
    }
}

impl Transport for Scripted {
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        self.seen.push((apdu.bytes().to_vec(), apdu.sensitivity()));
        let (expected, resp) = self.script.pop_front().expect("unexpected extra command");
        assert_eq!(
            hex::encode(apdu.bytes()),
            hex::encode(expected),
            "command mismatch"
        );
        Ok(resp)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn max_apdu_len(&self) -> usize {
        self.max
    }
    fn was_reset(&mut self) -> bool {
        false
    }
}

/// A short-APDU transport running `script`.
fn short_transport(script: &[(&[u8], &[u8])]) -> Scripted {
    Scripted::new(SHORT_APDU_MAX, script)
}

/// Sends a public command through the driver with `config`.
fn send_public_with(
    t: &mut Scripted,
    apdu: &[u8],
    config: &DriverConfig,
) -> Result<Vec<u8>, TransportError> {
    transceive(t, RawApdu::new(apdu, Sensitivity::Public), config)
}

/// Sends a public command through the driver with the default configuration.
fn send_public(t: &mut Scripted, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
    send_public_with(t, apdu, &DriverConfig::default())
}

/// Sends `command` over a transport that plays `script`: the driver answers
/// `response` after running through the whole script.
fn assert_exchange(script: &[(&[u8], &[u8])], command: &[u8], response: &[u8]) {
    let mut t = short_transport(script);
    assert_eq!(send_public(&mut t, command).unwrap(), response);
    assert!(t.finished());
}

#[test]
fn plain_9000_passes_through() {
    assert_exchange(
        &[(&[0, 0xA4, 4, 0, 1, 0xA0], &[0x90, 0])],
        &[0, 0xA4, 4, 0, 1, 0xA0],
        &[0x90, 0],
    );
}

#[test]
fn get_response_loop_concatenates_chunks() {
    let mut t = short_transport(&[
        (&[0x84, 0xCA, 0, 0x66, 0], &[0xAA, 0x61, 0x02]),
        (&[0x00, 0xC0, 0, 0, 0x02], &[0xBB, 0xCC, 0x61, 0x00]),
        (&[0x00, 0xC0, 0, 0, 0x00], &[0xDD, 0x90, 0x00]),
    ]);
    let mut driver = Iso7816Driver::new(&mut t);
    let resp = driver
        .transmit(RawApdu::public(&[0x84, 0xCA, 0, 0x66, 0]))
        .unwrap();
    assert_eq!(resp, vec![0xAA, 0xBB, 0xCC, 0xDD, 0x90, 0x00]);
    assert!(t.finished());
}

#[test]
fn get_response_keeps_logical_channel() {
    assert_exchange(
        &[
            (&[0x81, 0xCA, 0, 0x66, 0], &[0x61, 0x01]),
            (&[0x01, 0xC0, 0, 0, 0x01], &[0x42, 0x90, 0]),
        ],
        &[0x81, 0xCA, 0, 0x66, 0],
        &[0x42, 0x90, 0],
    );
}

#[test]
fn get_response_loop_is_bounded() {
    let script: Vec<(Vec<u8>, Vec<u8>)> =
        std::iter::once((vec![0, 0xB0, 0, 0, 0], vec![0x61, 0x01]))
            .chain((0..3).map(|_| (vec![0, 0xC0, 0, 0, 1], vec![0x00, 0x61, 0x01])))
            .collect();
    let refs: Vec<(&[u8], &[u8])> = script
        .iter()
        .map(|(c, r)| (c.as_slice(), r.as_slice()))
        .collect();
    let mut t = short_transport(&refs);
    let config = DriverConfig {
        max_get_response_rounds: 3,
        ..DriverConfig::default()
    };
    assert_read_binary_refused(&mut t, &config, "after 3 GET RESPONSE");
    assert!(t.finished());
}

#[test]
fn total_response_length_is_bounded() {
    let big = [vec![0u8; 200], vec![0x61, 0x00]].concat();
    let mut t = short_transport(&[(&[0, 0xB0, 0, 0, 0], &big), (&[0, 0xC0, 0, 0, 0], &big)]);
    let config = DriverConfig {
        max_response_len: 300,
        ..DriverConfig::default()
    };
    assert_read_binary_refused(&mut t, &config, "exceeds 300");
}

/// READ BINARY under `config` fails with a protocol error that names `why`.
fn assert_read_binary_refused(t: &mut Scripted, config: &DriverConfig, why: &str) {
    let err = send_public_with(t, &[0, 0xB0, 0, 0, 0], config).unwrap_err();
    assert!(
        matches!(err, TransportError::Protocol(ref m) if m.contains(why)),
        "{err}"
    );
}

#[test]
fn wrong_le_is_reissued_once_with_corrected_le() {
    assert_exchange(
        &[
            (&[0, 0xB0, 0, 0, 0x10], &[0x6C, 0x04]),
            (&[0, 0xB0, 0, 0, 0x04], &[1, 2, 3, 4, 0x90, 0]),
        ],
        &[0, 0xB0, 0, 0, 0x10],
        &[1, 2, 3, 4, 0x90, 0],
    );
}

#[test]
fn second_wrong_le_is_returned_not_looped() {
    assert_exchange(
        &[
            (&[0, 0xB0, 0, 0, 0x10], &[0x6C, 0x04]),
            (&[0, 0xB0, 0, 0, 0x04], &[0x6C, 0x05]),
        ],
        &[0, 0xB0, 0, 0, 0x10],
        &[0x6C, 0x05],
    );
}

#[test]
fn wrong_le_then_more_data() {
    assert_exchange(
        &[
            (&[0, 0xCA, 0, 0x66, 0x01], &[0x6C, 0x00]),
            (&[0, 0xCA, 0, 0x66, 0x00], &[0xAB, 0x61, 0x01]),
            (&[0, 0xC0, 0, 0, 0x01], &[0xCD, 0x90, 0x00]),
        ],
        &[0, 0xCA, 0, 0x66, 0x01],
        &[0xAB, 0xCD, 0x90, 0x00],
    );
}

#[test]
fn sensitivity_is_kept_for_get_response() {
    let mut t = short_transport(&[
        (&[0x84, 0xE2, 0x80, 0, 1, 0x55], &[0x61, 0x01]),
        (&[0, 0xC0, 0, 0, 1], &[0x01, 0x90, 0]),
    ]);
    transceive(
        &mut t,
        RawApdu::new(&[0x84, 0xE2, 0x80, 0, 1, 0x55], Sensitivity::Sensitive),
        &DriverConfig::default(),
    )
    .unwrap();
    assert!(t.seen.iter().all(|(_, s)| *s == Sensitivity::Sensitive));
}

#[test]
fn extended_apdu_refused_on_short_only_transport() {
    let mut apdu = vec![0x80, 0xE2, 0, 0, 0, 0x01, 0x2C];
    apdu.extend(std::iter::repeat_n(0x11, 300));
    let mut short = short_transport(&[]);
    let err = send_public(&mut short, &apdu).unwrap_err();
    assert_eq!(
        err,
        TransportError::ApduTooLong {
            len: 307,
            max: SHORT_APDU_MAX
        }
    );
    // A short-form case 2E (7 bytes) is also refused: the reader cannot carry it.
    let err = send_public(&mut short, &[0, 0xB0, 0, 0, 0, 1, 0]).unwrap_err();
    assert!(matches!(err, TransportError::ApduTooLong { .. }));
    assert!(short.seen.is_empty());

    let mut ext = Scripted::new(EXTENDED_APDU_MAX, &[(&apdu, &[0x90, 0])]);
    assert_eq!(send_public(&mut ext, &apdu).unwrap(), vec![0x90, 0]);
}

#[test]
fn malformed_command_and_response_are_errors() {
    let mut t = short_transport(&[(&[0, 0xA4, 4, 0], &[0x90])]);
    assert!(matches!(
        send_public(&mut t, &[0, 0xA4]),
        Err(TransportError::InvalidApdu(_))
    ));
    assert!(matches!(
        send_public(&mut t, &[0, 0xA4, 4, 0]),
        Err(TransportError::Protocol(_))
    ));
}

#[test]
fn read_uid_returns_data_or_typed_error() {
    let mut t = short_transport(&[
        (&GET_UID_APDU, &[1, 2, 3, 4, 0x90, 0]),
        (&GET_UID_APDU, &[0x6A, 0x81]),
    ]);
    assert_eq!(read_uid(&mut t).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(
        read_uid(&mut t).unwrap_err(),
        TransportError::UidUnavailable { sw: 0x6A81 }
    );
}

#[test]
fn with_ne_rewrites_le_and_keeps_the_length_form() {
    let public = |b: &'static [u8]| RawApdu::new(b, Sensitivity::Public);
    assert_eq!(
        with_ne(public(&[0, 0xB0, 0, 0, 0]), 0x10).unwrap(),
        [0, 0xB0, 0, 0, 0x10]
    );
    assert_eq!(
        with_ne(public(&[0, 0xCA, 0, 0x66]), 256).unwrap(),
        [0, 0xCA, 0, 0x66, 0]
    );
    assert_eq!(
        with_ne(public(&[0, 0xA4, 4, 0, 1, 0xA0]), 8).unwrap(),
        [0, 0xA4, 4, 0, 1, 0xA0, 8]
    );
    // Ne above 256 needs the extended form.
    assert_eq!(
        with_ne(public(&[0, 0xB0, 0, 0, 0]), 300).unwrap(),
        [0, 0xB0, 0, 0, 0, 0x01, 0x2C]
    );
    // An extended command stays extended even when Ne would fit a short Le.
    assert_eq!(
        with_ne(public(&[0, 0xB0, 0, 0, 0, 0x01, 0x2C]), 0x10).unwrap(),
        [0, 0xB0, 0, 0, 0, 0x00, 0x10]
    );
    assert!(matches!(
        with_ne(public(&[0, 0xB0, 0, 0, 0]), 0),
        Err(TransportError::InvalidApdu(
            kf_apdu::ApduError::LeOutOfRange(0)
        ))
    ));
}

#[test]
fn an_extended_command_is_refused_by_a_short_only_transport() {
    let mut apdu = vec![0x80, 0xE2, 0, 0, 0, 0x00, 0x04];
    apdu.extend([1, 2, 3, 4]);
    let mut t = short_transport(&[]);
    assert!(matches!(
        send_public(&mut t, &apdu),
        Err(TransportError::ApduTooLong { len: 11, .. })
    ));
}
