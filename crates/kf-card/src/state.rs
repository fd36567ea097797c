//! The card's persistent data and its state file.
//!
//! The state file is a **test artifact**: a JSON document holding the static
//! keys and the provisioned private scalar in clear, so that a simulated fob
//! survives a restart. It is written atomically (temporary file, fsync,
//! rename, directory fsync) after every committed change, so a crash or a
//! card tear leaves either the previous or the new state, never a torn file.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use kf_crypto::{AesKey, StaticKeys};
use p256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::config::Uid;
use crate::error::FobError;
use crate::life_cycle::IsdLifeCycle;

/// Transport configuration flags set by the post-perso commands
/// `00 DB 00 00 03 <id> 01 <value>` (provisioning specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransportFlags {
    /// `0A`: UICC transport enabled.
    pub uicc: bool,
    /// `0B`: BLE transport enabled.
    pub ble: bool,
}

/// What the applet holds once PERSONALIZED (the typed form of the
/// UNPERSONALIZED → PERSONALIZED transition: present means personalized).
pub(crate) struct Personalization {
    /// The DGIs as received on the wire, by tag (A003 still DEK-encrypted).
    pub dgis: BTreeMap<u16, Vec<u8>>,
    /// The provisioned P-256 key (from DGI A003); zeroized on drop by `p256`.
    pub signing_key: SigningKey,
}

/// Everything a real card keeps in non-volatile memory.
pub(crate) struct CardData {
    pub uid: Uid,
    pub key_sets: BTreeMap<u8, StaticKeys>,
    pub isd_life_cycle: IsdLifeCycle,
    pub personalization: Option<Personalization>,
    pub transport: TransportFlags,
    pub auth_failures: u32,
    /// SCP03 sequence counters by "<sd>/<KVN hex>" (Amd D §6.2.2.1).
    pub sequence_counters: BTreeMap<String, u32>,
}

const FORMAT: &str = "kf-card state v1";
const WARNING: &str =
    "TEST ARTIFACT of the kf-card simulator: holds secret keys in clear; never use production keys";

/// The keys are wiped when dropped.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeySetFile {
    #[zeroize(skip)]
    kvn: u8,
    enc: String,
    mac: String,
    dek: String,
}

/// The state file's form of the card life cycle: the GPC state names (§5.1.1)
/// in upper snake case, as format v1 has always written them. A serde remote
/// definition, so the compiler checks it against [`IsdLifeCycle`] both ways.
#[derive(Serialize, Deserialize)]
#[serde(remote = "IsdLifeCycle", rename_all = "SCREAMING_SNAKE_CASE")]
enum LifeCycleName {
    OpReady,
    Initialized,
    Secured,
    CardLocked,
    Terminated,
}

/// Largest state file read: a few key sets and the personalization data take a few
/// kilobytes.
pub const STATE_FILE_MAX_BYTES: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    warning: String,
    uid: String,
    key_sets: Vec<KeySetFile>,
    #[serde(with = "LifeCycleName")]
    isd_life_cycle: IsdLifeCycle,
    personalized: bool,
    dgis: BTreeMap<String, String>,
    private_scalar: Option<String>,
    transport: TransportFlags,
    auth_failures: u32,
    #[serde(default)]
    sequence_counters: BTreeMap<String, u32>,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if let Some(s) = self.private_scalar.as_mut() {
            s.zeroize();
        }
        if let Some(v) = self.dgis.get_mut("A003") {
            v.zeroize();
        }
    }
}

impl CardData {
    /// The stored SCP03 sequence counter of a security domain's key set.
    pub fn sequence_counter(&self, sd: &str, kvn: u8) -> u32 {
        self.sequence_counters
            .get(&format!("{sd}/{kvn:02X}"))
            .copied()
            .unwrap_or(0)
    }

    /// Records an SCP03 sequence counter.
    pub fn set_sequence_counter(&mut self, sd: &str, kvn: u8, counter: u32) {
        self.sequence_counters
            .insert(format!("{sd}/{kvn:02X}"), counter);
    }

