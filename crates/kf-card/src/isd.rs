//! Issuer Security Domain commands: SELECT (GPC 2.3.1 §11.9), GET DATA
//! (§11.3), SET STATUS (§11.10), GET STATUS (§11.4).

use kf_apdu::gp::{
    self, tag, CardLifeCycle, GetStatusFormat, GetStatusScope, SelectP1, SelectP2, SetStatusScope,
};
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord, Tlv, TlvError};
use kf_profile::{APPLET_AID, ISD_AID};

use crate::fob::{status, VirtualFob};
use crate::selected::Selected;

/// Privileges of the ISD in GET STATUS (GPC Table 11-7): Security Domain,
/// Card Lock, Card Terminate, Card Reset, CVM Management; Trusted Path,
/// Authorized Management, Global Delete/Lock/Registry, Final Application; Receipt Generation.
const ISD_PRIVILEGES: [u8; 3] = [0x9E, 0xFE, 0x80];

impl VirtualFob {
    /// SELECT by name (GPC §11.9, §6.4.2.1.2): full or partial (≥ 5 bytes) AID
    /// match against the registry (ISD, then applet); no data selects the ISD.
    /// P1 00/01/02/08/09 (file selection; there is no file system) → 6A82.
    /// In CARD_LOCKED, the ISD is re-selected with warning 6283 and the
    /// applet gets 6A81 (Table 11-83, 11-84). Selecting ends the secure
    /// channel and any STORE DATA sequence.
    pub(crate) fn select(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        use SelectP1::*;
        match SelectP1::from_byte(cmd.p1()) {
            Some(ByName) => {}
            Some(FileIdentifier | ChildDf | ElementaryFile | PathFromMf | PathFromCurrentDf) => {
                return status(StatusWord::FILE_NOT_FOUND)
            }
            Some(ParentDf) | None => return status(StatusWord::INCORRECT_P1P2),
        }
        let want_fci = match SelectP2::from_byte(cmd.p2()) {
            Some(SelectP2::FirstOccurrence) => true,
            Some(SelectP2::FirstOccurrenceNoData) => false,
            // The registry has a single match per AID prefix here.
            Some(SelectP2::NextOccurrence) => return status(StatusWord::FILE_NOT_FOUND),
            None => return status(StatusWord::INCORRECT_P1P2),
        };
        let aid = cmd.data();
        let target = if aid.is_empty() || matches_aid(aid, ISD_AID) {
            Selected::Isd
        } else if matches_aid(aid, APPLET_AID) {
            Selected::Applet
        } else {
            return status(StatusWord::FILE_NOT_FOUND);
        };
        let locked = self.data.isd_life_cycle == CardLifeCycle::CardLocked;
        if locked && target == Selected::Applet {
            return status(StatusWord::FUNCTION_NOT_SUPPORTED);
        }
        self.sm.close();
        self.selected = target;
        let data = if want_fci {
            match fci(target.aid()) {
                Ok(fci) => fci,
                Err(_) => return status(StatusWord::NO_PRECISE_DIAGNOSIS),
            }
        } else {
            Vec::new()
        };
        let sw = if locked {
            StatusWord::SELECTED_FILE_INVALIDATED
        } else {
            StatusWord::SUCCESS
        };
        ResponseApdu::new(data, sw)
    }

    /// GET DATA (GPC §11.3): `00E0` key information template and `9F7F`
    /// CPLC (ISD); `0066` card data and anything else → 6A88.
    pub(crate) fn get_data(&self, cmd: &CommandApdu) -> ResponseApdu {
        let tag = u16::from_be_bytes([cmd.p1(), cmd.p2()]);
        match (tag, self.selected) {
            (gp::KEY_INFORMATION_TAG, Selected::Isd) => match self.key_information() {
                Ok(data) => ResponseApdu::new(data, StatusWord::SUCCESS),
                Err(_) => status(StatusWord::NO_PRECISE_DIAGNOSIS),
            },
            (kf_apdu::gp::CPLC_TAG, Selected::Isd) => {
                ResponseApdu::new(self.cplc().to_tlv(), StatusWord::SUCCESS)
            }
            _ => status(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }

    /// The fob's CPLC (tag `9F7F`, see [`kf_apdu::gp::Cplc`]): NXP as IC
    /// fabricator, a JCOP 4 IC type, and batch identifier and serial number
    /// taken from the last six UID bytes, so every fob answers its own values
    /// and the same fob always the same ones. The fabrication date comes
    /// from the UID too (day 1..=366 of a year ending in 0..=9).
    pub fn cplc(&self) -> kf_apdu::gp::Cplc {
        let uid = self.data.uid.as_bytes();
        let mut tail = [0u8; 6];
        let n = uid.len().min(tail.len());
        tail[6 - n..].copy_from_slice(&uid[uid.len() - n..]);
        let seed = uid.iter().fold(0u16, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u16::from(*b))
        });
        let year = seed % 10;
        let day = seed % 366 + 1;
        // YDDD in BCD-like digits, as cards code it.
        let date = (year << 12) | ((day / 100) << 8) | (((day / 10) % 10) << 4) | (day % 10);
        let mut raw = [0u8; kf_apdu::gp::CPLC_LEN];
        raw[0..2].copy_from_slice(&[0x47, 0x90]); // IC fabricator: NXP
        raw[2..4].copy_from_slice(&[0xD3, 0x21]); // IC type
        raw[4..6].copy_from_slice(&[0x47, 0x00]); // operating system identifier
        raw[10..12].copy_from_slice(&date.to_be_bytes());
        raw[12..16].copy_from_slice(&tail[2..6]);
        raw[16..18].copy_from_slice(&tail[0..2]);
        kf_apdu::gp::Cplc::from_bytes(raw)
    }

