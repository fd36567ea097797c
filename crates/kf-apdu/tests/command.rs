//! Command and response APDU encoding, parsing, boundaries and redaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{ApduCase, ApduError, CommandApdu, ResponseApdu, StatusWord};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

#[test]
fn case1_is_header_only_in_every_encoding() {
    let c = CommandApdu::new(0x80, 0xF0, 0x80, 0x0F);
    assert_eq!(c.case(), ApduCase::Case1);
    assert_eq!(c.to_bytes(), [0x80, 0xF0, 0x80, 0x0F]);
    assert_eq!(c.to_bytes_short().unwrap(), [0x80, 0xF0, 0x80, 0x0F]);
    assert_eq!(c.to_bytes_extended(), [0x80, 0xF0, 0x80, 0x0F]);
    assert!(!c.is_extended());
}

#[test]
fn le_256_is_short_00_and_257_needs_extended() {
    let c = CommandApdu::new(0, 0xC0, 0, 0).with_le(256);
    assert!(!c.is_extended());
    assert_eq!(c.to_bytes(), [0, 0xC0, 0, 0, 0x00]);
    assert_eq!(c.to_bytes_extended(), [0, 0xC0, 0, 0, 0x00, 0x01, 0x00]);
    let c = c.with_le(257);
    assert!(c.is_extended());
    assert_eq!(c.to_bytes(), [0, 0xC0, 0, 0, 0x00, 0x01, 0x01]);
    assert_eq!(
        c.to_bytes_short(),
        Err(ApduError::NeedsExtendedLength {
            lc: 0,
            le: Some(257)
        })
    );
}

#[test]
fn le_65536_is_extended_0000() {
    let c = CommandApdu::new(0, 0xB0, 0, 0).with_le(65_536);
    assert_eq!(c.to_bytes(), [0, 0xB0, 0, 0, 0x00, 0x00, 0x00]);
    assert_eq!(
        CommandApdu::parse(&c.to_bytes()).unwrap().le(),
        Some(65_536)
    );
}

#[test]
fn lc_255_is_short_and_256_is_extended() {
    let c = CommandApdu::new(0x80, 0xE2, 0, 0).with_data(data(255));
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), 5 + 255);
    assert_eq!(bytes[4], 0xFF);
    let c = CommandApdu::new(0x80, 0xE2, 0, 0).with_data(data(256));
    assert!(c.is_extended());
    let bytes = c.to_bytes();
    assert_eq!(&bytes[4..7], [0x00, 0x01, 0x00]);
    assert_eq!(bytes.len(), 7 + 256);
    assert_eq!(CommandApdu::parse(&bytes).unwrap(), c);
}

#[test]
fn case4_mixing_short_lc_and_large_le_goes_fully_extended() {
    let c = CommandApdu::new(0x80, 0xCA, 0, 0x66)
        .with_data([1, 2])
        .with_le(300);
    assert_eq!(
        c.to_bytes(),
        [0x80, 0xCA, 0, 0x66, 0x00, 0x00, 0x02, 1, 2, 0x01, 0x2C]
    );
    assert_eq!(c.case(), ApduCase::Case4);
}

#[test]
fn max_data_length_encodes_extended() {
    let c = CommandApdu::new(0, 0xD6, 0, 0)
        .with_data(data(65_535))
        .with_le(65_536);
    let bytes = c.to_bytes();
    assert_eq!(&bytes[4..7], [0x00, 0xFF, 0xFF]);
    assert_eq!(&bytes[bytes.len() - 2..], [0x00, 0x00]);
    assert_eq!(CommandApdu::parse(&bytes).unwrap(), c);
}

#[test]
fn oversized_data_is_rejected_by_try_and_truncated_by_with() {
    let err = CommandApdu::new(0, 0xD6, 0, 0)
        .try_with_data(data(65_536))
        .unwrap_err();
    assert_eq!(err, ApduError::DataTooLong(65_536));
    let c = CommandApdu::new(0, 0xD6, 0, 0).with_data(data(65_536));
    assert_eq!(c.data().len(), 65_535);
}

#[test]
fn le_out_of_range_is_rejected_or_normalized() {
    assert_eq!(
        CommandApdu::new(0, 0xB0, 0, 0).try_with_le(0).unwrap_err(),
        ApduError::LeOutOfRange(0)
    );
    assert_eq!(
        CommandApdu::new(0, 0xB0, 0, 0)
            .try_with_le(65_537)
            .unwrap_err(),
        ApduError::LeOutOfRange(65_537)
    );
    assert_eq!(CommandApdu::new(0, 0xB0, 0, 0).with_le(0).le(), None);
    assert_eq!(
        CommandApdu::new(0, 0xB0, 0, 0).with_le(70_000).le(),
        Some(65_536)
    );
    let mut c = CommandApdu::new(0, 0xB0, 0, 0).with_le(5);
    c.set_le(None);
    assert_eq!(c.case(), ApduCase::Case1);
}

#[test]
fn setters_replace_fields() {
    let mut c = CommandApdu::new(0x80, 0xE2, 0, 0).with_data([1]).with_le(1);
    c.set_cla(0x84);
    c.set_data(vec![9, 9]);
    c.set_le(Some(256));
    assert_eq!(c.to_bytes(), [0x84, 0xE2, 0, 0, 2, 9, 9, 0]);
}

#[test]
fn extended_encoding_of_short_commands_parses_back() {
    let c = CommandApdu::new(0x80, 0xE2, 0, 0)
        .with_data([1, 2, 3])
        .with_le(10);
    let bytes = c.to_bytes_extended();
    assert_eq!(bytes, [0x80, 0xE2, 0, 0, 0, 0, 3, 1, 2, 3, 0, 10]);
    assert_eq!(CommandApdu::parse(&bytes).unwrap(), c);
}

