//! BER-TLV codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::tlv::{self, ParseOptions, TagClass, DEFAULT_MAX_DEPTH, MAX_DEPTH};
use kf_apdu::{Tag, Tlv, TlvError, TlvValue};

fn tag(v: u32) -> Tag {
    Tag::new(v).unwrap()
}

#[test]
fn tag_validation() {
    for ok in [0x4F, 0x5A, 0xE0, 0x5F50, 0x9F7F, 0xBF0C, 0x5F8101, 0x00] {
        assert_eq!(Tag::new(ok).unwrap().as_u32(), ok, "{ok:X}");
    }
    for bad in [0x1F, 0x5F, 0x5F81, 0x0150, 0x4F01, 0x9F818101, 0x5F818181] {
        assert_eq!(Tag::new(bad), Err(TlvError::InvalidTag), "{bad:X}");
    }
    let t = tag(0xBF0C);
    assert_eq!(t.len(), 2);
    assert_eq!(t.to_bytes(), [0xBF, 0x0C]);
    assert!(t.is_constructed());
    assert_eq!(t.class(), TagClass::ContextSpecific);
    assert_eq!(tag(0x4F).class(), TagClass::Application);
    assert_eq!(tag(0x04).class(), TagClass::Universal);
    assert_eq!(tag(0xDF20).class(), TagClass::Private);
    assert_eq!(t.to_string(), "BF0C");
    assert_eq!(format!("{:?}", tag(0x0A)), "Tag(0A)");
}

#[test]
fn lengths_use_minimal_forms() {
    for (len, header) in [
        (0usize, vec![0x04, 0x00]),
        (127, vec![0x04, 0x7F]),
        (128, vec![0x04, 0x81, 0x80]),
        (255, vec![0x04, 0x81, 0xFF]),
        (256, vec![0x04, 0x82, 0x01, 0x00]),
        (65_535, vec![0x04, 0x82, 0xFF, 0xFF]),
        (65_536, vec![0x04, 0x83, 0x01, 0x00, 0x00]),
    ] {
        let t = Tlv::primitive(tag(0x04), vec![0xAB; len]).unwrap();
        let wire = t.encode();
        assert_eq!(wire[..header.len()], header[..], "len {len}");
        assert_eq!(wire.len(), t.encoded_len());
        assert_eq!(Tlv::parse(&wire).unwrap(), t, "len {len}");
    }
}

#[test]
fn non_minimal_lengths_are_optional_errors() {
    let wire = [0x4F, 0x81, 0x02, 0xA0, 0x00];
    let lenient = Tlv::parse(&wire).unwrap();
    assert_eq!(lenient.primitive_value().unwrap(), [0xA0, 0x00]);
    let strict = ParseOptions {
        require_minimal_length: true,
        ..ParseOptions::default()
    };
    assert_eq!(
        Tlv::parse_with(&wire, strict),
        Err(TlvError::NonMinimalLength(tag(0x4F)))
    );
    assert_eq!(
        format!(
            "{:?}",
            Tlv::parse_with(&[0x4F, 0x82, 0x00, 0x80], strict).unwrap_err()
        ),
        "NonMinimalLength(Tag(4F))"
    );
}

/// Fuzz finding: a constructed object whose child used a non-minimal length
/// re-encoded with the outer length it was read with, one byte too long for
/// the minimal child encoding that followed.
#[test]
fn constructed_object_with_non_minimal_child_reencodes_consistently() {
    let wire = [0xE0, 0x04, 0x4F, 0x81, 0x01, 0xAA];
    let parsed = Tlv::parse(&wire).unwrap();
    let encoded = parsed.encode();
    assert_eq!(encoded, [0xE0, 0x03, 0x4F, 0x01, 0xAA]);
    assert_eq!(encoded.len(), parsed.encoded_len());
    assert_eq!(Tlv::parse(&encoded).unwrap(), parsed);
    // The fuzzer's own input, with the option byte removed (lenient, depth 2).
    let found = [
        0xE0, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5F, 0x01, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x04, 0x00, 0x00, 0x02, 0x3B,
    ];
    let options = ParseOptions {
        require_minimal_length: false,
        max_depth: 2,
    };
    for t in Tlv::parse_all_with(&found, options).unwrap_or_default() {
        assert_eq!(t.encode().len(), t.encoded_len());
        assert_eq!(Tlv::parse(&t.encode()).unwrap(), t);
    }
}

