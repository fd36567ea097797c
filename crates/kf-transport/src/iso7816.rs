//! ISO/IEC 7816 transmission conventions above any [`Transport`].
//!
//! * `61xx` (ISO/IEC 7816-4 §5.3.4, 7816-3 §12.2.2): more response bytes are
//!   waiting; the driver sends GET RESPONSE (`INS C0`, Le = xx) and concatenates
//!   the data until a final status word, with a bounded number of rounds.
//! * `6Cxx`: wrong Le; the driver re-issues the same command once with Le = xx.
//! * Extended-length commands (7816-4 §5.1) are only passed to transports that
//!   support them ([`Transport::supports_extended`]); otherwise the call fails
//!   with [`TransportError::ApduTooLong`] before anything is sent.
//!
//! ```text
//! caller ──C-APDU──▶ Iso7816Driver ──C-APDU / GET RESPONSE──▶ Transport ──▶ card
//!        ◀─data||SW── (61xx/6Cxx resolved) ◀──────raw R-APDUs───────────────┘
//! ```

use kf_apdu::{gp, CommandApdu, LengthForm};

use crate::error::TransportError;
use crate::transport::{Layer, RawApdu, Sensitivity, Transport};

/// PC/SC pseudo-APDU GET DATA for the contactless UID (PC/SC Part 3
/// Supplement, §3.2.2.1.3): `FF CA 00 00 00`.
pub const GET_UID_APDU: [u8; 5] = gp::pcsc::GET_UID;

/// Bounds of the driver's loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Maximum number of GET RESPONSE commands for one exchange.
    pub max_get_response_rounds: usize,
    /// Maximum total response data collected over the GET RESPONSE loop.
    pub max_response_len: usize,
    /// Re-issue a command answered with `6Cxx` (once) with the corrected Le.
    pub reissue_on_wrong_le: bool,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            max_get_response_rounds: 64,
            max_response_len: 65_536,
            reissue_on_wrong_le: true,
        }
    }
}

/// A [`Transport`] that resolves `61xx` and `6Cxx` on top of another one.
///
/// It is itself a `Transport`, so protocol drivers (SCP03, perso) can stack on
/// it without knowing whether the reader uses T=0 or T=1.
#[derive(Debug)]
pub struct Iso7816Driver<T> {
    inner: T,
    config: DriverConfig,
}

impl<T: Transport> Iso7816Driver<T> {
    /// Wraps `inner` with the default bounds.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            config: DriverConfig::default(),
        }
    }

    /// Wraps `inner` with explicit bounds.
    pub fn with_config(inner: T, config: DriverConfig) -> Self {
        Self { inner, config }
    }

    /// Unwraps the transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// Sends the command and resolves `61xx`/`6Cxx`; returns data || SW1 SW2.
impl<T: Transport> Layer for Iso7816Driver<T> {
    crate::layer_inner!(inner: T);
    fn on_transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        transceive(&mut self.inner, apdu, &self.config)
    }
}

/// Splits a raw response into (data, SW1, SW2).
fn split_response(resp: &[u8]) -> Result<(&[u8], u8, u8), TransportError> {
    match resp {
        [data @ .., sw1, sw2] => Ok((data, *sw1, *sw2)),
        _ => Err(TransportError::Protocol(format!(
            "response of {} bytes has no status word",
            resp.len()
        ))),
    }
}

/// CLA for GET RESPONSE: keep the logical channel, drop secure messaging and
/// chaining bits (ISO/IEC 7816-4 §5.4.1). Proprietary classes (GlobalPlatform
/// `80`/`84`) map to the interindustry class of the same channel.
fn get_response_cla(cla: u8) -> u8 {
    if cla & gp::CLA_FURTHER_INTERINDUSTRY != 0 {
        gp::CLA_FURTHER_INTERINDUSTRY | (cla & gp::CLA_FURTHER_CHANNEL_MASK)
    } else {
        cla & gp::CLA_CHANNEL_MASK
    }
}

