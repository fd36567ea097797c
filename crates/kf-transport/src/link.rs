//! A timing model of the contactless link between a reader and a JCOP 4
//! class fob, and a `PacedCard` that makes a virtual card answer at the
//! modeled speed.
//!
//! One command/response exchange costs three parts:
//!
//! * **air**: the ISO/IEC 14443-4 blocks on the RF field. The carrier is
//!   fc = 13.56 MHz; one bit lasts 128/fc at 106 kbit/s and halves at each
//!   higher rate, 212/424/848 kbit/s (ISO/IEC 14443-2 §8/§9). A Type A
//!   frame carries each byte as 8 bits plus odd parity, between a start and
//!   an end bit (ISO/IEC 14443-3 §6.2.3). A block is PCB (1 byte), the
//!   information field and CRC_A (2 bytes) (ISO/IEC 14443-4 §7.1). A block
//!   holds at most FSC bytes towards the card and FSD bytes towards the
//!   reader; longer APDUs are chained and every chained block is answered
//!   by a 3-byte R(ACK) block (ISO/IEC 14443-4 §7.5.2). Between two frames
//!   the line is quiet for at least the frame delay time, (9·128 + 84)/fc
//!   from reader to card and 1172/fc back (ISO/IEC 14443-3 §6.2.1.1).
//! * **chip**: what the card spends on the command: dispatch, secure
//!   messaging and NVM writes ([`ChipCosts`]). No public data sheet gives
//!   these for JCOP 4; [`ChipCosts::JCOP4_ESTIMATE`] is an estimate, named
//!   as such wherever the model prints figures.
//! * **host**: the PC/SC call and the CCID round trip over USB, one bulk-out
//!   and one bulk-in transfer in 1 ms full-speed frames (USB 2.0 §5.8). It
//!   exists on a real line and on the vpcd path alike, so `PacedCard`
//!   does not add it.
//!
//! The model is sans-IO: [`LinkModel::exchange`] returns durations; only
//! `PacedCard` sleeps.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kf_apdu::gp::{self, ins};
use kf_apdu::CommandApdu;
use serde::Serialize;

#[cfg(any(test, feature = "sim"))]
use crate::loopback::VirtualCard;

/// The RF carrier frequency, fc (ISO/IEC 14443-2 §6.1).
pub const CARRIER_HZ: f64 = 13_560_000.0;

/// Bytes of a block around its information field: PCB and CRC_A.
const BLOCK_OVERHEAD: usize = 3;
/// An R(ACK) block: PCB and CRC_A.
const ACK_BLOCK: usize = 3;

/// A contactless bit rate (ISO/IEC 14443-2: fc/128, fc/64, fc/32, fc/16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum BitRate {
    /// 106 kbit/s, the rate every card and reader supports.
    #[serde(rename = "106k")]
    K106,
    /// 212 kbit/s.
    #[serde(rename = "212k")]
    K212,
    /// 424 kbit/s.
    #[serde(rename = "424k")]
    K424,
    /// 848 kbit/s.
    #[serde(rename = "848k")]
    K848,
}

impl BitRate {
    /// Every rate, slowest first.
    pub const ALL: [BitRate; 4] = [BitRate::K106, BitRate::K212, BitRate::K424, BitRate::K848];

    /// The divisor D of the rate: 1, 2, 4 or 8 (bit duration 128/(D·fc)).
    pub fn divisor(self) -> u32 {
        match self {
            BitRate::K106 => 1,
            BitRate::K212 => 2,
            BitRate::K424 => 4,
            BitRate::K848 => 8,
        }
    }

    /// The duration of one bit, in seconds.
    pub fn bit_seconds(self) -> f64 {
        128.0 / (f64::from(self.divisor()) * CARRIER_HZ)
    }

