//! The key-fob applet profile shared by the station (`kf-perso`) and the
//! virtual fob (`kf-card`): what the JCOP 4 key-fob applet expects on the wire.
//!
//! ```text
//!  station: items ──encode──▶ DGIs (A001..A006) ──split──▶ STORE DATA blocks (P1/P2 policy here)
//!  card:    STORE DATA blocks ──reassemble──▶ DGIs ──validate (rules here)──▶ stored, PERSONALIZED
//! ```
//!
//! Sources: the provisioning specification (JCShell reference flow: applet AID, KVN 255, DGIs, post-perso
//! commands) and GP Card Specification 2.3.1 §11.11 (STORE DATA, Table 11-89 for P1).
//!
//! Depends on `kf-apdu` only: the profile names bytes, it never sends them.

use kf_apdu::gp::{StoreDataEncryption, StoreDataP1, StoreDataStructure};
use thiserror::Error;

/// Application identifier of the key-fob applet (provisioning specification, "Applet AID").
pub const APPLET_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x08, 0x57];
/// Application identifier of the Issuer Security Domain (GP default ISD AID).
pub const ISD_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
/// Key version number of the development-sample static keys (provisioning specification).
pub const DEV_SAMPLE_KVN: u8 = 0xFF;
/// Development-sample static ENC key (provisioning specification; public test key of OEF B212 samples).
pub const DEV_SAMPLE_ENC: [u8; 16] = [
    0x8b, 0x4b, 0x8d, 0x7e, 0xc4, 0x5d, 0xfa, 0x50, 0x3a, 0x35, 0xf6, 0xdf, 0x8f, 0x6b, 0xbd, 0xd9,
];
/// Development-sample static MAC key (provisioning specification).
pub const DEV_SAMPLE_MAC: [u8; 16] = [
    0x42, 0xfd, 0x95, 0xe8, 0x38, 0x21, 0x26, 0x0c, 0x5b, 0x90, 0x46, 0x3a, 0xf7, 0x99, 0x63, 0x13,
];
/// Development-sample static DEK (provisioning specification).
pub const DEV_SAMPLE_DEK: [u8; 16] = [
    0x1b, 0x98, 0x8a, 0x47, 0xac, 0x94, 0x63, 0x2f, 0x70, 0x20, 0x73, 0x4c, 0xa1, 0x72, 0xee, 0xd8,
];

/// The personalization DGIs of the key-fob applet (provisioning specification, "DGI Tags").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FobDgi {
    /// A001: SPID, 40 ASCII hex characters.
    Spid,
    /// A002: device certificate (DER X.509).
    DeviceCertificate,
    /// A003: P-256 private scalar, AES-CBC(static DEK, IV 0, ISO 9797-1 M2) → 48 bytes.
    PrivateKey,
    /// A004: intermediate CA certificate (DER X.509).
    IcaCertificate,
    /// A005: CMS/root CA certificate (DER X.509).
    RootCertificate,
    /// A006: BLE identity resolving key, 16 bytes.
    BleIrk,
}

impl FobDgi {
    /// Every DGI, in the order the station writes them (the JCShell reference order).
    pub const ALL: [FobDgi; 6] = [
        FobDgi::PrivateKey,
        FobDgi::Spid,
        FobDgi::DeviceCertificate,
        FobDgi::IcaCertificate,
        FobDgi::RootCertificate,
        FobDgi::BleIrk,
    ];

    /// The 2-byte DGI tag.
    pub const fn tag(self) -> u16 {
        match self {
            FobDgi::Spid => 0xA001,
            FobDgi::DeviceCertificate => 0xA002,
            FobDgi::PrivateKey => 0xA003,
            FobDgi::IcaCertificate => 0xA004,
            FobDgi::RootCertificate => 0xA005,
            FobDgi::BleIrk => 0xA006,
        }
    }

