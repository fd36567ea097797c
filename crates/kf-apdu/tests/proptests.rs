//! Property tests: round trips and "parsers never panic".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::tlv::ParseOptions;
use kf_apdu::{ApduError, CommandApdu, Dgi, DgiStreamDecoder, ResponseApdu, StatusWord, Tag, Tlv};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = CommandApdu> {
    let data = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..=300),
        1 => proptest::collection::vec(any::<u8>(), 250..=70_000),
    ];
    let le = prop_oneof![
        Just(None),
        (1usize..=300).prop_map(Some),
        (1usize..=65_536).prop_map(Some),
        Just(Some(256)),
        Just(Some(65_536)),
    ];
    (any::<[u8; 4]>(), data, le, any::<bool>()).prop_map(|(h, data, le, sensitive)| {
        let mut c = CommandApdu::new(h[0], h[1], h[2], h[3]).with_data(data);
        c.set_le(le);
        if sensitive {
            c = c.sensitive();
        }
        c
    })
}

/// Header plus a body shaped like (but not always) a valid length layout.
fn near_valid_command_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 4]>(),
        proptest::collection::vec(any::<u8>(), 0..3),
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(h, prefix, data, suffix)| [&h[..], &prefix, &data, &suffix].concat())
}

fn dgi() -> impl Strategy<Value = Dgi> {
    let data = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..=300),
        1 => proptest::collection::vec(any::<u8>(), 250..=3000),
    ];
    (any::<u16>(), data).prop_map(|(tag, data)| Dgi::new(tag, data))
}

/// Builds a valid tag of 1–3 bytes directly from class, form and number bytes.
fn any_tag(constructed: bool) -> impl Strategy<Value = Tag> {
    let form = if constructed { 0x20u32 } else { 0 };
    (0u32..4, 0u32..31, 0u32..0x80, 0x80u32..0x100, 0usize..3).prop_map(
        move |(class, low, last, middle, extra)| {
            let first = (class << 6) | form;
            let value = match extra {
                0 => first | low,
                1 => ((first | 0x1F) << 8) | last,
                _ => ((first | 0x1F) << 16) | (middle << 8) | last,
            };
            Tag::new(value).unwrap()
        },
    )
}

