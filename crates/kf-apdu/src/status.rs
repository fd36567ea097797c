//! Status words SW1-SW2 (ISO/IEC 7816-4 §5.6, GPC 2.3.1 §11.1.3) and their
//! classification.

use std::fmt;

/// A status word SW1-SW2, stored as `SW1 << 8 | SW2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(u16);

/// The meaning of a status word (ISO/IEC 7816-4 §5.6 tables 5–6, GPC 2.3.1
/// §11.1.3 and the per-command response tables of chapter 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusKind {
    /// `9000`: normal processing.
    Success,
    /// `61xx`: xx more response bytes available (fetch with GET RESPONSE; `00` = 256 or more).
    BytesAvailable(u8),
    /// `6200`: warning, no information given.
    WarningNoInformation,
    /// `6283`: selected file or application invalidated (GP: card or application locked).
    SelectedFileInvalidated,
    /// `6310`: more data available (GP GET STATUS, GET DATA).
    MoreDataAvailable,
    /// `63Cx`: verification failed, x retries left (`63C0`: blocked).
    VerifyFailed {
        /// Remaining tries (low nibble of SW2).
        retries: u8,
    },
    /// `6400`: execution error, state of non-volatile memory unchanged.
    ExecutionError,
    /// `6581`: memory failure.
    MemoryFailure,
    /// `6700`: wrong length (Lc or Le).
    WrongLength,
    /// `6881`: logical channel not supported.
    LogicalChannelNotSupported,
    /// `6882`: secure messaging not supported.
    SecureMessagingNotSupported,
    /// `6982`: security status not satisfied (wrong MAC, no secure channel).
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: referenced data not usable / invalidated.
    ReferencedDataInvalidated,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6986`: command not allowed.
    CommandNotAllowed,
    /// `6988`: incorrect secure messaging data objects (GP: invalid MAC / cryptogram).
    IncorrectSecureMessagingData,
    /// `6999`: applet selection failed (Java Card `SW_APPLET_SELECT_FAILED`).
    AppletSelectFailed,
    /// `6A80`: incorrect values in the command data.
    IncorrectData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A84`: not enough memory space.
    NotEnoughMemory,
    /// `6A86`: incorrect P1 P2.
    IncorrectP1P2,
    /// `6A88`: referenced data (key, data object) not found.
    ReferencedDataNotFound,
    /// `6B00`: wrong parameters P1-P2.
    WrongP1P2,
    /// `6Cxx`: wrong Le; xx is the exact length available (`00` = 256).
    WrongLe(u8),
    /// `6D00`: instruction not supported or invalid.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// `6F00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word.
    Unknown(u16),
}

