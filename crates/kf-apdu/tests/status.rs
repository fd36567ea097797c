//! Status word classification and formatting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{StatusKind, StatusWord};

#[test]
fn accessors_agree() {
    let sw = StatusWord::new(0x6A, 0x86);
    assert_eq!(sw.sw1(), 0x6A);
    assert_eq!(sw.sw2(), 0x86);
    assert_eq!(sw.as_u16(), 0x6A86);
    assert_eq!(StatusWord::from_u16(0x6A86), sw);
    assert_eq!(sw.to_bytes(), [0x6A, 0x86]);
    assert_eq!(u16::from(sw), 0x6A86);
}

#[test]
fn only_9000_is_success() {
    assert!(StatusWord::SUCCESS.is_success());
    assert!(!StatusWord::new(0x61, 0x10).is_success());
    assert!(!StatusWord::new(0x90, 0x01).is_success());
    assert_eq!(
        StatusWord::new(0x90, 0x01).kind(),
        StatusKind::Unknown(0x9001)
    );
}

#[test]
fn warnings_are_62xx_and_63xx() {
    assert!(StatusWord::new(0x62, 0x83).is_warning());
    assert!(StatusWord::new(0x63, 0xC2).is_warning());
    assert!(!StatusWord::new(0x64, 0x00).is_warning());
    assert!(!StatusWord::SUCCESS.is_warning());
}

#[test]
fn parameterized_kinds_carry_their_value() {
    for (sw1, sw2, kind) in [
        (0x61, 0x00, StatusKind::BytesAvailable(0)),
        (0x6C, 0x08, StatusKind::WrongLe(8)),
        (0x63, 0xCF, StatusKind::VerifyFailed { retries: 15 }),
        // Only the C nibble carries a retry counter.
        (0x63, 0xD1, StatusKind::Unknown(0x63D1)),
        (0x63, 0x81, StatusKind::Unknown(0x6381)),
        // 63 00 is a warning without retry counter, not a verify failure.
        (0x63, 0x00, StatusKind::Unknown(0x6300)),
    ] {
        assert_eq!(StatusWord::new(sw1, sw2).kind(), kind, "{sw1:02X}{sw2:02X}");
    }
}

#[test]
fn display_has_hex_and_meaning() {
    for (sw1, sw2, text) in [
        (0x69, 0x82, "6982 (security status not satisfied)"),
        (0x63, 0xC2, "63C2 (verification failed, 2 retries left)"),
        (
            0x63,
            0xC0,
            "63C0 (verification failed, no retries left (blocked))",
        ),
        (0x61, 0x20, "6120 (32 response bytes available)"),
        (0x12, 0x34, "1234 (unknown status)"),
    ] {
        assert_eq!(StatusWord::new(sw1, sw2).to_string(), text);
    }
    assert_eq!(format!("{:?}", StatusWord::SUCCESS), "StatusWord(9000)");
}

#[test]
fn every_named_kind_has_a_distinct_description() {
    let mut seen = std::collections::HashSet::new();
    for v in 0..=u16::MAX {
        let kind = StatusWord::from_u16(v).kind();
        if matches!(
            kind,
            StatusKind::Unknown(_)
                | StatusKind::BytesAvailable(_)
                | StatusKind::WrongLe(_)
                | StatusKind::VerifyFailed { .. }
        ) {
            continue;
        }
        assert!(
            seen.insert(kind.description()),
            "duplicate text for {kind:?}"
        );
    }
    assert!(seen.len() >= 25, "only {} named kinds", seen.len());
}
