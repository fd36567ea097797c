//! Builders for the GlobalPlatform and ISO commands the station sends
//! (GPC 2.3.1 chapter 11 and Appendix D, Amd D §7).
//!
//! Builders produce plaintext commands with the GP class byte `80` (or the
//! ISO class `00`); the SCP03 layer sets the secure-messaging bit and
//! appends the MAC. Commands that carry key material are marked sensitive.

/// A spec enumeration coded as a byte, or as a field of a byte with its bits
/// in place: the variants, the encoding and the checked decoding come from
/// one table, so the two directions cannot disagree.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $name {
            /// The coded byte (for a field of a byte: its bits in place).
            pub const fn as_byte(self) -> u8 {
                self as u8
            }

            /// Decodes a coded byte; `None` for a coding the table does not list.
            pub const fn from_byte(b: u8) -> Option<Self> {
                match b {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }
    };
}

mod cplc;
mod lifecycle;
pub mod pcsc;
mod store_data;

pub use cplc::{get_cplc, Cplc, CplcError, CPLC_LEN, CPLC_TAG};

pub use lifecycle::{
    get_status, set_application_status, set_card_status, set_domain_and_applications_locked,
    CardLifeCycle, GetStatusFormat, GetStatusScope, SetStatusScope, APPLICATION_SELECTABLE,
    GET_STATUS_NEXT_OCCURRENCE,
};
pub use store_data::{
    block_ranges, store_data, StoreDataEncryption, StoreDataP1, StoreDataStructure,
};

use crate::command::CommandApdu;
use crate::error::ApduError;

/// Class byte of ISO/IEC 7816-4 inter-industry commands, basic channel.
pub const CLA_ISO: u8 = 0x00;
/// Class byte of GlobalPlatform proprietary commands, basic channel, no secure
/// messaging (GPC 2.3.1 §11.1.4).
pub const CLA_GP: u8 = 0x80;
/// Class byte of GlobalPlatform commands carrying secure messaging (GPC 2.3.1 §11.1.4).
pub const CLA_GP_SECURE: u8 = CLA_GP | CLA_SECURE_MESSAGING;

/// Class bit b3: secure messaging, GlobalPlatform format (GPC 2.3.1 §11.1.4;
/// ISO/IEC 7816-4 §5.4.1 "proprietary SM" in the first interindustry class).
pub const CLA_SECURE_MESSAGING: u8 = 0x04;
/// Class bit b4: ISO/IEC 7816-4 secure messaging, command header
/// authenticated (ISO/IEC 7816-4 §5.4.1, Table 2).
pub const CLA_ISO_SECURE_MESSAGING: u8 = 0x08;
/// Class bits b2–b1: logical channel 0–3 of the first interindustry and
/// GlobalPlatform classes (ISO/IEC 7816-4 §5.4.1, GPC 2.3.1 §11.1.4).
pub const CLA_CHANNEL_MASK: u8 = 0x03;
/// Class bit b7: the further interindustry class, logical channels 4–19
/// (ISO/IEC 7816-4 §5.4.1, Table 3).
pub const CLA_FURTHER_INTERINDUSTRY: u8 = 0x40;
/// Class bits b4–b1 of the further interindustry class: logical channel
/// number minus 4 (ISO/IEC 7816-4 §5.4.1, Table 3).
pub const CLA_FURTHER_CHANNEL_MASK: u8 = 0x0F;
/// Class bit b8: a proprietary class such as GlobalPlatform's, rather than an
/// interindustry one (ISO/IEC 7816-4 §5.4.1).
pub const CLA_PROPRIETARY: u8 = 0x80;

/// Whether `cla` announces GlobalPlatform secure messaging (b3, GPC 2.3.1
/// §11.1.4): the command carries a C-MAC and goes through the secure channel.
pub const fn cla_indicates_secure_messaging(cla: u8) -> bool {
    cla & CLA_SECURE_MESSAGING != 0
}

/// Whether `cla` is a proprietary class (b8 set, ISO/IEC 7816-4 §5.4.1).
/// GlobalPlatform commands such as INITIALIZE UPDATE need one; the ISO class
/// `00` does not carry them (GPC 2.3.1 §11.1.4).
pub const fn cla_is_proprietary(cla: u8) -> bool {
    cla & CLA_PROPRIETARY != 0
}