    /// Key Information Template `E0` (GPC §11.3.3.1, Table 11-29): for each key
    /// set, the ENC/MAC/DEK keys (id 1, 2, 3) as AES keys (type 88).
    fn key_information(&self) -> Result<Vec<u8>, TlvError> {
        let mut keys = Vec::new();
        for (kvn, set) in &self.data.key_sets {
            for (id, len) in [(1u8, set.enc.len()), (2, set.mac.len()), (3, set.dek.len())] {
                // An AES key is 16, 24 or 32 bytes: its length fits the one-byte field.
                let len = u8::try_from(len).unwrap_or(u8::MAX);
                let data = [id, *kvn, gp::KEY_TYPE_AES, len];
                keys.push(Tlv::primitive(tag::KEY_INFORMATION_DATA, data)?);
            }
        }
        Ok(Tlv::constructed(tag::KEY_INFORMATION_TEMPLATE, keys)?.encode())
    }

    /// SET STATUS for the ISD (P1 80, §11.10) inside the secure channel:
    /// P2 is the target card life cycle (Table 11-6), checked against
    /// Figure 5-1. Other P1 (applications) → 6A88; bad P2 → 6A80; a
    /// transition not allowed (incl. to the current state) → 6985; without
    /// the secure channel → 6982.
    pub(crate) fn set_status(&mut self, cmd: &CommandApdu, secured: bool) -> ResponseApdu {
        if !secured {
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        match SetStatusScope::from_byte(cmd.p1()) {
            Some(SetStatusScope::IssuerSecurityDomain) => {}
            Some(SetStatusScope::Application | SetStatusScope::DomainAndApplications) => {
                return status(StatusWord::REFERENCED_DATA_NOT_FOUND)
            }
            None => return status(StatusWord::INCORRECT_P1P2),
        }
        let Some(target) = CardLifeCycle::from_byte(cmd.p2()) else {
            return status(StatusWord::INCORRECT_DATA);
        };
        let previous = self.data.isd_life_cycle;
        if !previous.may_transition_to(target) {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.data.isd_life_cycle = target;
        if self.persist().is_err() {
            self.data.isd_life_cycle = previous;
            return status(StatusWord::MEMORY_FAILURE);
        }
        status(StatusWord::SUCCESS)
    }

    /// GET STATUS (§11.4) inside the secure channel: P1 80 (ISD) or 40
    /// (applications); P2 00 (legacy format) or 02 (TLV `E3`); data `4F 00`
    /// (match all). Other P1 → 6A88, other P2 → 6A86, other data → 6A80.
    pub(crate) fn get_status(&self, cmd: &CommandApdu, secured: bool) -> ResponseApdu {
        if !secured {
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let tlv = match GetStatusFormat::from_byte(cmd.p2()) {
            Some(GetStatusFormat::Legacy) => false,
            Some(GetStatusFormat::Tagged) => true,
            None => return status(StatusWord::INCORRECT_P1P2),
        };
        // Empty search criterion: match all (§11.4.2.3).
        let match_all = Tlv::primitive(tag::AID, Vec::new()).map(|t| t.encode());
        if match_all.as_deref() != Ok(cmd.data()) {
            return status(StatusWord::INCORRECT_DATA);
        }
        let entries: Vec<(&[u8], u8, &[u8])> = match GetStatusScope::from_byte(cmd.p1()) {
            Some(GetStatusScope::IssuerSecurityDomain) => vec![(
                ISD_AID,
                self.data.isd_life_cycle.as_byte(),
                &ISD_PRIVILEGES[..],
            )],
            Some(GetStatusScope::Applications) => vec![(
                APPLET_AID,
                gp::APPLICATION_SELECTABLE,
                &[0x00, 0x00, 0x00][..],
            )],
            _ => return status(StatusWord::REFERENCED_DATA_NOT_FOUND),
        };
        let mut out = Vec::new();
        for (aid, life_cycle, privileges) in entries {
            if tlv {
                let entry = registry_entry(aid, life_cycle, privileges);
                match entry {
                    Ok(entry) => entry.encode_into(&mut out),
                    Err(_) => return status(StatusWord::NO_PRECISE_DIAGNOSIS),
                }
            } else {
                out.push(aid.len() as u8);
                out.extend_from_slice(aid);
                out.push(life_cycle);
                out.push(privileges.first().copied().unwrap_or(0));
            }
        }
        ResponseApdu::new(out, StatusWord::SUCCESS)
    }
}

/// Full match, or a partial match of at least 5 bytes (an RID), GPC §6.4.2.1.2.
fn matches_aid(requested: &[u8], aid: &[u8]) -> bool {
    requested == aid || (requested.len() >= 5 && aid.starts_with(requested))
}

/// One GET STATUS entry in the tagged format (GPC Table 11-36):
/// `E3 { 4F AID, 9F70 life cycle, C5 privileges }`.
fn registry_entry(aid: &[u8], life_cycle: u8, privileges: &[u8]) -> Result<Tlv, TlvError> {
    Tlv::constructed(
        tag::REGISTRY_ENTRY,
        vec![
            Tlv::primitive(tag::AID, aid)?,
            Tlv::primitive(tag::LIFE_CYCLE_STATE, [life_cycle])?,
            Tlv::primitive(tag::PRIVILEGES, privileges)?,
        ],
    )
}

/// FCI template (GPC Table 11-82): `6F { 84 AID, A5 { 9F65 01 FF } }`.
fn fci(aid: &[u8]) -> Result<Vec<u8>, TlvError> {
    let max_command_data = Tlv::primitive(tag::MAX_COMMAND_DATA_LEN, [0xFF])?;
    let fci = Tlv::constructed(
        tag::FCI_TEMPLATE,
        vec![
            Tlv::primitive(tag::DF_NAME, aid)?,
            Tlv::constructed(tag::FCI_PROPRIETARY_DATA, vec![max_command_data])?,
        ],
    )?;
    Ok(fci.encode())
}

#[cfg(test)]
mod tests {
    use crate::config::{FobConfig, Uid};
    use crate::VirtualFob;

    fn fob(uid: &str) -> VirtualFob {
        let config = FobConfig::dev_sample().with_uid(Uid::from_hex(uid).unwrap());
        VirtualFob::new(config).unwrap()
    }

    #[test]
    fn get_data_cplc_is_unique_per_fob_and_stable() {
        let mut a = fob("04A1A2A3A4A5A6A7A8A9");
        let mut b = fob("04A1A2A3A4A5A6A7A8AA");
        a.power_on();
        b.power_on();
        let get = kf_apdu::gp::get_cplc().to_bytes();
        let ra = a.process_apdu(&get);
        let rb = b.process_apdu(&get);
        assert_eq!(&ra[ra.len() - 2..], [0x90, 0x00]);
        let ca = kf_apdu::gp::Cplc::parse(&ra[..ra.len() - 2]).unwrap();
        let cb = kf_apdu::gp::Cplc::parse(&rb[..rb.len() - 2]).unwrap();
        assert_eq!(ca.ic_serial(), "4790-D321-A4A5-A6A7A8A9");
        assert_ne!(ca.ic_serial(), cb.ic_serial());
        assert_eq!(ca, a.cplc());
        assert_eq!(a.process_apdu(&get), ra);
    }

    #[test]
    fn cplc_only_from_the_isd() {
        let mut a = fob("04A1A2A3A4A5A6A7A8A9");
        a.power_on();
        let select = kf_apdu::gp::select_by_aid(kf_profile::APPLET_AID)
            .unwrap()
            .to_bytes();
        let r = a.process_apdu(&select);
        assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
        let r = a.process_apdu(&kf_apdu::gp::get_cplc().to_bytes());
        assert_eq!(r, [0x6A, 0x88]);
    }
}