    /// The name used on the command line and in reports: `106k` … `848k`.
    pub fn name(self) -> &'static str {
        match self {
            BitRate::K106 => "106k",
            BitRate::K212 => "212k",
            BitRate::K424 => "424k",
            BitRate::K848 => "848k",
        }
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bit rate that is not one of 106k, 212k, 424k, 848k.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bit rate {0:?}: use 106k, 212k, 424k or 848k")]
pub struct UnknownBitRate(String);

impl FromStr for BitRate {
    type Err = UnknownBitRate;

    /// `106k`, `106` or `106kbit` (any case), and the same for the others.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let digits = lower
            .strip_suffix("kbit/s")
            .or_else(|| lower.strip_suffix("kbit"))
            .or_else(|| lower.strip_suffix('k'))
            .unwrap_or(&lower);
        match digits {
            "106" => Ok(BitRate::K106),
            "212" => Ok(BitRate::K212),
            "424" => Ok(BitRate::K424),
            "848" => Ok(BitRate::K848),
            _ => Err(UnknownBitRate(text.chars().take(32).collect())),
        }
    }
}

/// What the chip spends on a command, by kind of command.
///
/// Every command pays `dispatch`; a command inside the secure channel
/// (class byte with bit 3 set, GPC 2.3.1 §11.1.4) also pays `secure_messaging`
/// for its C-MAC check and response protection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChipCosts {
    /// APDU dispatch by the OS and the applet, any command.
    pub dispatch: Duration,
    /// C-MAC verification, decryption and R-MAC of one protected command.
    pub secure_messaging: Duration,
    /// INITIALIZE UPDATE: three session keys and the card cryptogram (four
    /// AES-CMAC derivations) and the sequence counter write.
    pub initialize_update: Duration,
    /// EXTERNAL AUTHENTICATE: host cryptogram and MAC checks.
    pub external_authenticate: Duration,
    /// One NVM page programmed (STORE DATA, SET STATUS, PUT KEY).
    pub nvm_page_write: Duration,
    /// Bytes per NVM page.
    pub nvm_page_bytes: usize,
}

impl ChipCosts {
    /// An estimate for a JCOP 4 class chip (P71 family). Not from a data
    /// sheet: replace it with figures measured on the line's own fobs.
    pub const JCOP4_ESTIMATE: ChipCosts = ChipCosts {
        dispatch: Duration::from_micros(800),
        secure_messaging: Duration::from_micros(600),
        initialize_update: Duration::from_millis(4),
        external_authenticate: Duration::from_micros(1500),
        nvm_page_write: Duration::from_millis(2),
        nvm_page_bytes: 128,
    };

    /// The chip's time for one command APDU.
    pub fn command(&self, command: &ApduShape) -> Duration {
        let mut total = self.dispatch;
        if command.secure_messaging() {
            total += self.secure_messaging;
        }
        total += match command.ins {
            ins::INITIALIZE_UPDATE => self.initialize_update,
            ins::EXTERNAL_AUTHENTICATE => self.external_authenticate,
            // The data is written to NVM.
            ins::STORE_DATA | ins::PUT_KEY => self.nvm_pages(command.data_len.max(1)),
            // One life-cycle byte.
            ins::SET_STATUS => self.nvm_pages(1),
            _ => Duration::ZERO,
        };
        total
    }

    fn nvm_pages(&self, bytes: usize) -> Duration {
        let pages = bytes.div_ceil(self.nvm_page_bytes.max(1));
        self.nvm_page_write * u32::try_from(pages).unwrap_or(u32::MAX)
    }
}

/// What the model needs of a command APDU: its class, instruction and
/// lengths, never its data (which may carry keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApduShape {
    /// The class byte.
    pub cla: u8,
    /// The instruction byte.
    pub ins: u8,
    /// The data field's length, Lc.
    pub data_len: usize,
    /// The whole command's length.
    pub len: usize,
}

