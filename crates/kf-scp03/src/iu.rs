//! The INITIALIZE UPDATE response data field (Amd D §7.1.1.1, Table 7-2).
//!
//! ```text
//! KDD (10) | KVN | SCP id '03' | i | card challenge (8|16) | card cryptogram (8|16) | [sequence counter (3)]
//! ```
//! The sequence counter is present exactly when "i" has bit 0x10 (pseudo-random challenge).

use crate::{Mode, ParameterI, Scp03Error};

/// SCP identifier of SCP03 in the key information.
pub const SCP_IDENTIFIER: u8 = 0x03;
/// Length of the key diversification data.
pub const KDD_LEN: usize = 10;

/// Parsed INITIALIZE UPDATE response data (status word excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeUpdateResponse {
    /// Key diversification data (public, used by back ends to derive static keys).
    pub key_diversification_data: [u8; KDD_LEN],
    /// Key version number the card used.
    pub key_version: u8,
    /// The "i" parameter.
    pub parameter_i: ParameterI,
    /// Card challenge (8 or 16 bytes by mode).
    pub card_challenge: Vec<u8>,
    /// Card cryptogram (8 or 16 bytes by mode).
    pub card_cryptogram: Vec<u8>,
    /// Sequence counter, present iff the challenge is pseudo-random.
    pub sequence_counter: Option<[u8; 3]>,
}

impl InitializeUpdateResponse {
    /// Parses the response data strictly for `mode`: exact length, SCP id '03',
    /// a valid "i", and a sequence counter exactly when "i" announces one.
    pub fn parse(data: &[u8], mode: Mode) -> Result<InitializeUpdateResponse, Scp03Error> {
        let n = mode.byte_len();
        let base = KDD_LEN + 3 + 2 * n;
        let bad_len = || Scp03Error::InvalidInitializeUpdateResponse {
            len: data.len(),
            mode: mode.name(),
        };
        if data.len() != base && data.len() != base + 3 {
            return Err(bad_len());
        }
        if data[KDD_LEN + 1] != SCP_IDENTIFIER {
            return Err(Scp03Error::UnexpectedScpIdentifier(data[KDD_LEN + 1]));
        }
        let parameter_i = ParameterI::new(data[KDD_LEN + 2])?;
        let has_counter = data.len() == base + 3;
        if has_counter != parameter_i.pseudo_random_challenge() {
            return Err(bad_len());
        }
        let mut kdd = [0u8; KDD_LEN];
        kdd.copy_from_slice(&data[..KDD_LEN]);
        let body = &data[KDD_LEN + 3..];
        let sequence_counter = if has_counter {
            Some([body[2 * n], body[2 * n + 1], body[2 * n + 2]])
        } else {
            None
        };
        Ok(InitializeUpdateResponse {
            key_diversification_data: kdd,
            key_version: data[KDD_LEN],
            parameter_i,
            card_challenge: body[..n].to_vec(),
            card_cryptogram: body[n..2 * n].to_vec(),
            sequence_counter,
        })
    }

    /// Encodes the response data (card side).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KDD_LEN + 3 + 2 * 16 + 3);
        out.extend_from_slice(&self.key_diversification_data);
        out.extend_from_slice(&[self.key_version, SCP_IDENTIFIER, self.parameter_i.value()]);
        out.extend_from_slice(&self.card_challenge);
        out.extend_from_slice(&self.card_cryptogram);
        if let Some(c) = self.sequence_counter {
            out.extend_from_slice(&c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_pysim_s8_response() {
        let data = hex::decode("000000000000000000003003703EB51047495B249F66C484C1D2EF1948000002")
            .unwrap();
        let r = InitializeUpdateResponse::parse(&data, Mode::S8).unwrap();
        assert_eq!(r.key_version, 0x30);
        assert_eq!(r.parameter_i.value(), 0x70);
        assert_eq!(r.card_challenge, hex::decode("3EB51047495B249F").unwrap());
        assert_eq!(r.card_cryptogram, hex::decode("66C484C1D2EF1948").unwrap());
        assert_eq!(r.sequence_counter, Some([0, 0, 2]));
        assert_eq!(r.to_bytes(), data);
        assert!(matches!(
            InitializeUpdateResponse::parse(&data, Mode::S16),
            Err(Scp03Error::InvalidInitializeUpdateResponse { .. })
        ));
    }

    #[test]
    fn counter_presence_must_match_i() {
        let mut data = vec![0u8; 29];
        data[11] = 0x03;
        data[12] = 0x10; // pseudo-random announced, counter missing
        assert_eq!(
            InitializeUpdateResponse::parse(&data, Mode::S8),
            Err(Scp03Error::InvalidInitializeUpdateResponse {
                len: 29,
                mode: Mode::S8.name()
            })
        );
        data[12] = 0x00;
        assert!(InitializeUpdateResponse::parse(&data, Mode::S8).is_ok());
        data[11] = 0x02;
        assert_eq!(
            InitializeUpdateResponse::parse(&data, Mode::S8),
            Err(Scp03Error::UnexpectedScpIdentifier(0x02))
        );
    }
}
