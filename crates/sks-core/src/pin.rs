//! PIN policies and their rules: formats (§5.6), pattern restrictions (§5.5) and grouping
//! (§5.7), as refined by byte layouts §8.3 and §8.4. [`PinPolicyAttributes`] is the one
//! description of a policy's attributes: the issuer sends them (as [`PinPolicyBytes`]), the SKS
//! checks them into their typed form, stores that in the same byte order, enforces it, and
//! getKeyProtectionInfo reports it. The checks are pure functions on decoded PIN octets.

use crate::api::req;
use crate::codec::{DecodeError, Reader, WireType, Writer};
use crate::consts::{pattern, AppUsage, Grouping, InputMethod, PinFormat, UnknownValue};
use std::convert::Infallible;

/// A PIN policy's attributes in wire order (§5.4–§5.7, §7.4 createPINPolicy). The type
/// parameters say how the three enumerated bytes are held: by default as their checked enums
/// (what the SKS stores and enforces); as plain bytes in [`PinPolicyBytes`], the form the wire
/// carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicyAttributes<Format = PinFormat, Group = Grouping, Input = InputMethod> {
    /// UserDefined: the user chooses the PIN (else the issuer sets it, encrypted).
    pub user_defined: bool,
    /// UserModifiable: changePIN/setPIN allowed.
    pub user_modifiable: bool,
    /// Format.
    pub format: Format,
    /// RetryLimit, 1..10000.
    pub retry_limit: u16,
    /// Grouping.
    pub grouping: Group,
    /// PatternRestrictions bits ([`crate::consts::pattern`]).
    pub pattern_restrictions: u8,
    /// MinLength.
    pub min_length: u16,
    /// MaxLength.
    pub max_length: u16,
    /// InputMethod.
    pub input_method: Input,
}

/// The attributes as createPINPolicy sends them and getKeyProtectionInfo returns them: the
/// enumerated bytes unchecked, because createPINPolicy must refuse an undefined one inside its
/// session (ERROR_OPTION, aborting the session, byte layouts §8.9), not while decoding the frame.
pub type PinPolicyBytes = PinPolicyAttributes<u8, u8, u8>;

impl Default for PinPolicyBytes {
    /// All zeros: what getKeyProtectionInfo reports for a key without a PIN policy.
    fn default() -> Self {
        Self {
            user_defined: false,
            user_modifiable: false,
            format: 0,
            retry_limit: 0,
            grouping: 0,
            pattern_restrictions: 0,
            min_length: 0,
            max_length: 0,
            input_method: 0,
        }
    }
}

impl<Format, Group, Input> PinPolicyAttributes<Format, Group, Input> {
    /// The same attributes with the enumerated fields converted. The conversions run in the
    /// order createPINPolicy reports undefined values in: Grouping, InputMethod, Format.
    fn convert<F, G, I, E>(
        self,
        format: impl FnOnce(Format) -> Result<F, E>,
        grouping: impl FnOnce(Group) -> Result<G, E>,
        input_method: impl FnOnce(Input) -> Result<I, E>,
    ) -> Result<PinPolicyAttributes<F, G, I>, E> {
        let grouping = grouping(self.grouping)?;
        let input_method = input_method(self.input_method)?;
        Ok(PinPolicyAttributes {
            user_defined: self.user_defined,
            user_modifiable: self.user_modifiable,
            format: format(self.format)?,
            retry_limit: self.retry_limit,
            grouping,
            pattern_restrictions: self.pattern_restrictions,
            min_length: self.min_length,
            max_length: self.max_length,
            input_method,
        })
    }
}

impl From<PinPolicyAttributes> for PinPolicyBytes {
    fn from(a: PinPolicyAttributes) -> Self {
        fn byte<T: Into<u8>>(v: T) -> Result<u8, Infallible> {
            Ok(v.into())
        }
        match a.convert(byte, byte, byte) {
            Ok(bytes) => bytes,
            Err(never) => match never {},
        }
    }
}

/// The checked conversion at the wire boundary: fails on the first undefined enumerated byte.
impl TryFrom<PinPolicyBytes> for PinPolicyAttributes {
    type Error = UnknownValue;
    fn try_from(b: PinPolicyBytes) -> Result<Self, UnknownValue> {
        b.convert(
            PinFormat::try_from,
            Grouping::try_from,
            InputMethod::try_from,
        )
    }
}