impl ApduShape {
    /// The shape of `command`, short or extended (ISO/IEC 7816-4 §5.1), as
    /// kf-apdu's command parser reads it. A malformed command gets its
    /// length and no data field.
    pub fn of(command: &[u8]) -> Self {
        // The parser copies the data field, which may hold keys: the copy is
        // marked sensitive so that it is wiped when dropped.
        let data_len = CommandApdu::parse(command).map_or(0, |apdu| apdu.sensitive().data().len());
        Self {
            cla: command.first().copied().unwrap_or(0),
            ins: command.get(1).copied().unwrap_or(0),
            data_len,
            len: command.len(),
        }
    }

    /// Whether the class byte announces secure messaging (GPC 2.3.1 §11.1.4).
    pub fn secure_messaging(&self) -> bool {
        gp::cla_indicates_secure_messaging(self.cla)
    }
}

/// The modeled cost of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExchangeTime {
    /// Frames and frame delays on the RF field.
    pub air: Duration,
    /// The chip's processing.
    pub chip: Duration,
    /// The PC/SC and USB round trip on the host side.
    pub host: Duration,
    /// ISO/IEC 14443-4 blocks exchanged (I-blocks and R(ACK)s, both ways).
    pub blocks: u32,
}

impl ExchangeTime {
    /// Air and chip time: what a card on the field adds to a round trip.
    pub fn card(&self) -> Duration {
        self.air + self.chip
    }

    /// The whole exchange.
    pub fn total(&self) -> Duration {
        self.air + self.chip + self.host
    }
}

impl std::ops::AddAssign for ExchangeTime {
    fn add_assign(&mut self, other: Self) {
        self.air += other.air;
        self.chip += other.chip;
        self.host += other.host;
        self.blocks += other.blocks;
    }
}

/// The link between one reader and one fob.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkModel {
    /// The bit rate, the same both ways.
    pub rate: BitRate,
    /// The card's frame size (from the ATS, FSCI); 256 bytes for FSCI 8.
    pub fsc: usize,
    /// The reader's frame size (FSDI in RATS); 256 bytes for FSDI 8.
    pub fsd: usize,
    /// The host's round trip per exchange (PC/SC call, CCID over USB).
    pub host_round_trip: Duration,
    /// The chip's costs.
    pub chip: ChipCosts,
}

impl LinkModel {
    /// A fob at `rate` with 256-byte frames both ways, a 2 ms host round
    /// trip and the [`ChipCosts::JCOP4_ESTIMATE`].
    pub fn new(rate: BitRate) -> Self {
        Self {
            rate,
            fsc: 256,
            fsd: 256,
            host_round_trip: Duration::from_millis(2),
            chip: ChipCosts::JCOP4_ESTIMATE,
        }
    }

    /// The time of one Type A frame of `bytes` bytes.
    pub fn frame(&self, bytes: usize) -> Duration {
        let bits = bytes as f64 * 9.0 + 2.0;
        Duration::from_secs_f64(bits * self.rate.bit_seconds())
    }

    /// The frame delay from the end of the reader's frame to the card's
    /// answer, (9·128 + 84)/fc.
    pub fn delay_to_card(&self) -> Duration {
        Duration::from_secs_f64((9.0 * 128.0 + 84.0) / CARRIER_HZ)
    }

    /// The frame delay from the end of the card's frame to the reader's
    /// next frame, 1172/fc.
    pub fn delay_to_reader(&self) -> Duration {
        Duration::from_secs_f64(1172.0 / CARRIER_HZ)
    }

    /// The cost of sending `command` and receiving `response_len` bytes.
    pub fn exchange(&self, command: &ApduShape, response_len: usize) -> ExchangeTime {
        let (to_card, blocks_out) = self.chained(command.len, self.fsc);
        let (to_reader, blocks_in) = self.chained(response_len, self.fsd);
        // Chip time replaces the minimal frame delay before the first answer.
        let chip = self.chip.command(command).max(self.delay_to_card());
        ExchangeTime {
            air: to_card + to_reader,
            chip,
            host: self.host_round_trip,
            blocks: blocks_out + blocks_in,
        }
    }

