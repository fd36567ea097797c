//! Protocol parameters: the "i" parameter (Amd D §5.1), the security level
//! (Amd D §7.1.2.1) and the S8/S16 challenge mode.

use std::fmt;

use crate::Scp03Error;

/// The SCP03 "i" parameter (Amd D Table 5-1).
///
/// Bit 0x10: pseudo-random card challenge; 0x20: R-MAC support; 0x40:
/// R-ENCRYPTION support (only together with 0x20). Bits b1–b4 are RFU and b8 is
/// reserved in Amd D v1.1.1, so values with them set are rejected: the valid
/// values are 00, 10, 20, 30, 60 and 70. The S8/S16 mode is not read from "i";
/// it follows from the host challenge length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParameterI(u8);

impl ParameterI {
    /// Pseudo-random card challenge bit (Amd D Table 5-1).
    pub const PSEUDO_RANDOM_CHALLENGE: u8 = 0x10;
    /// R-MAC support bit.
    pub const R_MAC: u8 = 0x20;
    /// R-ENCRYPTION support bit (requires R-MAC).
    pub const R_ENC: u8 = 0x40;

    /// Validates an "i" byte.
    pub fn new(value: u8) -> Result<ParameterI, Scp03Error> {
        let r_enc_without_r_mac = value & Self::R_ENC != 0 && value & Self::R_MAC == 0;
        if value & !(Self::PSEUDO_RANDOM_CHALLENGE | Self::R_MAC | Self::R_ENC) != 0
            || r_enc_without_r_mac
        {
            return Err(Scp03Error::UnsupportedParameterI(value));
        }
        Ok(ParameterI(value))
    }

    /// The raw byte.
    pub fn value(self) -> u8 {
        self.0
    }

    /// Whether the card challenge is pseudo-random (and a sequence counter follows it).
    pub fn pseudo_random_challenge(self) -> bool {
        self.0 & Self::PSEUDO_RANDOM_CHALLENGE != 0
    }

    /// Whether R-MAC is supported.
    pub fn r_mac(self) -> bool {
        self.0 & Self::R_MAC != 0
    }

    /// Whether R-ENCRYPTION is supported.
    pub fn r_enc(self) -> bool {
        self.0 & Self::R_ENC != 0
    }

    /// Whether `level` can be used with this "i" (Amd D §5.1, §6.2.1).
    pub fn allows(self, level: SecurityLevel) -> bool {
        (!level.r_mac() || self.r_mac()) && (!level.r_enc() || self.r_enc())
    }

    /// The six values Amd D v1.1.1 defines.
    pub const ALL: [u8; 6] = [0x00, 0x10, 0x20, 0x30, 0x60, 0x70];
}

impl fmt::Debug for ParameterI {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParameterI({:02X})", self.0)
    }
}

/// Security level of a session, the P1 of EXTERNAL AUTHENTICATE (Amd D Table 7-3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// '00': no secure messaging expected.
    pub const NONE: SecurityLevel = SecurityLevel(0x00);
    /// '01': C-MAC.
    pub const C_MAC: SecurityLevel = SecurityLevel(0x01);
    /// '03': C-DECRYPTION and C-MAC.
    pub const C_DEC_C_MAC: SecurityLevel = SecurityLevel(0x03);
    /// '11': C-MAC and R-MAC.
    pub const C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x11);
    /// '13': C-DECRYPTION, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x13);
    /// '33': C-DECRYPTION, R-ENCRYPTION, C-MAC and R-MAC.
    pub const FULL: SecurityLevel = SecurityLevel(0x33);

    /// Every level of Amd D Table 7-3.
    pub const ALL: [SecurityLevel; 6] = [
        Self::NONE,
        Self::C_MAC,
        Self::C_DEC_C_MAC,
        Self::C_MAC_R_MAC,
        Self::C_DEC_C_MAC_R_MAC,
        Self::FULL,
    ];

    /// Validates a P1 byte: only the six values of Amd D Table 7-3 are accepted
    /// (so R-ENC always comes with R-MAC and C-DEC, and C-DEC with C-MAC).
    pub fn new(value: u8) -> Result<SecurityLevel, Scp03Error> {
        if Self::ALL.iter().any(|l| l.0 == value) {
            Ok(SecurityLevel(value))
        } else {
            Err(Scp03Error::UnsupportedSecurityLevel(value))
        }
    }

    /// The raw byte.
    pub fn value(self) -> u8 {
        self.0
    }

    /// Commands carry a C-MAC.
    pub const fn c_mac(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Command data is encrypted.
    pub const fn c_dec(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// Responses carry an R-MAC.
    pub fn r_mac(self) -> bool {
        self.0 & 0x10 != 0
    }

    /// Response data is encrypted.
    pub fn r_enc(self) -> bool {
        self.0 & 0x20 != 0
    }

    /// Whether this level includes every protection of `minimum`.
    pub fn includes(self, minimum: SecurityLevel) -> bool {
        self.0 & minimum.0 == minimum.0
    }
}

impl fmt::Debug for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecurityLevel({:02X})", self.0)
    }
}