    /// The DGI for a tag, or `None` when the applet does not know it: the
    /// inverse of [`FobDgi::tag`] over [`FobDgi::ALL`], so the two cannot disagree.
    pub const fn from_tag(tag: u16) -> Option<FobDgi> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i].tag() == tag {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// Whether the DGI content is encrypted with the static DEK (and must be
    /// treated as sensitive in traces).
    pub const fn is_encrypted(self) -> bool {
        matches!(self, FobDgi::PrivateKey)
    }

    /// Whether the DGI content is secret and must never reach a trace, log or
    /// audit record: the (encrypted) private key and the BLE IRK, which lets
    /// anyone resolve the fob's private Bluetooth addresses.
    pub const fn is_secret(self) -> bool {
        matches!(self, FobDgi::PrivateKey | FobDgi::BleIrk)
    }

    /// Short human name, for errors and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FobDgi::Spid => "SPID",
            FobDgi::DeviceCertificate => "device certificate",
            FobDgi::PrivateKey => "private key",
            FobDgi::IcaCertificate => "ICA certificate",
            FobDgi::RootCertificate => "root certificate",
            FobDgi::BleIrk => "BLE IRK",
        }
    }

    /// Checks the length of the DGI value as written on the wire (after DEK
    /// encryption for A003). Certificates must look like a DER SEQUENCE.
    pub fn check_value(self, value: &[u8]) -> Result<(), ProfileError> {
        let ok = match self {
            FobDgi::Spid => value.len() == 40 && value.iter().all(u8::is_ascii_hexdigit),
            FobDgi::PrivateKey => value.len() == ENCRYPTED_SCALAR_LEN,
            FobDgi::BleIrk => value.len() == 16,
            FobDgi::DeviceCertificate | FobDgi::IcaCertificate | FobDgi::RootCertificate => {
                (64..=MAX_CERTIFICATE_LEN).contains(&value.len()) && value.first() == Some(&0x30)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ProfileError::BadDgiValue {
                tag: self.tag(),
                len: value.len(),
            })
        }
    }
}

/// Length of the DEK-encrypted private scalar: 32 bytes + ISO 9797-1 M2 padding.
pub const ENCRYPTED_SCALAR_LEN: usize = 48;
/// Largest certificate the applet stores (JCOP 4 applet buffer; the specified sizes are 422–722 B).
pub const MAX_CERTIFICATE_LEN: usize = 2048;

/// STORE DATA instruction byte (GP Card Spec 2.3.1 §11.11; provisioning specification: E2, not DA).
pub use kf_apdu::gp::ins::STORE_DATA as INS_STORE_DATA;

/// How the station marks STORE DATA blocks in P1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum P1Style {
    /// Exactly the JCShell reference script (provisioning specification): `00` for data blocks,
    /// `80` for the last block; no structure or encryption information.
    #[default]
    JcShell,
    /// GP Table 11-89 in full: DGI structure bit on every block and
    /// "application-dependent encryption" on blocks that carry an encrypted DGI.
    GpDgi,
}

impl P1Style {
    /// P1 for a block, as the `kf-apdu` STORE DATA P1 (GP Table 11-89).
    pub const fn store_data_p1(self, last: bool, carries_encrypted_dgi: bool) -> StoreDataP1 {
        match self {
            P1Style::JcShell => StoreDataP1 {
                last_block: last,
                encryption: StoreDataEncryption::None,
                structure: StoreDataStructure::Unspecified,
                expects_response: false,
            },
            P1Style::GpDgi => StoreDataP1 {
                last_block: last,
                encryption: if carries_encrypted_dgi {
                    StoreDataEncryption::ApplicationDependent
                } else {
                    StoreDataEncryption::None
                },
                structure: StoreDataStructure::Dgi,
                expects_response: false,
            },
        }
    }

    /// P1 byte for a block.
    pub const fn p1(self, last: bool, carries_encrypted_dgi: bool) -> u8 {
        self.store_data_p1(last, carries_encrypted_dgi).to_byte()
    }
}

/// Whether the applet takes a STORE DATA P1 decoded by
/// [`StoreDataP1::from_byte_strict`] (GP Table 11-89): case 3 only, as the
/// applet returns no data, and structure "none" or "DGI", the only layout
/// it parses. Any defined encryption information is taken: the applet
/// knows which DGI (A003) is encrypted.
pub const fn accepts_store_data_p1(p1: &StoreDataP1) -> bool {
    !p1.expects_response
        && matches!(
            p1.structure,
            StoreDataStructure::Unspecified | StoreDataStructure::Dgi
        )
}

/// Applet life cycle (provisioning specification: UNPERSONALIZED → PERSONALIZED after the last block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppletLifeCycle {
    /// Fresh from the chip vendor; accepts STORE DATA.
    Unpersonalized,
    /// Personalized; refuses further STORE DATA (6985).
    Personalized,
}

/// Post-personalization transport configuration (provisioning specification: raw `00 DB 00 00 03 <id> 01 01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportConfig {
    /// `0A`: UICC transport.
    Uicc,
    /// `0B`: BLE transport.
    Ble,
}

impl TransportConfig {
    /// The configuration identifier byte.
    pub const fn id(self) -> u8 {
        match self {
            TransportConfig::Uicc => 0x0A,
            TransportConfig::Ble => 0x0B,
        }
    }

    /// The raw post-perso command enabling this transport (sent outside the secure channel).
    pub const fn enable_command(self) -> [u8; 8] {
        [
            kf_apdu::gp::CLA_ISO,
            INS_PUT_CONFIG,
            0x00,
            0x00,
            0x03,
            self.id(),
            0x01,
            0x01,
        ]
    }
}