    /// The air time of `len` bytes sent in blocks of at most `frame_size`,
    /// with the R(ACK) answering each chained block and the frame delays
    /// between them (the delay before the final answer is the chip's).
    fn chained(&self, len: usize, frame_size: usize) -> (Duration, u32) {
        let per_block = frame_size.saturating_sub(BLOCK_OVERHEAD).max(1);
        let blocks = len.div_ceil(per_block).max(1);
        let last = len - per_block * (blocks - 1);
        let chained = blocks - 1;
        let time = self.frame(per_block + BLOCK_OVERHEAD) * count(chained)
            + (self.frame(ACK_BLOCK) + self.delay_to_card() + self.delay_to_reader())
                * count(chained)
            + self.frame(last + BLOCK_OVERHEAD);
        (time, count(blocks + chained))
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A `VirtualCard` that answers no sooner than a real fob on `model`'s
/// link would: each response is held back until the modeled air and chip
/// time of the exchange has passed since the command arrived. Without a
/// model it answers at once.
#[cfg(any(test, feature = "sim"))]
#[derive(Debug)]
pub struct PacedCard<C> {
    card: C,
    model: Option<LinkModel>,
}

#[cfg(any(test, feature = "sim"))]
impl<C: VirtualCard> PacedCard<C> {
    /// Paces `card` by `model`, or not at all.
    pub fn new(card: C, model: Option<LinkModel>) -> Self {
        Self { card, model }
    }

    /// The card.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The card, mutably.
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// The model, if the card is paced.
    pub fn model(&self) -> Option<&LinkModel> {
        self.model.as_ref()
    }
}

#[cfg(any(test, feature = "sim"))]
impl<C: VirtualCard> VirtualCard for PacedCard<C> {
    crate::loopback::card_power_and_atr!();
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let arrived = std::time::Instant::now();
        let response = self.card.process_apdu(apdu);
        if let Some(model) = &self.model {
            let due = model.exchange(&ApduShape::of(apdu), response.len()).card();
            if let Some(wait) = due.checked_sub(arrived.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(rate: BitRate) -> LinkModel {
        LinkModel::new(rate)
    }

    #[test]
    fn bit_time_follows_iso_14443_2() {
        // 128/fc = 9.4395 µs at 106 kbit/s, halving at each step.
        assert!((BitRate::K106.bit_seconds() - 9.4395e-6).abs() < 1e-9);
        assert!((BitRate::K848.bit_seconds() * 8.0 - BitRate::K106.bit_seconds()).abs() < 1e-12);
    }

    #[test]
    fn a_frame_is_nine_bits_a_byte_plus_start_and_end() {
        // 10 bytes: 92 bits at 9.4395 µs = 868.4 µs.
        let frame = model(BitRate::K106).frame(10);
        assert_eq!(frame.as_micros(), 868);
    }

    #[test]
    fn an_apdu_within_the_frame_size_is_one_block_each_way() {
        let m = model(BitRate::K424);
        let command = [0x80, 0xCA, 0x9F, 0x7F, 0x00];
        let t = m.exchange(&ApduShape::of(&command), 47);
        assert_eq!(t.blocks, 2);
        let expected = m.frame(5 + 3) + m.frame(47 + 3);
        assert_eq!(t.air, expected);
        assert_eq!(t.chip, ChipCosts::JCOP4_ESTIMATE.dispatch);
    }

    #[test]
    fn a_long_apdu_is_chained_with_an_ack_per_chained_block() {
        let m = model(BitRate::K106);
        // 600 bytes over 253-byte information fields: 3 I-blocks, 2 R(ACK)s.
        let mut command = vec![0x84, 0xE2, 0x00, 0x00, 0x00, 0x02, 0x4F];
        command.resize(600, 0);
        let t = m.exchange(&ApduShape::of(&command), 2);
        assert_eq!(t.blocks, 5 + 1);
        let gaps = m.delay_to_card() + m.delay_to_reader();
        let out = m.frame(256) * 2 + (m.frame(3) + gaps) * 2 + m.frame(600 - 2 * 253 + 3);
        assert_eq!(t.air, out + m.frame(2 + 3));
    }

    #[test]
    fn store_data_pays_secure_messaging_and_one_nvm_write_per_page() {
        let costs = ChipCosts::JCOP4_ESTIMATE;
        let mut command = vec![0x84, 0xE2, 0x00, 0x00, 200];
        command.resize(205, 0);
        assert_eq!(
            costs.command(&ApduShape::of(&command)),
            costs.dispatch + costs.secure_messaging + costs.nvm_page_write * 2
        );
        // Plain (no secure messaging) GET DATA: dispatch only.
        assert_eq!(
            costs.command(&ApduShape::of(&[0x80, 0xCA, 0x9F, 0x7F, 0x00])),
            costs.dispatch
        );
    }

    #[test]
    fn faster_rates_shorten_the_air_time_and_not_the_chip_time() {
        let command = [0x80u8, 0x50, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00];
        let shape = ApduShape::of(&command);
        let slow = model(BitRate::K106).exchange(&shape, 31);
        let fast = model(BitRate::K848).exchange(&shape, 31);
        assert!(fast.air * 7 < slow.air);
        assert_eq!(fast.chip, slow.chip);
    }

    #[test]
    fn bit_rates_parse_in_the_documented_spellings() {
        assert_eq!("424k".parse(), Ok(BitRate::K424));
        assert_eq!("106".parse(), Ok(BitRate::K106));
        assert_eq!("848KBIT".parse(), Ok(BitRate::K848));
        let err = "100k".parse::<BitRate>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown bit rate \"100k\": use 106k, 212k, 424k or 848k"
        );
    }

    #[test]
    fn a_paced_card_answers_no_sooner_than_the_model_says() {
        let command = [0x80u8, 0xCA, 0x9F, 0x7F, 0x00];
        let model = model(BitRate::K106);
        let mut paced = PacedCard::new(crate::EchoCard::default(), Some(model));
        paced.power_on();
        let start = std::time::Instant::now();
        let response = paced.process_apdu(&command);
        let due = model
            .exchange(&ApduShape::of(&command), response.len())
            .card();
        assert!(start.elapsed() >= due, "{:?} < {due:?}", start.elapsed());
        let mut plain = PacedCard::new(crate::EchoCard::default(), None);
        plain.power_on();
        assert_eq!(plain.process_apdu(&command), response);
    }

    #[test]
    fn the_shape_reads_short_and_extended_lc() {
        let short = ApduShape::of(&[0x84, 0xE2, 0x00, 0x00, 0x03, 1, 2, 3]);
        assert_eq!(
            (short.cla, short.ins, short.data_len, short.len),
            (0x84, 0xE2, 3, 8)
        );
        let mut extended = vec![0x80, 0xE2, 0x00, 0x00, 0x00, 0x01, 0x2C];
        extended.resize(7 + 300, 0);
        assert_eq!(ApduShape::of(&extended).data_len, 300);
    }

    #[test]
    fn malformed_apdus_cost_a_dispatch_and_do_not_panic() {
        let costs = ChipCosts::JCOP4_ESTIMATE;
        for apdu in [
            &[][..],
            &[0x84],
            &[0x84, 0xE2, 0, 0, 0, 0xFF],
            &[0x84, 0xE2, 0, 0, 9],
            // Lc disagrees with the body: no data field.
            &[0x84, 0xE2, 0, 0, 5, 1, 2],
        ] {
            let shape = ApduShape::of(apdu);
            assert_eq!(shape.data_len, 0, "{apdu:02X?}");
            assert!(costs.command(&shape) >= costs.dispatch);
            assert!(model(BitRate::K106).exchange(&shape, 0).blocks >= 2);
        }
    }
}
