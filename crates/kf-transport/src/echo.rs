//! [`EchoCard`]: a tiny virtual card used as a test double for transports.
//!
//! It is not a model of any real card; it exists so that transports, the vpcd
//! bridge and benches can be exercised without the real virtual fob.
//!
//! | command | answer |
//! |---|---|
//! | `FF CA 00 00 xx` (PC/SC GET UID) | UID, `9000` |
//! | any command with P1 bit 0 clear | the command data field, `9000` |
//! | any command with P1 bit 0 set | `61 nn`; the data follows on GET RESPONSE |
//! | `00 C0 00 00 Le` (GET RESPONSE) | up to Le pending bytes, `9000` / `61 nn` |
//! | when powered off | `6F00` |
//!
//! The driver, the redacting trace and a loopback link to an echo card:
//! ```
//! use kf_transport::{EchoCard, Iso7816Driver, LoopbackTransport, RawApdu, TracingTransport, Transport};
//!
//! let tracer = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
//! let trace = tracer.trace();
//! let mut card = Iso7816Driver::new(tracer);
//! let public = [0x80, 0x10, 0x00, 0x00, 0x01, 0x42];
//! assert_eq!(card.transmit(RawApdu::public(&public))?, [0x42, 0x90, 0x00]);
//! card.transmit(RawApdu::sensitive(&[0x80, 0x10, 0x00, 0x00, 0x02, 0x0B, 0xAD]))?;
//! let entries = trace.entries();
//! assert_eq!(entries[2].apdu_hex, "80100000"); // header only
//! # Ok::<(), kf_transport::TransportError>(())
//! ```

use crate::loopback::VirtualCard;
use kf_apdu::gp::{ins, pcsc};
use kf_apdu::CommandApdu;

/// ATR of the echo card, in the contactless layout of PC/SC Part 3
/// §3.1.3.2.3 (`3B 8n 80 01` + historical bytes "KFECHO" + TCK, the XOR of
/// T0..last historical byte).
pub const ECHO_CARD_ATR: [u8; 11] = [
    0x3B, 0x86, 0x80, 0x01, 0x4B, 0x46, 0x45, 0x43, 0x48, 0x4F, 0x0B,
];

/// Echoes command data back; see the module table.
#[derive(Debug, Clone)]
pub struct EchoCard {
    uid: Vec<u8>,
    powered: bool,
    pending: Vec<u8>,
    apdus_processed: u64,
}

impl EchoCard {
    /// An echo card with the given UID.
    pub fn new(uid: &[u8]) -> Self {
        Self {
            uid: uid.to_vec(),
            powered: false,
            pending: Vec::new(),
            apdus_processed: 0,
        }
    }

    /// Number of command APDUs processed since creation.
    pub fn apdus_processed(&self) -> u64 {
        self.apdus_processed
    }

    /// True while powered on.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    fn chunk_from_pending(&mut self, ne: usize) -> Vec<u8> {
        let take = ne.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..take).collect();
        match self.pending.len() {
            0 => out.extend([0x90, 0x00]),
            n => out.extend([0x61, n.min(256) as u8]),
        }
        out
    }
}

impl Default for EchoCard {
    fn default() -> Self {
        Self::new(&[0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66])
    }
}

impl VirtualCard for EchoCard {
    fn power_on(&mut self) -> Vec<u8> {
        self.powered = true;
        self.pending.clear();
        ECHO_CARD_ATR.to_vec()
    }

    fn power_off(&mut self) {
        self.powered = false;
        self.pending.clear();
    }

    fn reset(&mut self) -> Vec<u8> {
        self.power_on()
    }

    fn atr(&self) -> Vec<u8> {
        ECHO_CARD_ATR.to_vec()
    }

    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !self.powered {
            return vec![0x6F, 0x00];
        }
        self.apdus_processed += 1;
        let Ok(command) = CommandApdu::parse(apdu) else {
            return vec![0x67, 0x00];
        };
        if command.cla() == pcsc::CLA && command.ins() == ins::GET_DATA {
            return [self.uid.as_slice(), &[0x90, 0x00]].concat();
        }
        if command.ins() == ins::GET_RESPONSE {
            if self.pending.is_empty() {
                return vec![0x6F, 0x00];
            }
            return self.chunk_from_pending(command.le().unwrap_or(256));
        }
        let data = command.data();
        if command.p1() & 0x01 != 0 {
            self.pending = data.to_vec();
            return vec![0x61, data.len().min(256) as u8];
        }
        [data, &[0x90, 0x00]].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso7816::{read_uid, Iso7816Driver};
    use crate::loopback::LoopbackTransport;
    use crate::transport::{Layer, RawApdu, Transport};

    #[test]
    fn atr_check_byte_is_consistent() {
        let tck = ECHO_CARD_ATR[1..].iter().fold(0u8, |acc, b| acc ^ b);
        assert_eq!(
            tck, 0,
            "TCK must make T0..TCK XOR to zero (ISO/IEC 7816-3 §8.2.5)"
        );
    }

    #[test]
    fn echoes_and_serves_uid_over_loopback() {
        let mut t = LoopbackTransport::new(EchoCard::new(&[1, 2, 3, 4]));
        assert_eq!(t.atr().unwrap(), ECHO_CARD_ATR.to_vec());
        assert_eq!(
            t.transmit(RawApdu::public(&[0x80, 0x10, 0, 0, 2, 0xAB, 0xCD]))
                .unwrap(),
            vec![0xAB, 0xCD, 0x90, 0]
        );
        assert_eq!(read_uid(&mut t).unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn get_response_path_through_driver() {
        let mut driver = Iso7816Driver::new(LoopbackTransport::new(EchoCard::default()));
        let data: Vec<u8> = (0..200u8).collect();
        let apdu = [&[0x80, 0x10, 0x01, 0x00, 200][..], &data].concat();
        let raw = driver.inner_mut().transmit(RawApdu::public(&apdu)).unwrap();
        assert_eq!(raw, vec![0x61, 200]);
        driver.inner_mut().reset().unwrap();
        assert!(driver.was_reset());
        assert!(!driver.was_reset());
        let resp = driver.transmit(RawApdu::public(&apdu)).unwrap();
        assert_eq!(resp, [data.as_slice(), &[0x90, 0x00]].concat());
    }

    #[test]
    fn trait_objects_work_for_transports_and_cards() {
        let card: Box<dyn VirtualCard + Send> = Box::new(EchoCard::default());
        let mut boxed: Box<dyn Transport> = Box::new(LoopbackTransport::new(card));
        assert_eq!(
            boxed
                .transmit(RawApdu::public(&[0, 0x10, 0, 0, 1, 7]))
                .unwrap(),
            vec![7, 0x90, 0]
        );
        assert!(boxed.supports_extended());
        let mut short = LoopbackTransport::new(EchoCard::default()).with_max_apdu_len(261);
        assert!(!short.supports_extended());
        let err = short.transmit(RawApdu::public(&[0u8; 262])).unwrap_err();
        assert_eq!(
            err,
            crate::TransportError::ApduTooLong { len: 262, max: 261 }
        );
    }

    #[test]
    fn removed_card_errors_until_reset() {
        let mut t = LoopbackTransport::new(EchoCard::default());
        t.remove_card();
        assert!(!t.card().is_powered());
        assert_eq!(
            t.transmit(RawApdu::public(&[0, 0x10, 0, 0])).unwrap_err(),
            crate::TransportError::CardRemoved
        );
        t.reset().unwrap();
        assert_eq!(
            t.transmit(RawApdu::public(&[0, 0x10, 0, 0])).unwrap(),
            vec![0x90, 0]
        );
    }
}
