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

impl StatusWord {
    /// `9000`.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);

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
        match (self.sw1(), self.sw2()) {
            (0x90, 0x00) => K::Success,
            (0x61, n) => K::BytesAvailable(n),
            (0x62, 0x00) => K::WarningNoInformation,
            (0x62, 0x83) => K::SelectedFileInvalidated,
            (0x63, 0x10) => K::MoreDataAvailable,
            (0x63, n) if n & 0xF0 == 0xC0 => K::VerifyFailed { retries: n & 0x0F },
            (0x64, 0x00) => K::ExecutionError,
            (0x65, 0x81) => K::MemoryFailure,
            (0x67, 0x00) => K::WrongLength,
            (0x68, 0x81) => K::LogicalChannelNotSupported,
            (0x68, 0x82) => K::SecureMessagingNotSupported,
            (0x69, 0x82) => K::SecurityStatusNotSatisfied,
            (0x69, 0x83) => K::AuthenticationMethodBlocked,
            (0x69, 0x84) => K::ReferencedDataInvalidated,
            (0x69, 0x85) => K::ConditionsNotSatisfied,
            (0x69, 0x86) => K::CommandNotAllowed,
            (0x69, 0x88) => K::IncorrectSecureMessagingData,
            (0x69, 0x99) => K::AppletSelectFailed,
            (0x6A, 0x80) => K::IncorrectData,
            (0x6A, 0x81) => K::FunctionNotSupported,
            (0x6A, 0x82) => K::FileNotFound,
            (0x6A, 0x84) => K::NotEnoughMemory,
            (0x6A, 0x86) => K::IncorrectP1P2,
            (0x6A, 0x88) => K::ReferencedDataNotFound,
            (0x6B, 0x00) => K::WrongP1P2,
            (0x6C, n) => K::WrongLe(n),
            (0x6D, 0x00) => K::InsNotSupported,
            (0x6E, 0x00) => K::ClaNotSupported,
            (0x6F, 0x00) => K::NoPreciseDiagnosis,
            _ => K::Unknown(self.0),
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