/// Sends one command, re-issuing it once with the corrected Le on `6Cxx`.
fn send_correcting_le<T: Transport + ?Sized>(
    transport: &mut T,
    apdu: RawApdu<'_>,
    config: &DriverConfig,
) -> Result<Vec<u8>, TransportError> {
    let resp = transport.transmit(apdu)?;
    let (_, sw1, sw2) = split_response(&resp)?;
    if sw1 != 0x6C || !config.reissue_on_wrong_le {
        return Ok(resp);
    }
    let ne = if sw2 == 0 { 256 } else { usize::from(sw2) };
    let corrected = with_ne(apdu, ne)?;
    let resp = transport.transmit(apdu.with_bytes(&corrected))?;
    split_response(&resp)?;
    Ok(resp)
}

/// Parses the command through the one APDU codec; a sensitive command's copy
/// is marked sensitive so that it is wiped when dropped.
fn parse(command: RawApdu<'_>) -> Result<(CommandApdu, LengthForm), TransportError> {
    let (apdu, form) = CommandApdu::parse_with_form(command.bytes())?;
    Ok(match command.sensitivity() {
        Sensitivity::Sensitive => (apdu.sensitive(), form),
        Sensitivity::Public => (apdu, form),
    })
}

/// Re-encodes `command` with a new Ne (1..=65536), keeping header and data,
/// in the extended form when the original used it or Ne needs it.
fn with_ne(command: RawApdu<'_>, ne: usize) -> Result<Vec<u8>, TransportError> {
    let (apdu, form) = parse(command)?;
    let apdu = apdu.try_with_le(ne)?;
    Ok(match form {
        LengthForm::Extended => apdu.to_bytes_extended(),
        LengthForm::Short => apdu.to_bytes(),
    })
}

/// Sends `apdu` over `transport`, resolving `61xx` with a bounded GET RESPONSE
/// loop and `6Cxx` with one re-issue. Returns the concatenated data || final SW.
pub(crate) fn transceive<T: Transport + ?Sized>(
    transport: &mut T,
    command: RawApdu<'_>,
    config: &DriverConfig,
) -> Result<Vec<u8>, TransportError> {
    let apdu = command.bytes();
    // Only the class byte is kept; the parsed copy is dropped (and wiped when sensitive) here.
    let (cla, form) = parse(command).map(|(parsed, form)| (parsed.cla(), form))?;
    let max = transport.max_apdu_len();
    if apdu.len() > max || (form == LengthForm::Extended && !transport.supports_extended()) {
        return Err(TransportError::ApduTooLong {
            len: apdu.len(),
            max,
        });
    }
    let first = send_correcting_le(transport, command, config)?;
    let (data, mut sw1, mut sw2) = split_response(&first)?;
    let mut collected = data.to_vec();
    let mut rounds = 0usize;
    while sw1 == 0x61 {
        rounds += 1;
        if rounds > config.max_get_response_rounds {
            return Err(TransportError::Protocol(format!(
                "card still signals 61xx after {} GET RESPONSE commands",
                config.max_get_response_rounds
            )));
        }
        let mut get_response = gp::get_response(usize::from(sw2));
        get_response.set_cla(get_response_cla(cla));
        let get_response = get_response.to_bytes();
        let resp = send_correcting_le(transport, command.with_bytes(&get_response), config)?;
        let (data, next_sw1, next_sw2) = split_response(&resp)?;
        if collected.len() + data.len() > config.max_response_len {
            return Err(TransportError::Protocol(format!(
                "response exceeds {} bytes over GET RESPONSE",
                config.max_response_len
            )));
        }
        collected.extend_from_slice(data);
        sw1 = next_sw1;
        sw2 = next_sw2;
    }
    collected.push(sw1);
    collected.push(sw2);
    Ok(collected)
}

/// Reads the contactless UID with the PC/SC pseudo-APDU `FF CA 00 00 00`.
///
/// A status word other than `9000` (e.g. `6A81` from a contact reader) is
/// reported as [`TransportError::UidUnavailable`].
pub fn read_uid<T: Transport + ?Sized>(transport: &mut T) -> Result<Vec<u8>, TransportError> {
    let resp = transceive(
        transport,
        RawApdu::public(&GET_UID_APDU),
        &DriverConfig::default(),
    )?;
    let (data, sw1, sw2) = split_response(&resp)?;
    if (sw1, sw2) != (0x90, 0x00) {
        return Err(TransportError::UidUnavailable {
            sw: u16::from_be_bytes([sw1, sw2]),
        });
    }
    Ok(data.to_vec())
}

#[cfg(test)]
#[path = "iso7816_tests.rs"]
mod tests;