    /// Serializes to the JSON state file format.
    pub fn to_json(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, serde_json::Error> {
        let file = StateFile {
            format: FORMAT.to_owned(),
            warning: WARNING.to_owned(),
            uid: self.uid.to_string(),
            key_sets: self
                .key_sets
                .iter()
                .map(|(kvn, k)| KeySetFile {
                    kvn: *kvn,
                    enc: hex::encode_upper(k.enc.expose_secret()),
                    mac: hex::encode_upper(k.mac.expose_secret()),
                    dek: hex::encode_upper(k.dek.expose_secret()),
                })
                .collect(),
            isd_life_cycle: self.isd_life_cycle,
            personalized: self.personalization.is_some(),
            dgis: self
                .personalization
                .iter()
                .flat_map(|p| p.dgis.iter())
                .map(|(tag, value)| (format!("{tag:04X}"), hex::encode_upper(value)))
                .collect(),
            private_scalar: self
                .personalization
                .as_ref()
                .map(|p| hex::encode_upper(p.signing_key.to_bytes())),
            transport: self.transport,
            auth_failures: self.auth_failures,
            sequence_counters: self.sequence_counters.clone(),
        };
        serde_json::to_vec_pretty(&file).map(zeroize::Zeroizing::new)
    }

    /// Parses a state file's content.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<CardData, FobError> {
        let corrupt = |reason: &str| FobError::CorruptState {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let file: StateFile = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(&format!("JSON: line {}", e.line())))?;
        if file.format != FORMAT {
            return Err(corrupt("unknown format tag"));
        }
        let uid = Uid::from_hex(&file.uid).map_err(|_| corrupt("bad UID"))?;
        let mut key_sets = BTreeMap::new();
        for ks in &file.key_sets {
            let keys = StaticKeys::new(
                AesKey::from_hex(&ks.enc).map_err(|_| corrupt("bad ENC key"))?,
                AesKey::from_hex(&ks.mac).map_err(|_| corrupt("bad MAC key"))?,
                AesKey::from_hex(&ks.dek).map_err(|_| corrupt("bad DEK"))?,
            )
            .map_err(|_| corrupt("key lengths differ in a key set"))?;
            key_sets.insert(ks.kvn, keys);
        }
        let personalization = if file.personalized {
            let mut dgis = BTreeMap::new();
            for (tag, value) in &file.dgis {
                let tag = u16::from_str_radix(tag, 16).map_err(|_| corrupt("bad DGI tag"))?;
                let value = hex::decode(value).map_err(|_| corrupt("bad DGI value"))?;
                dgis.insert(tag, value);
            }
            let scalar_hex = file
                .private_scalar
                .as_deref()
                .ok_or_else(|| corrupt("personalized without a private key"))?;
            let mut scalar = hex::decode(scalar_hex).map_err(|_| corrupt("bad private key"))?;
            let signing_key = SigningKey::from_slice(&scalar);
            scalar.zeroize();
            Some(Personalization {
                dgis,
                signing_key: signing_key.map_err(|_| corrupt("bad private key"))?,
            })
        } else {
            None
        };
        Ok(CardData {
            uid,
            key_sets,
            isd_life_cycle: file.isd_life_cycle,
            personalization,
            transport: file.transport,
            auth_failures: file.auth_failures,
            sequence_counters: file.sequence_counters.clone(),
        })
    }

    /// Loads the state file, `Ok(None)` when it does not exist. It must be a regular file of
    /// at most [`STATE_FILE_MAX_BYTES`].
    pub fn load(path: &Path) -> Result<Option<CardData>, FobError> {
        match kf_files::read_regular(path, STATE_FILE_MAX_BYTES, kf_files::Links::Follow) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                CardData::from_json(&bytes, path).map(Some)
            }
            Err(e) if matches!(e.kind(), kf_files::FileErrorKind::Missing) => Ok(None),
            Err(e) => Err(FobError::StateRead(e)),
        }
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), FobError> {
        let io_error = |source| FobError::StateIo {
            path: path.to_owned(),
            source,
        };
        let json = self
            .to_json()
            .map_err(|e| io_error(std::io::Error::other(e)))?;
        write_atomic(path, &json).map_err(io_error)
    }
}

/// Replaces `path` with `bytes` so that readers see the old or the new content,
/// never a mix, durably; owner-only, because the state holds keys in clear.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    kf_secret_file::replace(path, bytes, kf_secret_file::Access::OwnerOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Named(#[serde(with = "LifeCycleName")] IsdLifeCycle);

    #[test]
    fn life_cycle_names_are_those_of_format_v1() {
        for (state, name) in [
            (IsdLifeCycle::OpReady, "\"OP_READY\""),
            (IsdLifeCycle::Initialized, "\"INITIALIZED\""),
            (IsdLifeCycle::Secured, "\"SECURED\""),
            (IsdLifeCycle::CardLocked, "\"CARD_LOCKED\""),
            (IsdLifeCycle::Terminated, "\"TERMINATED\""),
        ] {
            assert_eq!(serde_json::to_string(&Named(state)).unwrap(), name);
            let back: Named = serde_json::from_str(name).unwrap();
            assert_eq!(back.0, state);
        }
        assert!(serde_json::from_str::<Named>("\"LOCKED\"").is_err());
    }
}