#[test]
fn parse_rejects_each_malformed_length_shape() {
    let too_short = |len| ApduError::CommandTooShort { len };
    let malformed = |reason, body_len| ApduError::MalformedBody { reason, body_len };
    let short_lc_00 = "short Lc of 00 or truncated extended length field";
    let short_lc = "short Lc disagrees with the body length";
    let ext_lc_0000 = "extended Lc of 0000 followed by more bytes";
    let ext_lc = "extended Lc disagrees with the body length";
    let cases: &[(&[u8], ApduError)] = &[
        (&[], too_short(0)),
        (&[0x80], too_short(1)),
        (&[0x80, 0xCA, 0x00], too_short(3)),
        (&[0x80, 0xE2, 0, 0, 0x00, 0x01], malformed(short_lc_00, 2)), // 2-byte body starting 00
        (&[0x80, 0xE2, 0, 0, 0x00, 0xAA], malformed(short_lc_00, 2)), // short Lc 00
        (&[0x80, 0xE2, 0, 0, 0x02, 0xAA], malformed(short_lc, 2)),    // Lc > data
        (
            &[0x80, 0xE2, 0, 0, 0x01, 0xAA, 0, 0],
            malformed(short_lc, 4),
        ), // Lc < data - 1
        (
            &[0x80, 0xE2, 0, 0, 0, 0, 0, 0xAA],
            malformed(ext_lc_0000, 4),
        ), // extended Lc 0000
        (&[0x80, 0xE2, 0, 0, 0, 0, 2, 0xAA], malformed(ext_lc, 4)),   // extended Lc > data
        (&[0x80, 0xE2, 0, 0, 0, 0, 1, 0xAA, 0], malformed(ext_lc, 5)), // extended with 1-byte Le
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            CommandApdu::parse(bytes).as_ref(),
            Err(expected),
            "{bytes:02X?}"
        );
    }
    assert_eq!(
        CommandApdu::parse(&[0x80, 0xCA]).unwrap_err(),
        ApduError::CommandTooShort { len: 2 }
    );
}

#[test]
fn display_shows_header_data_and_le() {
    let c = CommandApdu::new(0x80, 0xE2, 0x00, 0x01)
        .with_data([0xAB, 0xCD])
        .with_le(256);
    assert_eq!(c.to_string(), "80 E2 00 01 Lc=2 ABCD Le=256");
    assert_eq!(
        format!("{c:?}"),
        "CommandApdu(80 E2 00 01 Lc=2 ABCD Le=256)"
    );
}

#[test]
fn sensitive_commands_redact_data_in_debug_and_display() {
    let secret = [0xDE, 0xAD, 0xBE, 0xEF];
    let c = CommandApdu::new(0x80, 0xD8, 0x01, 0x81)
        .with_data(secret)
        .sensitive();
    assert!(c.is_sensitive());
    for text in [c.to_string(), format!("{c:?}"), format!("{c:#?}")] {
        assert!(text.contains("80 D8 01 81 Lc=4 [redacted]"), "{text}");
        assert!(!text.to_uppercase().contains("DEADBEEF"), "{text}");
    }
    // The wire encoding is unaffected, and equality ignores the flag.
    assert_eq!(&c.to_bytes()[5..], secret);
    let parsed = CommandApdu::parse(&c.to_bytes()).unwrap();
    assert!(!parsed.is_sensitive());
    assert_eq!(parsed, c);
    assert_ne!(parsed, c.clone().with_data([0xDE]));
}

#[test]
fn response_parse_and_encode() {
    let r = ResponseApdu::parse(&[1, 2, 3, 0x90, 0x00]).unwrap();
    assert_eq!(r.data(), [1, 2, 3]);
    assert_eq!(r.sw(), StatusWord::SUCCESS);
    assert!(r.is_success());
    assert_eq!(r.to_bytes(), [1, 2, 3, 0x90, 0x00]);
    assert_eq!(r.clone().into_data(), vec![1, 2, 3]);
    let only_sw = ResponseApdu::parse(&[0x69, 0x82]).unwrap();
    assert!(only_sw.data().is_empty());
    assert_eq!(only_sw.sw().as_u16(), 0x6982);
    assert_eq!(
        ResponseApdu::parse(&[0x90]).unwrap_err(),
        ApduError::ResponseTooShort { len: 1 }
    );
    assert_eq!(
        format!("{:?}", ResponseApdu::parse(&[]).unwrap_err()),
        "ResponseTooShort { len: 0 }"
    );
    assert_eq!(format!("{r:?}"), "ResponseApdu(010203 9000)");
    assert_eq!(r.to_string(), "010203 9000 (success)");
}

#[test]
fn parse_with_form_tells_the_length_encoding() {
    use kf_apdu::LengthForm::{Extended, Short};
    let form = |b: &[u8]| CommandApdu::parse_with_form(b).map(|(_, f)| f);
    assert_eq!(form(&[0, 0xA4, 4, 0]), Ok(Short));
    assert_eq!(form(&[0, 0xB0, 0, 0, 0]), Ok(Short));
    assert_eq!(form(&[0, 0xA4, 4, 0, 1, 0xA0, 0x10]), Ok(Short));
    assert_eq!(form(&[0, 0xB0, 0, 0, 0, 0x00, 0x10]), Ok(Extended));
    assert_eq!(form(&[0, 0xA4, 4, 0, 0, 0, 1, 0xA0]), Ok(Extended));
    // The same command in both forms parses to equal values.
    assert_eq!(
        CommandApdu::parse(&[0, 0xB0, 0, 0, 0, 0x00, 0x10]),
        CommandApdu::parse(&[0, 0xB0, 0, 0, 0x10])
    );
}