/// The status words with a fixed value, named once: [`StatusWord::kind`]
/// classifies by them and card emulations answer with them.
impl StatusWord {
    /// `9000`: normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// `6200`: warning, no information given.
    pub const WARNING_NO_INFORMATION: StatusWord = StatusWord(0x6200);
    /// `6282`: end of data reached before Le bytes (ISO/IEC 7816-4 §5.6
    /// Table 6; PC/SC Part 3 §3.2.2.1.3 GET DATA). Not classified by
    /// [`StatusWord::kind`].
    pub const END_OF_DATA: StatusWord = StatusWord(0x6282);
    /// `6283`: selected file or application invalidated; GP: card or
    /// application locked (GPC 2.3.1 Table 11-83).
    pub const SELECTED_FILE_INVALIDATED: StatusWord = StatusWord(0x6283);
    /// `6310`: more data available (GP GET STATUS, GET DATA).
    pub const MORE_DATA_AVAILABLE: StatusWord = StatusWord(0x6310);
    /// `6400`: execution error, state of non-volatile memory unchanged.
    pub const EXECUTION_ERROR: StatusWord = StatusWord(0x6400);
    /// `6581`: memory failure.
    pub const MEMORY_FAILURE: StatusWord = StatusWord(0x6581);
    /// `6700`: wrong length (Lc or Le).
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// `6881`: logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: StatusWord = StatusWord(0x6881);
    /// `6882`: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: StatusWord = StatusWord(0x6882);
    /// `6884`: command chaining not supported (ISO/IEC 7816-4 §5.6 Table 6).
    /// Not classified by [`StatusWord::kind`].
    pub const CHAINING_NOT_SUPPORTED: StatusWord = StatusWord(0x6884);
    /// `6982`: security status not satisfied (wrong MAC, no secure channel).
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6983`: authentication method blocked.
    pub const AUTHENTICATION_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    /// `6984`: referenced data not usable / invalidated.
    pub const REFERENCED_DATA_INVALIDATED: StatusWord = StatusWord(0x6984);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// `6986`: command not allowed.
    pub const COMMAND_NOT_ALLOWED: StatusWord = StatusWord(0x6986);
    /// `6988`: incorrect secure messaging data objects (GP: invalid MAC / cryptogram).
    pub const INCORRECT_SECURE_MESSAGING_DATA: StatusWord = StatusWord(0x6988);
    /// `6999`: applet selection failed (Java Card `SW_APPLET_SELECT_FAILED`).
    pub const APPLET_SELECT_FAILED: StatusWord = StatusWord(0x6999);
    /// `6A80`: incorrect values in the command data.
    pub const INCORRECT_DATA: StatusWord = StatusWord(0x6A80);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A84`: not enough memory space.
    pub const NOT_ENOUGH_MEMORY: StatusWord = StatusWord(0x6A84);
    /// `6A86`: incorrect P1 P2.
    pub const INCORRECT_P1P2: StatusWord = StatusWord(0x6A86);
    /// `6A88`: referenced data (key, data object) not found.
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    /// `6B00`: wrong parameters P1-P2.
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6B00);
    /// `6D00`: instruction not supported or invalid.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// `6F00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);

    /// `6Cxx`: wrong Le, `available` bytes ready; xx is `available` modulo
    /// 256, so 256 gives `6C00` (ISO/IEC 7816-4 §5.6 Table 6).
    pub const fn wrong_le(available: usize) -> StatusWord {
        StatusWord::new(0x6C, (available & 0xFF) as u8)
    }

    /// Builds a status word from SW1 and SW2.
    pub const fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// Builds a status word from its 16-bit value.
    pub const fn from_u16(value: u16) -> Self {
        StatusWord(value)
    }

    /// SW1.
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `SW1 << 8 | SW2`.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// SW1 and SW2 as bytes, in wire order.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// True for `9000` only.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }

    /// True for the warning classes `62xx` and `63xx` (ISO/IEC 7816-4 §5.6);
    /// GP SCP03 still protects these responses with R-MAC.
    pub const fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }

    /// Classifies the status word.
    pub const fn kind(self) -> StatusKind {
        use StatusKind as K;
        match self {
            Self::SUCCESS => K::Success,
            Self::WARNING_NO_INFORMATION => K::WarningNoInformation,
            Self::SELECTED_FILE_INVALIDATED => K::SelectedFileInvalidated,
            Self::MORE_DATA_AVAILABLE => K::MoreDataAvailable,
            Self::EXECUTION_ERROR => K::ExecutionError,
            Self::MEMORY_FAILURE => K::MemoryFailure,
            Self::WRONG_LENGTH => K::WrongLength,
            Self::LOGICAL_CHANNEL_NOT_SUPPORTED => K::LogicalChannelNotSupported,
            Self::SECURE_MESSAGING_NOT_SUPPORTED => K::SecureMessagingNotSupported,
            Self::SECURITY_STATUS_NOT_SATISFIED => K::SecurityStatusNotSatisfied,
            Self::AUTHENTICATION_METHOD_BLOCKED => K::AuthenticationMethodBlocked,
            Self::REFERENCED_DATA_INVALIDATED => K::ReferencedDataInvalidated,
            Self::CONDITIONS_NOT_SATISFIED => K::ConditionsNotSatisfied,
            Self::COMMAND_NOT_ALLOWED => K::CommandNotAllowed,
            Self::INCORRECT_SECURE_MESSAGING_DATA => K::IncorrectSecureMessagingData,
            Self::APPLET_SELECT_FAILED => K::AppletSelectFailed,
            Self::INCORRECT_DATA => K::IncorrectData,
            Self::FUNCTION_NOT_SUPPORTED => K::FunctionNotSupported,
            Self::FILE_NOT_FOUND => K::FileNotFound,
            Self::NOT_ENOUGH_MEMORY => K::NotEnoughMemory,
            Self::INCORRECT_P1P2 => K::IncorrectP1P2,
            Self::REFERENCED_DATA_NOT_FOUND => K::ReferencedDataNotFound,
            Self::WRONG_P1P2 => K::WrongP1P2,
            Self::INS_NOT_SUPPORTED => K::InsNotSupported,
            Self::CLA_NOT_SUPPORTED => K::ClaNotSupported,
            Self::NO_PRECISE_DIAGNOSIS => K::NoPreciseDiagnosis,
            // The families that carry a count in SW2.
            _ => match (self.sw1(), self.sw2()) {
                (0x61, n) => K::BytesAvailable(n),
                (0x63, n) if n & 0xF0 == 0xC0 => K::VerifyFailed { retries: n & 0x0F },
                (0x6C, n) => K::WrongLe(n),
                _ => K::Unknown(self.0),
            },
        }
    }
}

