//! [`VirtualFob`]: power, CLA screening, secure-messaging unwrap/wrap, and
//! dispatch to the ISD and applet handlers.

use std::path::{Path, PathBuf};

use kf_apdu::gp::{self, ins, pcsc};
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_profile::AppletLifeCycle;
use p256::ecdsa::VerifyingKey;

use crate::atr::{contactless_atr, JCOP4_HISTORICAL_BYTES};
use crate::channel::{AuthenticateRefused, SecureMessaging};
use crate::config::{FobConfig, Uid};
use crate::error::FobError;
use crate::life_cycle::IsdLifeCycle;
use crate::selected::Selected;
use crate::state::{CardData, TransportFlags};

/// A virtual JCOP 4 key fob: ISD + key-fob applet (see the crate doc for the
/// command set). Plugs into `kf_transport`'s loopback and the vpcd bridge
/// through [`kf_transport::loopback::VirtualCard`].
pub struct VirtualFob {
    pub(crate) data: CardData,
    pub(crate) state_file: Option<PathBuf>,
    /// The secure channel and the STORE DATA sequence inside it.
    pub(crate) sm: SecureMessaging,
    pub(crate) selected: Selected,
    /// A failed authentication is counted in `data` but the state file could
    /// not be written: no new authentication starts until it is.
    auth_failures_unsaved: bool,
    powered: bool,
}

impl std::fmt::Debug for VirtualFob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualFob")
            .field("uid", &self.data.uid)
            .field("isd_life_cycle", &self.data.isd_life_cycle)
            .field("applet_life_cycle", &self.applet_life_cycle())
            .field("selected", &self.selected)
            .field("channel_open", &self.is_channel_open())
            .finish_non_exhaustive()
    }
}

impl VirtualFob {
    /// Builds a fob. With a state file that exists, the card data is loaded
    /// from it; otherwise a fresh card is made from `config` and, when a state
    /// file is configured, written to it at once.
    pub fn new(config: FobConfig) -> Result<VirtualFob, FobError> {
        let FobConfig {
            uid,
            key_sets,
            scp_i,
            mode,
            isd_life_cycle,
            state_file,
        } = config;
        let loaded = match &state_file {
            Some(path) => CardData::load(path)?,
            None => None,
        };
        let data = match loaded {
            Some(data) => data,
            None => {
                let uid = match uid {
                    Some(uid) => uid,
                    None => Uid::random(Uid::DEFAULT_LEN)?,
                };
                let data = CardData {
                    uid,
                    key_sets,
                    isd_life_cycle,
                    personalization: None,
                    transport: TransportFlags::default(),
                    auth_failures: 0,
                    sequence_counters: Default::default(),
                };
                if let Some(path) = &state_file {
                    data.save(path)?;
                }
                data
            }
        };
        let sm = SecureMessaging::new(&data, scp_i, mode)?;
        Ok(VirtualFob {
            data,
            state_file,
            sm,
            selected: Selected::Isd,
            auth_failures_unsaved: false,
            powered: false,
        })
    }

    /// The ATR (PC/SC part 3 contactless form, see [`crate::atr`]).
    pub fn atr(&self) -> Vec<u8> {
        contactless_atr(&JCOP4_HISTORICAL_BYTES)
    }

    /// Powers on (cold reset): transient state is cleared, the ISD is selected.
    pub fn power_on(&mut self) -> Vec<u8> {
        self.clear_transient();
        self.powered = true;
        self.atr()
    }

    /// Removes power, as a tear does: the secure channel and any STORE DATA
    /// sequence in progress are lost; committed data is untouched.
    pub fn power_off(&mut self) {
        self.clear_transient();
        self.powered = false;
    }

    /// Warm reset: like power-off then power-on.
    pub fn reset(&mut self) -> Vec<u8> {
        self.power_on()
    }

