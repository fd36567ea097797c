//! Host-side helpers for the kf-card integration tests: the station's view of
//! the fob (SELECT, SCP03 host of kf-scp03, DGI set, STORE DATA blocks).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_apdu::{CommandApdu, Dgi, ResponseApdu};
use kf_card::VirtualFob;
use kf_crypto::{AesKey, StaticKeys};
use kf_profile::{FobDgi, P1Style, APPLET_AID};
use kf_scp03::{HostSession, Mode, SecureChannel, SecurityLevel};
use kf_transport::loopback::LoopbackTransport;
use kf_transport::transport::{RawApdu, Transport};
use p256::ecdsa::SigningKey;
use rand_core::{OsRng, RngCore};

/// Anything that carries APDU bytes to the fob.
pub trait Link {
    fn send(&mut self, apdu: &[u8]) -> Vec<u8>;
}

impl Link for VirtualFob {
    fn send(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.process_apdu(apdu)
    }
}

impl Link for LoopbackTransport<VirtualFob> {
    fn send(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.transmit(RawApdu::public(apdu)).unwrap()
    }
}

/// Sends a plain command, returns (data, SW).
pub fn send_plain(link: &mut impl Link, apdu: &[u8]) -> (Vec<u8>, u16) {
    let r = ResponseApdu::parse(&link.send(apdu)).unwrap();
    (r.data().to_vec(), r.sw().as_u16())
}

pub fn send_hex(link: &mut impl Link, apdu_hex: &str) -> (Vec<u8>, u16) {
    send_plain(link, &hex::decode(apdu_hex.replace(' ', "")).unwrap())
}

pub fn select(link: &mut impl Link, aid: &[u8]) -> u16 {
    let cmd = CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.to_vec())
        .with_le(256);
    send_plain(link, &cmd.to_bytes()).1
}

pub fn random_keys(len: usize) -> StaticKeys {
    let k = || {
        let mut b = vec![0u8; len];
        OsRng.fill_bytes(&mut b);
        AesKey::from_slice(&b).unwrap()
    };
    StaticKeys::new(k(), k(), k()).unwrap()
}

/// SELECT `aid`, then INITIALIZE UPDATE / EXTERNAL AUTHENTICATE as the station does.
pub fn open_channel(
    link: &mut impl Link,
    aid: &[u8],
    kvn: u8,
    keys: &StaticKeys,
    level: SecurityLevel,
    mode: Mode,
) -> SecureChannel {
    let sw = select(link, aid);
    // 6283: the ISD of a CARD_LOCKED card (GPC Table 11-83), still selected.
    assert!(sw == 0x9000 || sw == 0x6283, "SELECT: {sw:04X}");
    let mut host_challenge = vec![0u8; mode.byte_len()];
    OsRng.fill_bytes(&mut host_challenge);
    let (iu, awaiting) = HostSession::new(keys.duplicate())
        .security_level(level)
        .sd_aid(aid.to_vec())
        .initialize_update(kvn, &host_challenge)
        .unwrap();
    let resp = ResponseApdu::parse(&link.send(&iu.to_bytes())).unwrap();
    let (ea, awaiting) = awaiting.process_response(&resp).unwrap();
    let resp = ResponseApdu::parse(&link.send(&ea.to_bytes())).unwrap();
    awaiting.complete(&resp).unwrap()
}

/// Wraps, sends and unwraps one command; returns (data, SW).
pub fn send_secured(
    link: &mut impl Link,
    channel: &mut SecureChannel,
    cmd: CommandApdu,
) -> (Vec<u8>, u16) {
    let wrapped = channel.wrap(cmd).unwrap();
    let raw = link.send(&wrapped.to_bytes());
    let resp = channel.unwrap_bytes(&raw).unwrap();
    (resp.data().to_vec(), resp.sw().as_u16())
}

/// A fake DER certificate: SEQUENCE with a 2-byte length, `len` bytes in all.
pub fn fake_cert(len: usize, fill: u8) -> Vec<u8> {
    let mut c = vec![0x30, 0x82, ((len - 4) >> 8) as u8, (len - 4) as u8];
    c.resize(len, fill);
    c
}

/// The provisioning data of one fob, as the station would hold it.
pub struct PersoData {
    pub signing_key: SigningKey,
    pub dgis: Vec<Dgi>,
}