/// Both forms encode to the same bytes; decoding the typed form refuses an undefined value
/// ([`DecodeError::UnknownValue`]).
impl<Format: WireType, Group: WireType, Input: WireType> WireType
    for PinPolicyAttributes<Format, Group, Input>
{
    fn put(&self, w: &mut Writer) {
        self.user_defined.put(w);
        self.user_modifiable.put(w);
        self.format.put(w);
        self.retry_limit.put(w);
        self.grouping.put(w);
        self.pattern_restrictions.put(w);
        self.min_length.put(w);
        self.max_length.put(w);
        self.input_method.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user_defined: WireType::get(r)?,
            user_modifiable: WireType::get(r)?,
            format: WireType::get(r)?,
            retry_limit: WireType::get(r)?,
            grouping: WireType::get(r)?,
            pattern_restrictions: WireType::get(r)?,
            min_length: WireType::get(r)?,
            max_length: WireType::get(r)?,
            input_method: WireType::get(r)?,
        })
    }
}

/// A PIN policy object (createPINPolicy, §5.4–§5.7): its ID and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPolicy {
    /// ID.
    pub id: String,
    /// The policy's attributes.
    pub attributes: PinPolicyAttributes,
}

impl PinPolicy {
    /// A numeric, user-defined, modifiable policy: 4-8 digits, 3 retries, shared grouping,
    /// any input method, no pattern restrictions.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            attributes: PinPolicyAttributes {
                user_defined: true,
                user_modifiable: true,
                format: PinFormat::Numeric,
                retry_limit: 3,
                grouping: Grouping::Shared,
                pattern_restrictions: 0,
                min_length: 4,
                max_length: 8,
                input_method: InputMethod::Any,
            },
        }
    }

    /// The createPINPolicy request for this policy, without its MAC.
    pub fn to_request(
        &self,
        provisioning_handle: u32,
        puk_policy_handle: u32,
    ) -> req::CreatePinPolicy {
        req::CreatePinPolicy {
            provisioning_handle,
            id: self.id.clone(),
            puk_policy_handle,
            policy: self.attributes.into(),
            mac: Vec::new(),
        }
    }
}

/// Why a PIN does not satisfy its policy. Never contains the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinRuleError {
    /// Outside MinLength..=MaxLength.
    #[error("PIN length error")]
    Length,
    /// Characters outside the format.
    #[error("PIN syntax error")]
    Syntax,
    /// missing-group violated.
    #[error("PIN must contain a mix of character groups")]
    MissingGroup,
    /// sequence violated.
    #[error("PIN must not be a sequence")]
    Sequence,
    /// repeated violated.
    #[error("PIN must not contain repeated characters")]
    Repeated,
    /// two-in-a-row violated.
    #[error("PIN must not contain two equal characters in a row")]
    TwoInARow,
    /// three-in-a-row violated.
    #[error("PIN must not contain three equal characters in a row")]
    ThreeInARow,
    /// Grouping violated.
    #[error("PIN grouping rule violated")]
    Grouping,
}

/// Checks a PUK or PIN against a format only (createPUKPolicy, §5.6).
pub fn check_syntax(fmt: PinFormat, value: &[u8]) -> Result<(), PinRuleError> {
    let ok = match fmt {
        PinFormat::Numeric => value.iter().all(u8::is_ascii_digit),
        PinFormat::Alphanumeric => value
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
        PinFormat::String | PinFormat::Binary => true,
    };
    if ok {
        Ok(())
    } else {
        Err(PinRuleError::Syntax)
    }
}