    /// Whether the fob is powered.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    fn clear_transient(&mut self) {
        self.sm.close();
        self.selected = Selected::Isd;
    }

    /// Processes one command APDU and returns `data ‖ SW1 SW2`. Never panics;
    /// malformed input gets a status word. An unpowered fob is powered
    /// implicitly (a reader always powers the card before the first APDU).
    pub fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !self.powered {
            self.power_on();
        }
        self.process(apdu).to_bytes()
    }

    fn process(&mut self, raw: &[u8]) -> ResponseApdu {
        let cmd = match CommandApdu::parse(raw) {
            Ok(cmd) => cmd,
            Err(_) => return status(StatusWord::WRONG_LENGTH),
        };
        let cla = cmd.cla();
        if cla == pcsc::CLA {
            return self.pcsc_pseudo_apdu(&cmd);
        }
        if let Err(sw) = screen_cla(cla) {
            return status(sw);
        }
        if self.data.isd_life_cycle == IsdLifeCycle::Terminated
            && !matches!(cmd.ins(), ins::GET_DATA | ins::GET_DATA_ODD)
        {
            // GPC §5.1.1.5: only GET DATA is processed once TERMINATED.
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        match cmd.ins() {
            ins::INITIALIZE_UPDATE => self.initialize_update(&cmd),
            ins::EXTERNAL_AUTHENTICATE => self.external_authenticate(raw),
            _ if gp::cla_indicates_secure_messaging(cla) => self.process_secured(raw),
            _ => self.dispatch(&cmd, false),
        }
    }

    /// Unwraps a command through the open channel, processes it, wraps the
    /// response. A bad MAC or layout closes the channel (fail closed, Amd D
    /// §5.6) and ends any STORE DATA sequence: 6982.
    fn process_secured(&mut self, raw: &[u8]) -> ResponseApdu {
        let plain = match self.sm.unwrap_command(raw) {
            Ok(plain) => plain,
            Err(sw) => return status(sw),
        };
        let response = self.dispatch(&plain, true);
        self.sm.wrap_response(response)
    }

    /// INITIALIZE UPDATE to the selected security domain (Amd D §7.1.1; see
    /// [`SecureMessaging::initialize_update`]). Ends any previous channel
    /// and STORE DATA sequence. A sequence counter that moved is saved
    /// before the answer (pseudo-random challenges must never repeat across
    /// restarts); if that fails, or a counted authentication failure is
    /// still unsaved → 6581 and no channel.
    fn initialize_update(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        self.sm.close();
        if self.auth_failures_unsaved {
            if self.persist().is_err() {
                return status(StatusWord::MEMORY_FAILURE);
            }
            self.auth_failures_unsaved = false;
        }
        let sd = self.selected;
        let updated = match self.sm.initialize_update(sd, cmd) {
            Ok(updated) => updated,
            Err(sw) => return status(sw),
        };
        if let Some(counter) = updated.sequence_counter {
            let name = sd.state_name();
            if counter != self.data.sequence_counter(name, updated.kvn) {
                self.data.set_sequence_counter(name, updated.kvn, counter);
                if self.persist().is_err() {
                    self.sm.close();
                    return status(StatusWord::MEMORY_FAILURE);
                }
            }
        }
        updated.response
    }

    /// EXTERNAL AUTHENTICATE (Amd D §7.1.2): opens the channel, or counts a
    /// failed authentication (wrong host cryptogram or MAC → 6982). Without a
    /// preceding INITIALIZE UPDATE → 6985; level not allowed by "i" or below
    /// C-MAC → 6A86. A failed authentication whose count cannot be saved →
    /// 6581: the count stays in RAM and the next INITIALIZE UPDATE saves it
    /// or is refused.
    fn external_authenticate(&mut self, raw: &[u8]) -> ResponseApdu {
        match self.sm.external_authenticate(raw) {
            Ok(response) => response,
            Err(AuthenticateRefused::Refused(sw)) => status(sw),
            Err(AuthenticateRefused::Failed(sw)) => {
                self.data.auth_failures = self.data.auth_failures.saturating_add(1);
                if self.persist().is_err() {
                    self.auth_failures_unsaved = true;
                    return status(StatusWord::MEMORY_FAILURE);
                }
                status(sw)
            }
        }
    }

    /// Dispatch by INS to the selected application. `secured`: the command
    /// came through the secure channel with at least C-MAC.
    fn dispatch(&mut self, cmd: &CommandApdu, secured: bool) -> ResponseApdu {
        match (cmd.ins(), self.selected) {
            (ins::SELECT, _) => self.select(cmd),
            (ins::GET_DATA | ins::GET_DATA_ODD, _) => self.get_data(cmd),
            (ins::SET_STATUS, Selected::Isd) => self.set_status(cmd, secured),
            (ins::GET_STATUS, Selected::Isd) => self.get_status(cmd, secured),
            (ins::STORE_DATA, Selected::Applet) => self.store_data(cmd, secured),
            (kf_profile::INS_PUT_CONFIG, Selected::Applet) => self.put_config(cmd),
            (kf_profile::verify::INS, Selected::Applet) => self.verify(cmd),
            _ => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    /// Saves the card data when a state file is configured.
    pub(crate) fn persist(&self) -> Result<(), FobError> {
        match &self.state_file {
            Some(path) => self.data.save(path),
            None => Ok(()),
        }
    }

    // ---- introspection (tests, the simulator CLI) ----

    /// The UID.
    pub fn uid(&self) -> &Uid {
        &self.data.uid
    }

    /// The applet life cycle.
    pub fn applet_life_cycle(&self) -> AppletLifeCycle {
        if self.data.personalization.is_some() {
            AppletLifeCycle::Personalized
        } else {
            AppletLifeCycle::Unpersonalized
        }
    }

    /// The card (ISD) life cycle.
    pub fn isd_life_cycle(&self) -> IsdLifeCycle {
        self.data.isd_life_cycle
    }

    /// A stored DGI value as received (A003 still DEK-encrypted); `None`
    /// before personalization.
    pub fn stored_dgi(&self, tag: u16) -> Option<&[u8]> {
        self.data
            .personalization
            .as_ref()
            .and_then(|p| p.dgis.get(&tag))
            .map(Vec::as_slice)
    }

    /// Tags of the stored DGIs, ascending (empty before personalization).
    pub fn stored_dgi_tags(&self) -> Vec<u16> {
        self.data
            .personalization
            .as_ref()
            .map(|p| p.dgis.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The public key of the provisioned P-256 key pair.
    pub fn public_key(&self) -> Option<VerifyingKey> {
        self.data
            .personalization
            .as_ref()
            .map(|p| *p.signing_key.verifying_key())
    }

    /// Transport configuration flags.
    pub fn transport_flags(&self) -> TransportFlags {
        self.data.transport
    }

    /// Failed EXTERNAL AUTHENTICATE attempts since the card was made (persisted).
    pub fn auth_failures(&self) -> u32 {
        self.data.auth_failures
    }

    /// Whether a secure channel is open (EXTERNAL AUTHENTICATE succeeded).
    pub fn is_channel_open(&self) -> bool {
        self.sm.is_open()
    }

    /// Whether a STORE DATA sequence is in progress (staged in RAM only).
    pub fn personalization_in_progress(&self) -> bool {
        self.sm.personalization_in_progress()
    }

    /// The selected application.
    pub fn selected(&self) -> Selected {
        self.selected
    }

    /// Key version numbers of the key sets.
    pub fn key_versions(&self) -> Vec<u8> {
        self.data.key_sets.keys().copied().collect()
    }

    /// The state file, when configured.
    pub fn state_file(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }
}

/// A response with only a status word.
pub(crate) fn status(sw: StatusWord) -> ResponseApdu {
    ResponseApdu::status(sw)
}

/// CLA screening (ISO/IEC 7816-4 §5.4.1, GPC 2.3.1 §11.1.4): the basic logical
/// channel only; no chaining; GP secure messaging (b3) only.
fn screen_cla(cla: u8) -> Result<(), StatusWord> {
    match cla {
        // First interindustry (00-0F) and GP proprietary (80-8F) classes.
        0x00..=0x0F | 0x80..=0x8F => {
            if cla & gp::CLA_CHANNEL_MASK != 0 {
                Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED)
            } else if cla & gp::CLA_ISO_SECURE_MESSAGING != 0 {
                // ISO secure messaging (b4): not GP SCP03.
                Err(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED)
            } else {
                Ok(())
            }
        }
        0x10..=0x1F | 0x90..=0x9F => Err(StatusWord::CHAINING_NOT_SUPPORTED),
        // Further interindustry / GP classes: logical channels 4-19.
        0x40..=0x7F | 0xC0..=0xCF | 0xE0..=0xEF => Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED),
        _ => Err(StatusWord::CLA_NOT_SUPPORTED),
    }
}
impl kf_transport::loopback::VirtualCard for VirtualFob {
    fn power_on(&mut self) -> Vec<u8> {
        VirtualFob::power_on(self)
    }
    fn power_off(&mut self) {
        VirtualFob::power_off(self)
    }
    fn reset(&mut self) -> Vec<u8> {
        VirtualFob::reset(self)
    }
    fn atr(&self) -> Vec<u8> {
        VirtualFob::atr(self)
    }
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        VirtualFob::process_apdu(self, apdu)
    }
}