/// Instruction bytes.
pub mod ins {
    /// SELECT (ISO/IEC 7816-4 §11.1.1, GPC 2.3.1 §11.9).
    pub const SELECT: u8 = 0xA4;
    /// GET RESPONSE (ISO/IEC 7816-4 §11.7.1).
    pub const GET_RESPONSE: u8 = 0xC0;
    /// GET DATA, even instruction (GPC 2.3.1 §11.3; also the PC/SC
    /// pseudo-APDU of [`super::pcsc`]).
    pub const GET_DATA: u8 = 0xCA;
    /// GET DATA, odd instruction (BER-TLV data field, ISO/IEC 7816-4 §11.4.3).
    pub const GET_DATA_ODD: u8 = 0xCB;
    /// INTERNAL AUTHENTICATE (ISO/IEC 7816-4 §11.5.2).
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    /// GET STATUS (GPC 2.3.1 §11.4).
    pub const GET_STATUS: u8 = 0xF2;
    /// SET STATUS (GPC 2.3.1 §11.10).
    pub const SET_STATUS: u8 = 0xF0;
    /// STORE DATA (GPC 2.3.1 §11.11).
    pub const STORE_DATA: u8 = 0xE2;
    /// PUT KEY (GPC 2.3.1 §11.8).
    pub const PUT_KEY: u8 = 0xD8;
    /// INITIALIZE UPDATE (GPC 2.3.1 §D.4.1, Amd D §7.1.1).
    pub const INITIALIZE_UPDATE: u8 = 0x50;
    /// EXTERNAL AUTHENTICATE (GPC 2.3.1 §D.4.2, Amd D §7.1.2).
    pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    /// PUT DATA, odd instruction (BER-TLV data field, ISO/IEC 7816-4 §11.4.6).
    pub const PUT_DATA_ODD: u8 = 0xDB;
}

/// Tags of the GlobalPlatform data objects in commands and responses (GPC
/// 2.3.1 §11.1.11 tag ranges), as BER-TLV [`Tag`](crate::Tag)s.
pub mod tag {
    use crate::Tag;

    /// Application identifier: the GET STATUS search criterion and the AID of
    /// each GET STATUS entry (GPC 2.3.1 §11.4.2.3, Table 11-36).
    pub const AID: Tag = Tag::known(0x4F);
    /// GlobalPlatform Registry related data, one per GET STATUS entry in the
    /// tagged format (GPC 2.3.1 §11.4.3.1, Table 11-36).
    pub const REGISTRY_ENTRY: Tag = Tag::known(0xE3);
    /// Life cycle state of a GET STATUS entry (GPC 2.3.1 Table 11-36).
    pub const LIFE_CYCLE_STATE: Tag = Tag::known(0x9F70);
    /// Privileges of a GET STATUS entry (GPC 2.3.1 Table 11-36).
    pub const PRIVILEGES: Tag = Tag::known(0xC5);
    /// File Control Information template, the SELECT response (GPC 2.3.1
    /// §11.9.3.1, Table 11-82).
    pub const FCI_TEMPLATE: Tag = Tag::known(0x6F);
    /// Application / file AID in the FCI (GPC 2.3.1 Table 11-82).
    pub const DF_NAME: Tag = Tag::known(0x84);
    /// Proprietary data in the FCI (GPC 2.3.1 Table 11-82).
    pub const FCI_PROPRIETARY_DATA: Tag = Tag::known(0xA5);
    /// Maximum length of the data field in a command message, in the FCI
    /// proprietary data (GPC 2.3.1 Table 11-82).
    pub const MAX_COMMAND_DATA_LEN: Tag = Tag::known(0x9F65);
    /// Key Information Template, answered to GET DATA `00E0` (GPC 2.3.1
    /// §11.3.3.1).
    pub const KEY_INFORMATION_TEMPLATE: Tag = Tag::known(0xE0);
    /// Key information data, one per key in the template (GPC 2.3.1
    /// §11.3.3.1).
    pub const KEY_INFORMATION_DATA: Tag = Tag::known(0xC0);

    /// Every tag above, for the check that each is a valid BER-TLV tag.
    pub const ALL: [Tag; 10] = [
        AID,
        REGISTRY_ENTRY,
        LIFE_CYCLE_STATE,
        PRIVILEGES,
        FCI_TEMPLATE,
        DF_NAME,
        FCI_PROPRIETARY_DATA,
        MAX_COMMAND_DATA_LEN,
        KEY_INFORMATION_TEMPLATE,
        KEY_INFORMATION_DATA,
    ];
}

