//! Configuration of a virtual fob: UID, SCP03 key sets, SCP03 options, state file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use kf_crypto::{AesKey, StaticKeys};
use kf_profile::{DEV_SAMPLE_DEK, DEV_SAMPLE_ENC, DEV_SAMPLE_KVN, DEV_SAMPLE_MAC};
use kf_scp03::Mode;
use rand_core::{OsRng, RngCore};

use crate::error::FobError;
use crate::life_cycle::IsdLifeCycle;

/// The contactless UID returned by `FF CA 00 00 00` (PC/SC part 3 §3.2.2.1.3):
/// 4, 7 or 10 bytes (ISO/IEC 14443-3 single, double, triple size).
#[derive(Clone, PartialEq, Eq)]
pub struct Uid(Vec<u8>);

impl Uid {
    /// Length of the default UID (JCOP 4 triple-size UID; the NXP KDF3 context is 10 bytes).
    pub const DEFAULT_LEN: usize = 10;

    /// A UID from 4, 7 or 10 bytes.
    pub fn new(bytes: &[u8]) -> Result<Uid, FobError> {
        if matches!(bytes.len(), 4 | 7 | 10) {
            Ok(Uid(bytes.to_vec()))
        } else {
            Err(FobError::InvalidUid { len: bytes.len() })
        }
    }

    /// A UID from hex (4, 7 or 10 bytes).
    pub fn from_hex(text: &str) -> Result<Uid, FobError> {
        let bytes = hex::decode(text.trim()).map_err(|_| FobError::InvalidUidHex)?;
        Uid::new(&bytes)
    }

    /// A random UID of `len` bytes (4, 7 or 10). A 7- or 10-byte UID starts
    /// with the NXP manufacturer code 04 (ISO/IEC 7816-6 registration), like a real JCOP.
    pub fn random(len: usize) -> Result<Uid, FobError> {
        if !matches!(len, 4 | 7 | 10) {
            return Err(FobError::InvalidUid { len });
        }
        let mut bytes = vec![0u8; len];
        OsRng.fill_bytes(&mut bytes);
        if len > 4 {
            bytes[0] = 0x04;
        }
        Ok(Uid(bytes))
    }

    /// The UID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", hex::encode_upper(&self.0))
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

/// Default SCP03 "i" parameter: `70` = pseudo-random card challenge, R-MAC and
/// R-ENC supported (GPC Amd D §5.1).
pub const DEFAULT_SCP_I: u8 = 0x70;

/// Everything needed to build a [`crate::VirtualFob`].
///
/// When a state file is given and exists, the card data it holds (UID, key
/// sets, life cycles, personalization, counters) wins over `uid`, `key_sets`
/// and `isd_life_cycle` here: those only initialize a fresh card. The SCP03
/// options (`scp_i`, `mode`) always come from the configuration.
pub struct FobConfig {
    /// UID; `None` draws a random 10-byte UID.
    pub uid: Option<Uid>,
    /// Static SCP03 key sets by key version number (the ISD and the applet's
    /// security domain share them in this profile).
    pub key_sets: BTreeMap<u8, StaticKeys>,
    /// SCP03 "i" parameter announced in INITIALIZE UPDATE (GPC Amd D §5.1).
    pub scp_i: u8,
    /// S8 or S16 mode (GPC Amd D §6.2.2: challenge, cryptogram and MAC length).
    pub mode: Mode,
    /// Initial life cycle of the ISD (card) for a fresh card.
    pub isd_life_cycle: IsdLifeCycle,
    /// File the card state is persisted to (a test artifact: it holds keys in clear).
    pub state_file: Option<PathBuf>,
}

impl FobConfig {
    /// The provisioning specification's development-sample configuration: dev-sample keys at KVN
    /// 0xFF, i = 70, S8, random 10-byte UID, ISD in OP_READY, no state file.
    pub fn dev_sample() -> FobConfig {
        let mut key_sets = BTreeMap::new();
        // The constants are 16-byte keys, so this cannot fail; an empty map
        // (every INITIALIZE UPDATE → 6A88) would be the visible outcome if it did.
        if let Ok(keys) = dev_sample_keys() {
            key_sets.insert(DEV_SAMPLE_KVN, keys);
        }
        FobConfig {
            uid: None,
            key_sets,
            scp_i: DEFAULT_SCP_I,
            mode: Mode::S8,
            isd_life_cycle: IsdLifeCycle::OpReady,
            state_file: None,
        }
    }

    /// Sets the UID.
    pub fn with_uid(mut self, uid: Uid) -> FobConfig {
        self.uid = Some(uid);
        self
    }

    /// Replaces all key sets with a single one.
    pub fn with_only_key_set(mut self, kvn: u8, keys: StaticKeys) -> FobConfig {
        self.key_sets.clear();
        self.key_sets.insert(kvn, keys);
        self
    }

    /// Adds (or replaces) a key set.
    pub fn with_key_set(mut self, kvn: u8, keys: StaticKeys) -> FobConfig {
        self.key_sets.insert(kvn, keys);
        self
    }

    /// Sets the SCP03 "i" parameter.
    pub fn with_scp_i(mut self, scp_i: u8) -> FobConfig {
        self.scp_i = scp_i;
        self
    }

    /// Sets S8 or S16 mode.
    pub fn with_mode(mut self, mode: Mode) -> FobConfig {
        self.mode = mode;
        self
    }

    /// Sets the initial ISD life cycle of a fresh card.
    pub fn with_isd_life_cycle(mut self, life_cycle: IsdLifeCycle) -> FobConfig {
        self.isd_life_cycle = life_cycle;
        self
    }

    /// Persists the card state to `path` (atomic writes after each committed change).
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> FobConfig {
        self.state_file = Some(path.into());
        self
    }
}

impl Default for FobConfig {
    fn default() -> Self {
        FobConfig::dev_sample()
    }
}

impl fmt::Debug for FobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FobConfig")
            .field("uid", &self.uid)
            .field("key_versions", &self.key_sets.keys().collect::<Vec<_>>())
            .field("scp_i", &format_args!("{:02X}", self.scp_i))
            .field("mode", &self.mode)
            .field("isd_life_cycle", &self.isd_life_cycle)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// The provisioning specification's development-sample key set (KVN 0xFF).
pub fn dev_sample_keys() -> Result<StaticKeys, FobError> {
    Ok(StaticKeys::new(
        AesKey::from_slice(&DEV_SAMPLE_ENC)?,
        AesKey::from_slice(&DEV_SAMPLE_MAC)?,
        AesKey::from_slice(&DEV_SAMPLE_DEK)?,
    )?)
}