/// Challenge, cryptogram and MAC length mode.
///
/// S8 is the mode of Amd D v1.1.1 (8-byte challenges, cryptograms and MACs).
/// S16 (introduced in later Amendment D revisions) uses 16 bytes for all three;
/// the KDF context is then 32 bytes and cryptograms use L = '0080'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 8-byte challenges, cryptograms and MACs.
    S8,
    /// 16-byte challenges, cryptograms and MACs.
    S16,
}

impl Mode {
    /// Length in bytes of challenges, cryptograms and MACs.
    pub const fn byte_len(self) -> usize {
        match self {
            Mode::S8 => 8,
            Mode::S16 => 16,
        }
    }

    /// The KDF "L" of challenges and cryptograms, in bits.
    pub fn l_bits(self) -> u16 {
        (self.byte_len() * 8) as u16
    }

    /// The mode whose challenge length is `len`.
    pub fn from_challenge_len(len: usize) -> Result<Mode, Scp03Error> {
        match len {
            8 => Ok(Mode::S8),
            16 => Ok(Mode::S16),
            n => Err(Scp03Error::InvalidHostChallengeLength(n)),
        }
    }

    /// "S8" or "S16".
    pub fn name(self) -> &'static str {
        match self {
            Mode::S8 => "S8",
            Mode::S16 => "S16",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse` accepts exactly the bytes in `valid` and refuses every other
    /// byte with `refusal` of it.
    fn accepts_exactly(
        what: &str,
        valid: &[u8],
        parse: impl Fn(u8) -> Result<u8, Scp03Error>,
        refusal: fn(u8) -> Scp03Error,
    ) {
        for v in 0..=255u8 {
            let expected = if valid.contains(&v) {
                Ok(v)
            } else {
                Err(refusal(v))
            };
            assert_eq!(parse(v), expected, "{what} = {v:02X}");
        }
    }

    #[test]
    fn parameter_i_accepts_exactly_the_amd_d_values() {
        accepts_exactly(
            "i",
            &ParameterI::ALL,
            |v| ParameterI::new(v).map(|i| i.value()),
            Scp03Error::UnsupportedParameterI,
        );
    }

    #[test]
    fn security_level_accepts_exactly_table_7_3() {
        accepts_exactly(
            "level",
            &[0x00, 0x01, 0x03, 0x11, 0x13, 0x33],
            |v| SecurityLevel::new(v).map(|l| l.value()),
            Scp03Error::UnsupportedSecurityLevel,
        );
    }

    #[test]
    fn level_allowed_by_i() {
        let i00 = ParameterI::new(0x00).unwrap();
        let i30 = ParameterI::new(0x30).unwrap();
        let i70 = ParameterI::new(0x70).unwrap();
        assert!(i00.allows(SecurityLevel::C_DEC_C_MAC));
        assert!(!i00.allows(SecurityLevel::C_MAC_R_MAC));
        assert!(i30.allows(SecurityLevel::C_DEC_C_MAC_R_MAC));
        assert!(!i30.allows(SecurityLevel::FULL));
        assert!(i70.allows(SecurityLevel::FULL));
    }
}