#[test]
fn tree_build_encode_find() {
    let inner = Tlv::primitive(tag(0x5A), vec![0x89, 0x88]).unwrap();
    let aid = Tlv::primitive(tag(0x4F), vec![0xA0, 0x00, 0x00, 0x01, 0x51]).unwrap();
    let root = Tlv::constructed(tag(0xBF3E), vec![inner.clone(), aid.clone()]).unwrap();
    let wire = root.encode();
    assert_eq!(
        wire,
        [0xBF, 0x3E, 0x0B, 0x5A, 0x02, 0x89, 0x88, 0x4F, 0x05, 0xA0, 0x00, 0x00, 0x01, 0x51]
    );
    let parsed = Tlv::parse(&wire).unwrap();
    assert_eq!(parsed, root);
    assert_eq!(parsed.children().len(), 2);
    assert!(parsed.primitive_value().is_none());
    assert!(matches!(parsed.value(), TlvValue::Constructed(_)));
    assert_eq!(parsed.find(tag(0x4F)), Some(&aid));
    assert_eq!(parsed.find(tag(0xBF3E)), Some(&root));
    assert_eq!(parsed.find(tag(0x9F7F)), None);
    let list = Tlv::parse_all(&[wire.clone(), vec![0x4F, 0x00]].concat()).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(tlv::find(&list, tag(0x5A)), Some(&inner));
    assert_eq!(list[0].find_all(tag(0x4F)).len(), 1);
    assert_eq!(tlv::find(&list, tag(0x4F)).unwrap(), &aid);
}

#[test]
fn constructors_check_tag_form() {
    assert_eq!(
        Tlv::primitive(tag(0xE0), vec![]),
        Err(TlvError::WrongTagForm(tag(0xE0)))
    );
    assert_eq!(
        Tlv::constructed(tag(0x4F), vec![]),
        Err(TlvError::WrongTagForm(tag(0x4F)))
    );
}

fn nested(levels: usize) -> Vec<u8> {
    // `levels` objects in total: E0 templates around an empty 4F.
    let mut wire = vec![0x4F, 0x00];
    for _ in 1..levels {
        let mut outer = vec![0xE0, wire.len() as u8];
        outer.extend_from_slice(&wire);
        wire = outer;
    }
    wire
}

#[test]
fn depth_limit_boundary_is_exact() {
    assert!(Tlv::parse(&nested(DEFAULT_MAX_DEPTH)).is_ok());
    assert_eq!(
        Tlv::parse(&nested(DEFAULT_MAX_DEPTH + 1)),
        Err(TlvError::DepthExceeded(DEFAULT_MAX_DEPTH))
    );
    let two = ParseOptions {
        max_depth: 2,
        ..ParseOptions::default()
    };
    assert!(Tlv::parse_with(&nested(2), two).is_ok());
    assert_eq!(
        format!("{:?}", Tlv::parse_with(&nested(3), two).unwrap_err()),
        "DepthExceeded(2)"
    );
}

#[test]
fn depth_limits_apply_to_parse_and_build() {
    // 20 nested E0 templates around an empty 4F.
    let mut wire = vec![0x4F, 0x00];
    for _ in 0..20 {
        let mut outer = vec![0xE0, wire.len() as u8];
        outer.extend_from_slice(&wire);
        wire = outer;
    }
    assert_eq!(
        Tlv::parse(&wire),
        Err(TlvError::DepthExceeded(DEFAULT_MAX_DEPTH))
    );
    let deep = ParseOptions {
        max_depth: usize::MAX,
        ..ParseOptions::default()
    };
    assert!(Tlv::parse_with(&wire, deep).is_ok());

    let mut t = Tlv::primitive(tag(0x4F), vec![]).unwrap();
    for _ in 1..MAX_DEPTH {
        t = Tlv::constructed(tag(0xE0), vec![t]).unwrap();
    }
    assert_eq!(
        Tlv::constructed(tag(0xE0), vec![t]),
        Err(TlvError::DepthExceeded(MAX_DEPTH))
    );
}

#[test]
fn malformed_inputs_give_specific_errors() {
    assert_eq!(Tlv::parse(&[]), Err(TlvError::Truncated));
    assert_eq!(Tlv::parse(&[0x4F]), Err(TlvError::Truncated));
    assert_eq!(Tlv::parse(&[0x4F, 0x80]), Err(TlvError::IndefiniteLength));
    assert_eq!(
        Tlv::parse(&[0x4F, 0x84, 0, 0, 0, 1, 0]),
        Err(TlvError::UnsupportedLengthForm(0x84))
    );
    assert_eq!(Tlv::parse(&[0x4F, 0x82, 0x01]), Err(TlvError::Truncated));
    assert_eq!(
        Tlv::parse(&[0x4F, 0x03, 1]),
        Err(TlvError::ValueTruncated {
            tag: tag(0x4F),
            declared: 3,
            available: 1
        })
    );
    assert_eq!(
        Tlv::parse(&[0x4F, 0x00, 0x00]),
        Err(TlvError::TrailingBytes(1))
    );
    assert_eq!(
        Tlv::parse(&[0x9F, 0x81, 0x81, 0x01, 0x00]),
        Err(TlvError::TagTooLong)
    );
    // A padding byte inside a template is not a TLV.
    assert_eq!(
        format!(
            "{:?}",
            Tlv::parse(&[0xE0, 0x03, 0x4F, 0x00, 0x00]).unwrap_err()
        ),
        "Truncated"
    );
}
