//! Key-fob applet commands: STORE DATA personalization (GPC 2.3.1 §11.11,
//! provisioning specification), the post-perso transport configuration (`00 DB`, provisioning specification) and
//! the key-pair verification (`00 88`, `kf_profile::verify`).

use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_profile::{verify, TransportConfig};
use p256::ecdsa::{signature::Signer, Signature};

use crate::fob::{status, VirtualFob};
use crate::perso::{BlockOutcome, PersoSession};

impl VirtualFob {
    /// STORE DATA (INS E2) inside the secure channel (at least C-MAC).
    ///
    /// Order of checks: no secure channel → 6982; already PERSONALIZED → 6985;
    /// then per block (see [`crate::perso`]): bad P1 or P2 out of sequence →
    /// 6A86; unknown DGI → 6A88; bad DGI length/shape, bad padding, invalid
    /// scalar, duplicate DGI, last block ending inside a DGI → 6A80; last
    /// block with a DGI missing → 6985. Any error discards the staged data.
    /// The last block commits: the applet becomes PERSONALIZED (state file
    /// written first; if that fails → 6581 and nothing changes).
    pub(crate) fn store_data(&mut self, cmd: &CommandApdu, secured: bool) -> ResponseApdu {
        let open = self.sm.open_mut();
        if !secured {
            if let Some(open) = open {
                open.perso = None;
            }
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        if self.data.personalization.is_some() {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let Some(open) = open else {
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        };
        let Some(keys) = self.data.key_sets.get(&open.kvn()) else {
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        };
        let mut session = open.perso.take().unwrap_or_else(PersoSession::new);
        match session.block(cmd.p1(), cmd.p2(), cmd.data(), &keys.dek) {
            Ok(BlockOutcome::Continue) => {
                open.perso = Some(session);
                status(StatusWord::SUCCESS)
            }
            Ok(BlockOutcome::Complete(personalization)) => {
                self.data.personalization = Some(personalization);
                if self.persist().is_err() {
                    self.data.personalization = None;
                    return status(StatusWord::MEMORY_FAILURE);
                }
                status(StatusWord::SUCCESS)
            }
            Err(sw) => status(sw),
        }
    }

    /// `00 DB 00 00 03 <id> 01 <value>`: set transport configuration `id`
    /// (0A UICC, 0B BLE) to `value` (01 on, 00 off). Plain or secured; only
    /// when PERSONALIZED (else 6985). P1P2 ≠ 0000 → 6A86; Lc ≠ 3 → 6700;
    /// length byte ≠ 01 or value not 00/01 → 6A80; unknown id → 6A88.
    pub(crate) fn put_config(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        if (cmd.p1(), cmd.p2()) != (0, 0) {
            return status(StatusWord::INCORRECT_P1P2);
        }
        if self.data.personalization.is_none() {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let [id, len, value] = cmd.data() else {
            return status(StatusWord::WRONG_LENGTH);
        };
        if *len != 0x01 || *value > 0x01 {
            return status(StatusWord::INCORRECT_DATA);
        }
        let enable = *value == 0x01;
        let previous = self.data.transport;
        if *id == TransportConfig::Uicc.id() {
            self.data.transport.uicc = enable;
        } else if *id == TransportConfig::Ble.id() {
            self.data.transport.ble = enable;
        } else {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        if self.persist().is_err() {
            self.data.transport = previous;
            return status(StatusWord::MEMORY_FAILURE);
        }
        status(StatusWord::SUCCESS)
    }

    /// `00 88 00 00 Lc challenge 00` (`kf_profile::verify`): ECDSA P-256 /
    /// SHA-256 signature over the challenge with the provisioned key, DER
    /// encoded. Not PERSONALIZED → 6985; P1P2 ≠ 0000 → 6A86; challenge
    /// length outside 16..=64 → 6700.
    pub(crate) fn verify(&self, cmd: &CommandApdu) -> ResponseApdu {
        if (cmd.p1(), cmd.p2()) != (0, 0) {
            return status(StatusWord::INCORRECT_P1P2);
        }
        let Some(personalization) = self.data.personalization.as_ref() else {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        if !verify::CHALLENGE_LEN.contains(&cmd.data().len()) {
            return status(StatusWord::WRONG_LENGTH);
        }
        let signature: Signature = personalization.signing_key.sign(cmd.data());
        ResponseApdu::new(signature.to_der().as_bytes().to_vec(), StatusWord::SUCCESS)
    }
}