/// Length, syntax and pattern checks of byte layouts §8.3 (steps 1-6).
pub fn check_pin(policy: &PinPolicyAttributes, pin: &[u8]) -> Result<(), PinRuleError> {
    let len = pin.len();
    if len < usize::from(policy.min_length) || len > usize::from(policy.max_length) {
        return Err(PinRuleError::Length);
    }
    check_syntax(policy.format, pin)?;
    let p = policy.pattern_restrictions;
    if p & pattern::MISSING_GROUP != 0 {
        let upper = pin.iter().any(u8::is_ascii_uppercase);
        let lower = pin.iter().any(u8::is_ascii_lowercase);
        let digit = pin.iter().any(u8::is_ascii_digit);
        let other = pin.iter().any(|c| !c.is_ascii_alphanumeric());
        let ok = upper && digit && (policy.format != PinFormat::String || (lower && other));
        if !ok {
            return Err(PinRuleError::MissingGroup);
        }
    }
    if p & pattern::SEQUENCE != 0 && len > 1 {
        let d = pin[1].wrapping_sub(pin[0]);
        if (d == 1 || d == 0xFF) && pin.windows(2).all(|w| w[1] == w[0].wrapping_add(d)) {
            return Err(PinRuleError::Sequence);
        }
    }
    if p & pattern::REPEATED != 0 {
        let mut seen = [false; 256];
        for &c in pin {
            if seen[usize::from(c)] {
                return Err(PinRuleError::Repeated);
            }
            seen[usize::from(c)] = true;
        }
    }
    if p & pattern::TWO_IN_A_ROW != 0 {
        if pin.windows(2).any(|w| w[0] == w[1]) {
            return Err(PinRuleError::TwoInARow);
        }
    } else if p & pattern::THREE_IN_A_ROW != 0
        && pin.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
    {
        return Err(PinRuleError::ThreeInARow);
    }
    Ok(())
}

/// True if two keys with these AppUsages are in the same synchronised PIN set (§8.4).
pub fn same_pin_group(grouping: Grouping, usage_a: AppUsage, usage_b: AppUsage) -> bool {
    match grouping {
        Grouping::Shared => true,
        Grouping::SignaturePlusStandard => {
            (usage_a == AppUsage::Signature) == (usage_b == AppUsage::Signature)
        }
        Grouping::Unique => usage_a == usage_b,
        Grouping::None => false,
    }
}