impl StatusKind {
    /// English meaning, as used by `StatusWord`'s `Display`.
    pub fn description(&self) -> String {
        use StatusKind as K;
        let text = match self {
            K::Success => "success",
            K::BytesAvailable(0) => return "256 or more response bytes available".into(),
            K::BytesAvailable(n) => return format!("{n} response bytes available"),
            K::WarningNoInformation => "warning, no information given",
            K::SelectedFileInvalidated => "selected file or application invalidated (locked)",
            K::MoreDataAvailable => "more data available",
            K::VerifyFailed { retries: 0 } => "verification failed, no retries left (blocked)",
            K::VerifyFailed { retries } => {
                return format!("verification failed, {retries} retries left")
            }
            K::ExecutionError => "execution error, memory unchanged",
            K::MemoryFailure => "memory failure",
            K::WrongLength => "wrong length",
            K::LogicalChannelNotSupported => "logical channel not supported",
            K::SecureMessagingNotSupported => "secure messaging not supported",
            K::SecurityStatusNotSatisfied => "security status not satisfied",
            K::AuthenticationMethodBlocked => "authentication method blocked",
            K::ReferencedDataInvalidated => "referenced data invalidated",
            K::ConditionsNotSatisfied => "conditions of use not satisfied",
            K::CommandNotAllowed => "command not allowed",
            K::IncorrectSecureMessagingData => "incorrect secure messaging data objects",
            K::AppletSelectFailed => "applet selection failed",
            K::IncorrectData => "incorrect values in command data",
            K::FunctionNotSupported => "function not supported",
            K::FileNotFound => "file or application not found",
            K::NotEnoughMemory => "not enough memory space",
            K::IncorrectP1P2 => "incorrect P1 P2",
            K::ReferencedDataNotFound => "referenced data not found",
            K::WrongP1P2 => "wrong parameters P1 P2",
            K::WrongLe(0) => return "wrong Le, 256 bytes available".into(),
            K::WrongLe(n) => return format!("wrong Le, {n} bytes available"),
            K::InsNotSupported => "instruction not supported",
            K::ClaNotSupported => "class not supported",
            K::NoPreciseDiagnosis => "no precise diagnosis",
            K::Unknown(_) => "unknown status",
        };
        text.to_owned()
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        StatusWord(value)
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.0
    }
}

/// `6982 (security status not satisfied)`.
impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.kind().description())
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_status_words_are_the_ones_kind_classifies() {
        let classified = [
            StatusWord::SUCCESS,
            StatusWord::SELECTED_FILE_INVALIDATED,
            StatusWord::MEMORY_FAILURE,
            StatusWord::WRONG_LENGTH,
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            StatusWord::INCORRECT_P1P2,
            StatusWord::WRONG_P1P2,
            StatusWord::NO_PRECISE_DIAGNOSIS,
        ];
        assert!(classified
            .iter()
            .all(|sw| sw.kind() != StatusKind::Unknown(sw.as_u16())));
        assert_eq!(StatusWord::INCORRECT_P1P2.kind(), StatusKind::IncorrectP1P2);
        // Named for the card emulations, left unclassified.
        assert_eq!(StatusWord::END_OF_DATA.kind(), StatusKind::Unknown(0x6282));
        assert_eq!(
            StatusWord::CHAINING_NOT_SUPPORTED.kind(),
            StatusKind::Unknown(0x6884)
        );
    }

    #[test]
    fn wrong_le_announces_the_available_length_modulo_256() {
        assert_eq!(StatusWord::wrong_le(10), StatusWord::new(0x6C, 0x0A));
        assert_eq!(StatusWord::wrong_le(256), StatusWord::new(0x6C, 0x00));
    }
}