/// The GET DATA tag (P1-P2) of the Key Information Template (GPC 2.3.1
/// §11.3.2, §11.3.3.1).
pub const KEY_INFORMATION_TAG: u16 = tag::KEY_INFORMATION_TEMPLATE.as_u32() as u16;

/// Key type AES in key information and PUT KEY data (GPC 2.3.1 §11.1.8,
/// Table 11-16).
pub const KEY_TYPE_AES: u8 = 0x88;

coded_enum! {
    /// SELECT P1, the selection method (ISO/IEC 7816-4 §11.1.1). GlobalPlatform
    /// selects by name only (GPC 2.3.1 §11.9.2.1); the file selections are
    /// listed so a card can tell them from codings that mean nothing.
    pub enum SelectP1 {
        /// `00`: MF, DF or EF by file identifier.
        FileIdentifier = 0x00,
        /// `01`: child DF.
        ChildDf = 0x01,
        /// `02`: EF under the current DF.
        ElementaryFile = 0x02,
        /// `03`: parent DF of the current DF.
        ParentDf = 0x03,
        /// `04`: by DF name, i.e. AID (GPC 2.3.1 §11.9.2.1).
        ByName = 0x04,
        /// `08`: by path from the MF.
        PathFromMf = 0x08,
        /// `09`: by path from the current DF.
        PathFromCurrentDf = 0x09,
    }
}

coded_enum! {
    /// SELECT P2: which occurrence and whether the FCI is returned (GPC 2.3.1
    /// §11.9.2.2; `0C` from ISO/IEC 7816-4 §11.1.1).
    pub enum SelectP2 {
        /// `00`: first or only occurrence, FCI returned.
        FirstOccurrence = 0x00,
        /// `02`: next occurrence of a partial AID.
        NextOccurrence = 0x02,
        /// `0C`: first or only occurrence, no response data.
        FirstOccurrenceNoData = 0x0C,
    }
}

/// Shortest AID allowed by ISO/IEC 7816-5 (5-byte RID).
pub const MIN_AID_LEN: usize = 5;
/// Longest AID allowed by ISO/IEC 7816-5.
pub const MAX_AID_LEN: usize = 16;

pub(crate) fn check_aid(aid: &[u8]) -> Result<(), ApduError> {
    if (MIN_AID_LEN..=MAX_AID_LEN).contains(&aid.len()) {
        Ok(())
    } else {
        Err(ApduError::InvalidArgument("AID must be 5 to 16 bytes"))
    }
}

/// SELECT by name: `00 A4 04 00 Lc AID 00` (GPC 2.3.1 §11.9.2, Tables 11-79..11-81).
///
/// An empty AID gives `00 A4 04 00 00`, the case 2 form that selects the
/// Issuer Security Domain (§11.9.2.3). Otherwise the AID must be 5–16 bytes.
pub fn select_by_aid(aid: &[u8]) -> Result<CommandApdu, ApduError> {
    if !aid.is_empty() {
        check_aid(aid)?;
    }
    Ok(CommandApdu::new(
        CLA_ISO,
        ins::SELECT,
        SelectP1::ByName.as_byte(),
        SelectP2::FirstOccurrence.as_byte(),
    )
    .with_data(aid)
    .with_le(256))
}

/// INITIALIZE UPDATE: `80 50 KVN 00 Lc challenge 00` (GPC 2.3.1 §D.4.1,
/// Amd D §7.1.1).
///
/// The host challenge is 8 bytes (S8 mode) or 16 bytes (S16 mode, Amd D
/// §6.2.2); KVN 0 lets the card pick the first available key set.
pub fn initialize_update(key_version: u8, host_challenge: &[u8]) -> Result<CommandApdu, ApduError> {
    if host_challenge.len() != 8 && host_challenge.len() != 16 {
        return Err(ApduError::InvalidArgument(
            "host challenge must be 8 (S8) or 16 (S16) bytes",
        ));
    }
    Ok(
        CommandApdu::new(CLA_GP, ins::INITIALIZE_UPDATE, key_version, 0x00)
            .with_data(host_challenge)
            .with_le(256),
    )
}