impl PersoData {
    /// A valid set: fresh P-256 key (A003 DEK-encrypted), the specification's sizes.
    pub fn new(dek: &AesKey) -> PersoData {
        let signing_key = SigningKey::random(&mut OsRng);
        let encrypted = kf_crypto::cbc::encrypt_m2(dek, &[0u8; 16], &signing_key.to_bytes());
        let dgis = vec![
            Dgi::new_sensitive(FobDgi::PrivateKey.tag(), encrypted),
            Dgi::new(
                FobDgi::Spid.tag(),
                b"59918C0096F859EC8BF6DA454E2E554A14DD4BD1".to_vec(),
            ),
            Dgi::new(FobDgi::DeviceCertificate.tag(), fake_cert(424, 0x11)),
            Dgi::new(FobDgi::IcaCertificate.tag(), fake_cert(435, 0x22)),
            Dgi::new(FobDgi::RootCertificate.tag(), fake_cert(722, 0x33)),
            Dgi::new(FobDgi::BleIrk.tag(), vec![0x5A; 16]),
        ];
        PersoData { signing_key, dgis }
    }

    /// Replaces (or adds) a DGI.
    pub fn set(&mut self, tag: u16, value: Vec<u8>) {
        self.dgis.retain(|d| d.tag != tag);
        self.dgis.push(Dgi::new(tag, value));
    }

    pub fn remove(&mut self, tag: u16) {
        self.dgis.retain(|d| d.tag != tag);
    }

    pub fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for d in &self.dgis {
            d.encode_into(&mut out).unwrap();
        }
        out
    }
}

/// Splits a DGI stream into STORE DATA (P1, P2, data) blocks of at most
/// `block_len` bytes. `empty_last`: the specification's empty final block; otherwise
/// the last data block carries b8.
pub fn blocks(
    stream: &[u8],
    block_len: usize,
    style: P1Style,
    empty_last: bool,
) -> Vec<(u8, u8, Vec<u8>)> {
    let chunks: Vec<&[u8]> = kf_apdu::gp::block_ranges(stream.len(), block_len)
        .unwrap()
        .into_iter()
        .map(|r| &stream[r])
        .collect();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = !empty_last && i + 1 == chunks.len();
        let carries_a003 = chunk.windows(2).any(|w| w == [0xA0, 0x03]);
        out.push((style.p1(last, carries_a003), i as u8, chunk.to_vec()));
    }
    if empty_last {
        out.push((style.p1(true, false), chunks.len() as u8, Vec::new()));
    }
    out
}

/// Block 2 of `all` sent now, out of sequence, is refused with 6A86 (`what`
/// names the case); the whole set then goes through on the same channel.
#[track_caller]
pub fn assert_block_2_refused_then_personalized(
    link: &mut impl Link,
    channel: &mut SecureChannel,
    all: &[(u8, u8, Vec<u8>)],
    data: &PersoData,
    what: &str,
) {
    let (p1, p2, block) = &all[2];
    let (_, sw) = send_secured(link, channel, store_data_cmd(*p1, *p2, block));
    assert_eq!(sw, 0x6A86, "{what}");
    let sws = personalize(link, channel, data);
    assert!(
        sws.iter().all(|sw| *sw == 0x9000),
        "{what}, then the whole set: {sws:04X?}"
    );
}

pub fn store_data_cmd(p1: u8, p2: u8, data: &[u8]) -> CommandApdu {
    CommandApdu::new(kf_apdu::gp::CLA_GP, kf_apdu::gp::ins::STORE_DATA, p1, p2)
        .with_data(data.to_vec())
}

/// Sends blocks until one fails; returns the SWs received.
pub fn send_blocks(
    link: &mut impl Link,
    channel: &mut SecureChannel,
    blocks: &[(u8, u8, Vec<u8>)],
) -> Vec<u16> {
    let mut sws = Vec::new();
    for (p1, p2, data) in blocks {
        let (_, sw) = send_secured(link, channel, store_data_cmd(*p1, *p2, data));
        sws.push(sw);
        if sw != 0x9000 {
            break;
        }
    }
    sws
}

/// The whole station flow on an open applet channel: the DGI set in 200-byte
/// blocks (fits one short APDU at every level and mode) and an empty last block.
pub fn personalize(
    link: &mut impl Link,
    channel: &mut SecureChannel,
    data: &PersoData,
) -> Vec<u16> {
    send_blocks(
        link,
        channel,
        &blocks(&data.encoded(), 200, P1Style::JcShell, true),
    )
}

pub fn applet_channel(link: &mut impl Link, kvn: u8, keys: &StaticKeys) -> SecureChannel {
    open_channel(link, APPLET_AID, kvn, keys, SecurityLevel::C_MAC, Mode::S8)
}