/// INS of the post-perso configuration command (provisioning specification: `00 DB 00 00 ...`):
/// PUT DATA with the odd instruction (ISO/IEC 7816-4 §11.4.6).
pub use kf_apdu::gp::ins::PUT_DATA_ODD as INS_PUT_CONFIG;

/// Key-pair verification command (this project's applet profile): ISO 7816-4
/// INTERNAL AUTHENTICATE, `00 88 00 00 Lc challenge Le=00`, sent in plain after
/// personalization. The fob returns an ECDSA P-256 / SHA-256 signature over the
/// challenge, DER-encoded (as JavaCard `Signature.ALG_ECDSA_SHA_256` produces).
pub mod verify {
    /// INS of the verification command (ISO 7816-4 INTERNAL AUTHENTICATE).
    pub use kf_apdu::gp::ins::INTERNAL_AUTHENTICATE as INS;
    /// CLA of the verification command.
    pub use kf_apdu::gp::CLA_ISO as CLA;
    /// Accepted challenge lengths.
    pub const CHALLENGE_LEN: core::ops::RangeInclusive<usize> = 16..=64;
    /// Challenge length the station sends.
    pub const DEFAULT_CHALLENGE_LEN: usize = 32;
}

/// Profile rule violations.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A DGI value has the wrong size or shape.
    #[error("DGI {tag:04X}: value of {len} bytes is not valid for this applet")]
    BadDgiValue {
        /// DGI tag.
        tag: u16,
        /// Length received.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_unknown_tags_are_rejected() {
        for dgi in FobDgi::ALL {
            assert_eq!(FobDgi::from_tag(dgi.tag()), Some(dgi));
        }
        assert_eq!(FobDgi::from_tag(0xA007), None);
        assert_eq!(FobDgi::from_tag(0x0101), None);
    }

    #[test]
    fn p1_styles_follow_table_11_89() {
        assert_eq!(P1Style::JcShell.p1(false, true), 0x00);
        assert_eq!(P1Style::JcShell.p1(true, false), 0x80);
        assert_eq!(P1Style::GpDgi.p1(false, false), 0x08);
        assert_eq!(P1Style::GpDgi.p1(false, true), 0x28);
        assert_eq!(P1Style::GpDgi.p1(true, false), 0x88);
        let accepted = |p1| {
            StoreDataP1::from_byte_strict(p1)
                .ok()
                .filter(accepts_store_data_p1)
                .map(|p1| p1.last_block)
        };
        for style in [P1Style::JcShell, P1Style::GpDgi] {
            for last in [false, true] {
                assert_eq!(accepted(style.p1(last, true)), Some(last));
            }
        }
        assert_eq!(accepted(0x10), None);
        assert_eq!(accepted(0x81), None);
        // The applet's rule over every byte, written out bit by bit.
        for p1 in 0..=255u8 {
            let ok = p1 & 0x07 == 0 && matches!(p1 & 0x18, 0x00 | 0x08) && p1 & 0x60 != 0x40;
            assert_eq!(accepted(p1), ok.then_some(p1 & 0x80 != 0), "{p1:02X}");
        }
    }

    #[test]
    fn dgi_values_are_checked() {
        assert!(FobDgi::Spid
            .check_value(b"59918C0096F859EC8BF6DA454E2E554A14DD4BD1")
            .is_ok());
        let bad = |tag, len| Err(ProfileError::BadDgiValue { tag, len });
        assert_eq!(
            FobDgi::Spid.check_value(b"59918C0096F859EC8BF6DA454E2E554A14DD4BDZ"),
            bad(0xA001, 40)
        );
        assert!(FobDgi::PrivateKey.check_value(&[0u8; 48]).is_ok());
        assert_eq!(FobDgi::PrivateKey.check_value(&[0u8; 32]), bad(0xA003, 32));
        assert!(FobDgi::BleIrk.check_value(&[0u8; 16]).is_ok());
        assert_eq!(FobDgi::BleIrk.check_value(&[0u8; 17]), bad(0xA006, 17));
        let mut cert = vec![0x30; 424];
        assert!(FobDgi::DeviceCertificate.check_value(&cert).is_ok());
        cert[0] = 0x31;
        assert_eq!(
            FobDgi::DeviceCertificate.check_value(&cert),
            bad(0xA002, 424)
        );
    }

    #[test]
    fn post_perso_commands_match_the_specification() {
        assert_eq!(
            TransportConfig::Uicc.enable_command(),
            [0x00, 0xDB, 0x00, 0x00, 0x03, 0x0A, 0x01, 0x01]
        );
        assert_eq!(
            TransportConfig::Ble.enable_command(),
            [0x00, 0xDB, 0x00, 0x00, 0x03, 0x0B, 0x01, 0x01]
        );
    }
}