/// Creation-time grouping check (byte layouts §8.4): `others` are (AppUsage, PIN) of the
/// keys already governed by the same policy.
pub fn check_grouping<'a>(
    grouping: Grouping,
    usage: AppUsage,
    pin: &[u8],
    others: impl IntoIterator<Item = (AppUsage, &'a [u8])>,
) -> Result<(), PinRuleError> {
    if grouping == Grouping::None {
        return Ok(());
    }
    for (other_usage, other_pin) in others {
        let equal = crate::secret::ct_eq(pin, other_pin);
        let same_group = same_pin_group(grouping, usage, other_usage);
        if same_group != equal {
            return Err(PinRuleError::Grouping);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(fmt: PinFormat, pattern_restrictions: u8) -> PinPolicyAttributes {
        PinPolicyAttributes {
            format: fmt,
            grouping: Grouping::None,
            pattern_restrictions,
            min_length: 1,
            max_length: 128,
            ..PinPolicy::new("PIN").attributes
        }
    }

    /// The typed and the byte form are one encoding; the checked conversion refuses an undefined
    /// byte, Grouping before InputMethod before Format.
    #[test]
    fn attributes_convert_and_encode_alike() {
        let typed = PinPolicy::new("PIN").attributes;
        let bytes = PinPolicyBytes::from(typed);
        let encode = |v: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new();
            v(&mut w);
            w.into_bytes()
        };
        let encoded = encode(&|w| typed.put(w));
        assert_eq!(encoded, encode(&|w| bytes.put(w)));
        let decoded = encoded.map(|e| <PinPolicyAttributes>::get(&mut Reader::new(&e)));
        assert_eq!(decoded, Ok(Ok(typed)));
        assert_eq!(<PinPolicyAttributes>::try_from(bytes), Ok(typed));
        let undefined = PinPolicyBytes {
            format: 4,
            grouping: 4,
            input_method: 0,
            ..bytes
        };
        let field = |b| <PinPolicyAttributes>::try_from(b).map_err(|e: UnknownValue| e.field);
        assert_eq!(field(undefined), Err("Grouping"));
        assert_eq!(
            field(PinPolicyBytes {
                grouping: 0,
                ..undefined
            }),
            Err("InputMethod")
        );
        assert_eq!(
            field(PinPolicyBytes {
                grouping: 0,
                input_method: 1,
                ..undefined
            }),
            Err("Format")
        );
    }

    /// Examples from byte layouts §8.3 ([T] test13).
    #[test]
    fn pattern_examples_from_the_reference_suite() {
        let s = policy(PinFormat::String, pattern::MISSING_GROUP);
        assert!(check_pin(&s, b"2aZ.").is_ok());
        for bad in [&b"2aZA"[..], b"a.jZ", b"2 ZA", b"2a 6"] {
            assert_eq!(check_pin(&s, bad), Err(PinRuleError::MissingGroup));
        }
        let a = policy(PinFormat::Alphanumeric, pattern::MISSING_GROUP);
        assert!(check_pin(&a, b"AB34").is_ok());
        assert_eq!(check_pin(&a, b"ABCK"), Err(PinRuleError::MissingGroup));
        assert_eq!(check_pin(&a, b"1235"), Err(PinRuleError::MissingGroup));
        let q = policy(PinFormat::Numeric, pattern::SEQUENCE);
        assert_eq!(check_pin(&q, b"1234"), Err(PinRuleError::Sequence));
        assert_eq!(check_pin(&q, b"8765"), Err(PinRuleError::Sequence));
        assert!(check_pin(&q, b"1235").is_ok());
        assert!(check_pin(&q, b"1345").is_ok());
        assert!(check_pin(&q, b"7").is_ok());
        let r = policy(PinFormat::Numeric, pattern::REPEATED);
        assert_eq!(check_pin(&r, b"1315"), Err(PinRuleError::Repeated));
        let two = policy(PinFormat::Numeric, pattern::TWO_IN_A_ROW);
        assert_eq!(check_pin(&two, b"11345"), Err(PinRuleError::TwoInARow));
        assert_eq!(check_pin(&two, b"13455"), Err(PinRuleError::TwoInARow));
        let three = policy(PinFormat::Numeric, pattern::THREE_IN_A_ROW);
        assert!(check_pin(&three, b"11232").is_ok());
        assert_eq!(check_pin(&three, b"111345"), Err(PinRuleError::ThreeInARow));
        assert_eq!(check_pin(&three, b"134555"), Err(PinRuleError::ThreeInARow));
        let both = policy(
            PinFormat::Numeric,
            pattern::TWO_IN_A_ROW | pattern::THREE_IN_A_ROW,
        );
        assert_eq!(check_pin(&both, b"1123"), Err(PinRuleError::TwoInARow));
    }

    #[test]
    fn formats_and_lengths() {
        let mut n = policy(PinFormat::Numeric, 0);
        n.min_length = 4;
        n.max_length = 6;
        assert_eq!(check_pin(&n, b"123"), Err(PinRuleError::Length));
        assert_eq!(check_pin(&n, b"1234567"), Err(PinRuleError::Length));
        assert_eq!(check_pin(&n, b"12a4"), Err(PinRuleError::Syntax));
        assert!(check_pin(&n, b"1234").is_ok());
        let a = policy(PinFormat::Alphanumeric, 0);
        assert_eq!(check_pin(&a, b"AbC1"), Err(PinRuleError::Syntax));
        assert!(check_pin(&a, b"ABC1").is_ok());
        assert!(check_pin(&policy(PinFormat::String, 0), "pässword".as_bytes()).is_ok());
        assert!(check_pin(&policy(PinFormat::Binary, 0), &[0, 0xFF, 0x80]).is_ok());
    }

    #[test]
    fn grouping_rules() {
        use AppUsage::*;
        let others = [(Signature, &b"1111"[..]), (Authentication, &b"2222"[..])];
        assert!(check_grouping(Grouping::None, Encryption, b"9999", others).is_ok());
        assert!(check_grouping(
            Grouping::Shared,
            Encryption,
            b"1111",
            [(Signature, &b"1111"[..])]
        )
        .is_ok());
        assert_eq!(
            check_grouping(
                Grouping::Shared,
                Encryption,
                b"1112",
                [(Signature, &b"1111"[..])]
            ),
            Err(PinRuleError::Grouping)
        );
        assert!(
            check_grouping(Grouping::SignaturePlusStandard, Encryption, b"2222", others).is_ok()
        );
        assert_eq!(
            check_grouping(Grouping::SignaturePlusStandard, Encryption, b"1111", others),
            Err(PinRuleError::Grouping)
        );
        assert!(
            check_grouping(Grouping::SignaturePlusStandard, Signature, b"1111", others).is_ok()
        );
        assert_eq!(
            check_grouping(Grouping::Unique, Encryption, b"2222", others),
            Err(PinRuleError::Grouping)
        );
        assert!(check_grouping(Grouping::Unique, Encryption, b"3333", others).is_ok());
        assert_eq!(
            check_grouping(Grouping::Unique, Authentication, b"3333", others),
            Err(PinRuleError::Grouping)
        );
    }
}