fn tlv_tree() -> impl Strategy<Value = Tlv> {
    let leaf = (
        any_tag(false),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(t, v)| Tlv::primitive(t, v).unwrap());
    leaf.prop_recursive(6, 64, 6, |inner| {
        (any_tag(true), proptest::collection::vec(inner, 0..6))
            .prop_map(|(t, children)| Tlv::constructed(t, children).unwrap())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_round_trips_in_every_encoding(c in command()) {
        prop_assert_eq!(&CommandApdu::parse(&c.to_bytes()).unwrap(), &c);
        prop_assert_eq!(&CommandApdu::parse(&c.to_bytes_extended()).unwrap(), &c);
        match c.to_bytes_short() {
            Ok(short) => {
                prop_assert!(!c.is_extended());
                prop_assert_eq!(&short, &c.to_bytes());
                prop_assert_eq!(&CommandApdu::parse(&short).unwrap(), &c);
            }
            Err(e) => {
                prop_assert!(c.is_extended());
                prop_assert_eq!(e, ApduError::NeedsExtendedLength { lc: c.data().len(), le: c.le() });
            }
        }
    }

    #[test]
    fn command_parse_never_panics_and_accepts_only_exact_encodings(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            near_valid_command_bytes(),
        ]
    ) {
        if let Ok(c) = CommandApdu::parse(&bytes) {
            prop_assert!(c.to_bytes() == bytes || c.to_bytes_extended() == bytes);
        }
    }

    #[test]
    fn response_parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match ResponseApdu::parse(&bytes) {
            Ok(r) => {
                prop_assert_eq!(r.to_bytes(), bytes.clone());
                prop_assert_eq!(r.sw(), StatusWord::new(bytes[bytes.len() - 2], bytes[bytes.len() - 1]));
            }
            Err(e) => {
                prop_assert!(bytes.len() < 2);
                prop_assert_eq!(e, ApduError::ResponseTooShort { len: bytes.len() });
            }
        }
    }

    #[test]
    fn dgi_sequence_round_trips(dgis in proptest::collection::vec(dgi(), 0..6)) {
        let wire = Dgi::encode_sequence(&dgis).unwrap();
        prop_assert_eq!(&Dgi::decode_sequence(&wire).unwrap(), &dgis);
        if let [one] = dgis.as_slice() {
            prop_assert_eq!(&Dgi::decode(&wire).unwrap(), one);
        }
    }

    #[test]
    fn dgi_stream_matches_whole_decode_for_any_split(
        dgis in proptest::collection::vec(dgi(), 0..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let wire = Dgi::encode_sequence(&dgis).unwrap();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut decoder = DgiStreamDecoder::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            got.extend(decoder.feed(&wire[w[0]..w[1]]).unwrap());
        }
        decoder.finish().unwrap();
        prop_assert_eq!(got, dgis);
    }

    #[test]
    fn dgi_decoders_never_panic_and_agree(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cut in any::<prop::sample::Index>(),
    ) {
        let whole = Dgi::decode_sequence(&bytes);
        if let Ok(dgis) = &whole {
            // Strict decoding accepts only the canonical encoding.
            prop_assert_eq!(&Dgi::encode_sequence(dgis).unwrap(), &bytes);
        }
        if let Ok(one) = Dgi::decode(&bytes) {
            prop_assert_eq!(one.encode().unwrap(), bytes.clone());
        }
        let at = cut.index(bytes.len() + 1);
        let mut decoder = DgiStreamDecoder::new();
        let streamed = decoder
            .feed(&bytes[..at])
            .and_then(|mut a| { a.extend(decoder.feed(&bytes[at..])?); Ok(a) })
            .and_then(|a| decoder.finish().map(|()| a));
        // Error kinds may differ (a stream cannot tell truncation from "more
        // to come" until it ends); acceptance and results may not.
        prop_assert_eq!(streamed.ok(), whole.ok());
    }

    #[test]
    fn tlv_tree_round_trips(tree in tlv_tree()) {
        let wire = tree.encode();
        prop_assert_eq!(wire.len(), tree.encoded_len());
        let strict = ParseOptions { require_minimal_length: true, max_depth: 64 };
        prop_assert_eq!(&Tlv::parse_with(&wire, strict).unwrap(), &tree);
        prop_assert_eq!(tree.find(tree.tag()), Some(&tree));
    }

    #[test]
    fn tlv_parse_never_panics_and_strict_parse_is_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        // Only the absence of a panic is under test; errors are expected.
        let _ = Tlv::parse_all(&bytes);
        let strict = ParseOptions { require_minimal_length: true, ..ParseOptions::default() };
        if let Ok(list) = Tlv::parse_all_with(&bytes, strict) {
            let wire: Vec<u8> = list.iter().flat_map(Tlv::encode).collect();
            prop_assert_eq!(wire, bytes);
        }
    }

    #[test]
    fn tlv_parse_never_panics_on_nested_templates(
        depth in 0usize..80,
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        // Deep E0 nesting with lengths that may or may not match.
        let mut bytes = Vec::new();
        for i in 0..depth {
            bytes.push(0xE0);
            bytes.push(((depth - i) * 2 + tail.len()).min(0x7F) as u8);
        }
        bytes.extend_from_slice(&tail);
        // Only the absence of a panic is under test; errors are expected.
        let _ = Tlv::parse_all(&bytes);
        let deep = ParseOptions { max_depth: usize::MAX, ..ParseOptions::default() };
        let _ = Tlv::parse_all_with(&bytes, deep);
    }
}
