//! DGI codec and the streaming decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::dgi::MAX_DGI_LEN;
use kf_apdu::{Dgi, DgiError, DgiStreamDecoder};

#[test]
fn length_switches_form_at_255() {
    assert_eq!(
        Dgi::new(0xA001, vec![0; 254]).encode().unwrap()[..3],
        [0xA0, 0x01, 0xFE]
    );
    assert_eq!(
        Dgi::new(0xA001, vec![0; 255]).encode().unwrap()[..5],
        [0xA0, 0x01, 0xFF, 0x00, 0xFF]
    );
    assert_eq!(Dgi::new(0xA001, vec![0; 254]).encoded_len(), 257);
    assert_eq!(Dgi::new(0xA001, vec![0; 255]).encoded_len(), 260);
    let max = Dgi::new(0x0101, vec![7; MAX_DGI_LEN]);
    let wire = max.encode().unwrap();
    assert_eq!(wire[..5], [0x01, 0x01, 0xFF, 0xFF, 0xFF]);
    assert_eq!(Dgi::decode(&wire).unwrap(), max);
}

#[test]
fn too_long_value_is_an_error_and_leaves_output_untouched() {
    let dgi = Dgi::new(0xA002, vec![0; MAX_DGI_LEN + 1]);
    let mut out = vec![1, 2];
    assert_eq!(
        dgi.encode_into(&mut out),
        Err(DgiError::ValueTooLong {
            tag: 0xA002,
            length: MAX_DGI_LEN + 1
        })
    );
    assert_eq!(out, [1, 2]);
}

#[test]
fn decode_errors_are_specific() {
    assert_eq!(
        Dgi::decode(&[0xA0, 0x01]),
        Err(DgiError::TruncatedHeader {
            needed: 3,
            available: 2
        })
    );
    assert_eq!(
        Dgi::decode(&[0xA0, 0x01, 0xFF, 0x01]),
        Err(DgiError::TruncatedHeader {
            needed: 5,
            available: 4
        })
    );
    assert_eq!(
        Dgi::decode(&[0xA0, 0x01, 0x03, 1]),
        Err(DgiError::TruncatedValue {
            tag: 0xA001,
            declared: 3,
            available: 1
        })
    );
    assert_eq!(
        Dgi::decode(&[0xA0, 0x01, 0xFF, 0x00, 0xFE]),
        Err(DgiError::NonMinimalLength {
            tag: 0xA001,
            length: 254
        })
    );
    assert_eq!(
        Dgi::decode(&[0xA0, 0x01, 0x00, 0xAA]),
        Err(DgiError::TrailingBytes { count: 1 })
    );
}

#[test]
fn sequence_round_trip_and_prefix() {
    let dgis = vec![
        Dgi::new(0xA001, b"SPID".to_vec()),
        Dgi::new(0xA002, vec![0x30; 424]),
        Dgi::new(0xA006, vec![]),
    ];
    let wire = Dgi::encode_sequence(&dgis).unwrap();
    assert_eq!(Dgi::decode_sequence(&wire).unwrap(), dgis);
    let (first, used) = Dgi::decode_prefix(&wire).unwrap();
    assert_eq!(first, dgis[0]);
    assert_eq!(used, 7);
    assert_eq!(Dgi::decode_sequence(&[]).unwrap(), vec![]);
    // Dropping the whole empty A006 DGI (3 bytes) leaves a valid sequence;
    // dropping part of it does not.
    assert_eq!(
        Dgi::decode_sequence(&wire[..wire.len() - 3]).unwrap(),
        dgis[..2]
    );
    assert_eq!(
        Dgi::decode_sequence(&wire[..wire.len() - 1]),
        Err(DgiError::TruncatedHeader {
            needed: 3,
            available: 2
        })
    );
}

#[test]
fn sensitive_dgi_debug_is_redacted() {
    let secret = Dgi::new_sensitive(0xA003, vec![0xDE, 0xAD, 0xBE, 0xEF]);
    let text = format!("{secret:?}");
    assert_eq!(text, "Dgi(A003, len=4, [redacted])");
    let plain = Dgi::new(0xA001, vec![0xAB]);
    assert_eq!(format!("{plain:?}"), "Dgi(A001, len=1, AB)");
    // Equality ignores the flag but not tag or value.
    assert_eq!(secret, Dgi::new(0xA003, vec![0xDE, 0xAD, 0xBE, 0xEF]));
    assert_ne!(secret, Dgi::new(0xA004, vec![0xDE, 0xAD, 0xBE, 0xEF]));
    assert_ne!(secret, Dgi::new(0xA003, vec![0xDE, 0xAD, 0xBE]));
}

/// Splits like the provisioning specification does (245-byte blocks, DGIs crossing blocks).
fn blocks(wire: &[u8], size: usize) -> Vec<&[u8]> {
    wire.chunks(size).collect()
}

#[test]
fn stream_decoder_reassembles_dgis_across_blocks() {
    let dgis = vec![
        Dgi::new(0xA003, vec![0x11; 48]),
        Dgi::new(0xA001, vec![0x41; 40]),
        Dgi::new(0xA002, vec![0x30; 424]),
        Dgi::new(0xA004, vec![0x30; 435]),
        Dgi::new(0xA005, vec![0x30; 722]),
        Dgi::new(0xA006, vec![0x22; 16]),
    ];
    let wire = Dgi::encode_sequence(&dgis).unwrap();
    for size in [1, 2, 3, 4, 5, 7, 245, 255, wire.len()] {
        let mut decoder = DgiStreamDecoder::with_sensitive_tags(&[0xA003]);
        let mut got = Vec::new();
        for block in blocks(&wire, size) {
            got.extend(decoder.feed(block).unwrap());
        }
        assert!(decoder.is_idle(), "block size {size}");
        decoder.finish().unwrap();
        assert_eq!(got.len(), dgis.len(), "block size {size}");
        for (g, d) in got.iter().zip(&dgis) {
            assert_eq!((g.tag, &g.data), (d.tag, &d.data), "block size {size}");
            assert_eq!(g.sensitive, g.tag == 0xA003);
        }
    }
}

#[test]
fn stream_decoder_emits_as_soon_as_complete() {
    let mut decoder = DgiStreamDecoder::new();
    assert!(decoder.feed(&[0xA0, 0x01, 0x02, 0xAA]).unwrap().is_empty());
    assert_eq!(decoder.pending_len(), 4);
    let out = decoder.feed(&[0xBB, 0xA0, 0x02]).unwrap();
    assert_eq!(out, vec![Dgi::new(0xA001, vec![0xAA, 0xBB])]);
    assert_eq!(decoder.pending_len(), 2);
    assert_eq!(
        decoder.finish(),
        Err(DgiError::IncompleteAtEnd { pending: 2 })
    );
}

#[test]
fn stream_decoder_fails_closed_on_malformed_length() {
    let mut decoder = DgiStreamDecoder::new();
    decoder.feed(&[0xA0, 0x01, 0xFF]).unwrap();
    let err = decoder.feed(&[0x00, 0x10, 1, 2, 3]).unwrap_err();
    assert_eq!(
        err,
        DgiError::NonMinimalLength {
            tag: 0xA001,
            length: 16
        }
    );
    // Every later call returns the same error, even for valid input.
    assert_eq!(decoder.feed(&[0xA0, 0x02, 0x00]).unwrap_err(), err);
    assert!(!decoder.is_idle());
    assert_eq!(decoder.pending_len(), 0);
    assert_eq!(decoder.finish().unwrap_err(), err);
}