/// EXTERNAL AUTHENTICATE before MAC: `80 82 level 00 Lc host-cryptogram`
/// (GPC 2.3.1 §D.4.2, Amd D §7.1.2, Table 7-3).
///
/// The SCP03 layer turns this into `84 82 ...` and appends the C-MAC. The
/// cryptogram is 8 bytes (S8) or 16 bytes (S16). Security levels defined by
/// Amd D Table 7-3 are `00`, `01`, `03`, `11`, `13`, `33`; other values are
/// rejected.
pub fn external_authenticate(
    security_level: u8,
    host_cryptogram: &[u8],
) -> Result<CommandApdu, ApduError> {
    if !matches!(security_level, 0x00 | 0x01 | 0x03 | 0x11 | 0x13 | 0x33) {
        return Err(ApduError::InvalidArgument(
            "security level must be one of 00, 01, 03, 11, 13, 33 (Amd D Table 7-3)",
        ));
    }
    if host_cryptogram.len() != 8 && host_cryptogram.len() != 16 {
        return Err(ApduError::InvalidArgument(
            "host cryptogram must be 8 (S8) or 16 (S16) bytes",
        ));
    }
    Ok(
        CommandApdu::new(CLA_GP, ins::EXTERNAL_AUTHENTICATE, security_level, 0x00)
            .with_data(host_cryptogram),
    )
}

/// GET DATA: `80 CA tag-hi tag-lo 00` (GPC 2.3.1 §11.3.2, Table 11-27).
///
/// One-byte tags go in P2 with P1 `00`. For tag `2F00` (list of
/// applications) the mandatory tag list `5C 00` is added (§11.3.2.2).
pub fn get_data(tag: u16) -> CommandApdu {
    let [p1, p2] = tag.to_be_bytes();
    let apdu = CommandApdu::new(CLA_GP, ins::GET_DATA, p1, p2).with_le(256);
    if tag == 0x2F00 {
        apdu.with_data([0x5C, 0x00])
    } else {
        apdu
    }
}

/// GET RESPONSE: `00 C0 00 00 Le` (ISO/IEC 7816-4 §11.7.1), sent after `61xx`.
///
/// Le 0 is taken as 256 (`61 00` announces 256 or more bytes).
pub fn get_response(le: usize) -> CommandApdu {
    let le = if le == 0 { 256 } else { le };
    CommandApdu::new(CLA_ISO, ins::GET_RESPONSE, 0x00, 0x00).with_le(le)
}

/// Reference control parameters of PUT KEY (GPC 2.3.1 §11.8.2.1–2, Tables 11-65/66).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutKeyParams {
    /// Key version to replace (`01`–`7F`), or `00` to add a new key set.
    pub current_key_version: u8,
    /// Key identifier of the first key in the data field (`00`–`7F`).
    pub first_key_id: u8,
    /// P2.b8: the data field holds several keys.
    pub multiple_keys: bool,
    /// P1.b8: more PUT KEY commands follow.
    pub more_commands: bool,
}

/// PUT KEY: `80 D8 P1 P2 Lc key-data 00` (GPC 2.3.1 §11.8.2, Table 11-64;
/// AES key data field per Amd D §7.2).
///
/// The data field (new KVN followed by key data blocks, keys encrypted with
/// the DEK) is assembled by the caller. The command is marked sensitive.
pub fn put_key(
    params: PutKeyParams,
    key_data: impl Into<Vec<u8>>,
) -> Result<CommandApdu, ApduError> {
    if params.current_key_version > 0x7F {
        return Err(ApduError::InvalidArgument("key version must be 00..7F"));
    }
    if params.first_key_id > 0x7F {
        return Err(ApduError::InvalidArgument("key identifier must be 00..7F"));
    }
    let key_data = key_data.into();
    if key_data.is_empty() {
        return Err(ApduError::InvalidArgument("PUT KEY needs key data"));
    }
    let p1 = params.current_key_version | if params.more_commands { 0x80 } else { 0 };
    let p2 = params.first_key_id | if params.multiple_keys { 0x80 } else { 0 };
    Ok(CommandApdu::new(CLA_GP, ins::PUT_KEY, p1, p2)
        .sensitive()
        .try_with_data(key_data)?
        .with_le(256))
}

/// PUT DATA with the odd instruction: `00 DB P1 P2 Lc data` (ISO/IEC 7816-4
/// §11.4.6), sent outside the secure channel.
///
/// The provisioning specification uses it after personalization to configure the applet, e.g.
/// `00 DB 00 00 03 0A 01 01` (enable UICC transport).
pub fn put_data_odd(p1: u8, p2: u8, data: impl Into<Vec<u8>>) -> Result<CommandApdu, ApduError> {
    let data = data.into();
    if data.is_empty() {
        return Err(ApduError::InvalidArgument("PUT DATA needs data"));
    }
    CommandApdu::new(CLA_ISO, ins::PUT_DATA_ODD, p1, p2).try_with_data(data)
}
