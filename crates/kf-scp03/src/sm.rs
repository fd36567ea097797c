//! Secure messaging primitives shared by host, card and replay: C-MAC and
//! C-DECRYPTION (Amd D §6.2.4, §6.2.6), R-MAC and R-ENCRYPTION (§6.2.5, §6.2.7).
//!
//! These functions do not terminate anything; the channel types wrap them and
//! fail closed. The replay calculator uses them directly so it can report a bad
//! MAC and carry on.

use kf_apdu::{
    gp, CommandApdu, LengthForm, ResponseApdu, StatusWord, MAX_DATA_LEN, MAX_SHORT_DATA_LEN,
    MAX_SHORT_LE,
};
use kf_crypto::{ct_eq, AesCipher, AesKey, CmacRun, BLOCK_LEN};

use crate::{wrapped_data_len, Mode, Scp03Error, SecurityLevel, SessionKeys, TerminationCause};

/// A 16-byte MAC chaining value (Amd D §5.3, §6.2.3): public, but part of the
/// channel state.
pub type ChainingValue = [u8; BLOCK_LEN];

/// Secure-messaging view of a class byte (Amd D §6.2.4, GPC Table 11-11/11-12).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassBytes {
    /// CLA used in the MAC input: logical channel cleared, GP SM indicated.
    pub mac: u8,
    /// CLA sent on the wire: the MAC CLA plus the logical channel number.
    pub wire: u8,
    /// CLA of the plaintext command.
    pub plain: u8,
}

fn is_further_interindustry(cla: u8) -> bool {
    cla & 0x40 != 0
}

/// Class bytes for wrapping a plaintext command. The plaintext must not already
/// indicate secure messaging; CLA 'FF' is invalid (ISO/IEC 7816-4 §5.4.1).
pub(crate) fn class_for_wrap(cla: u8) -> Result<ClassBytes, Scp03Error> {
    if cla == 0xFF {
        return Err(Scp03Error::UnsupportedClass(cla));
    }
    if is_further_interindustry(cla) {
        // b6 indicates secure messaging, b1-b4 the channel (4..19).
        if cla & 0x20 != 0 {
            return Err(Scp03Error::UnsupportedClass(cla));
        }
        let mac = (cla & !0x0F) | 0x20;
        let wire = mac | (cla & 0x0F);
        // 'DF' (chaining, channel 19) would go out as the invalid 'FF'.
        if wire == 0xFF {
            return Err(Scp03Error::UnsupportedClass(cla));
        }
        Ok(ClassBytes {
            mac,
            wire,
            plain: cla,
        })
    } else {
        // b3-b4 = 01: GP proprietary secure messaging; b1-b2 the channel (0..3).
        if cla & 0x0C != 0 {
            return Err(Scp03Error::UnsupportedClass(cla));
        }
        let mac = (cla & !0x03) | 0x04;
        Ok(ClassBytes {
            mac,
            wire: mac | (cla & 0x03),
            plain: cla,
        })
    }
}

/// Class bytes of a received command; `None` when it does not indicate GP
/// secure messaging.
pub(crate) fn class_for_unwrap(cla: u8) -> Option<ClassBytes> {
    if cla == 0xFF {
        return None;
    }
    if is_further_interindustry(cla) {
        (cla & 0x20 != 0).then_some(ClassBytes {
            mac: cla & !0x0F,
            wire: cla,
            plain: cla & !0x20,
        })
    } else {
        (cla & 0x0C == 0x04).then_some(ClassBytes {
            mac: cla & !0x03,
            wire: cla,
            plain: cla & !0x04,
        })
    }
}

/// ICV for command encryption: AES-ECB(S-ENC, counter as a 16-byte big-endian
/// block) (Amd D §6.2.6).
pub fn command_icv(s_enc: &AesKey, counter: u64) -> [u8; BLOCK_LEN] {
    icv(&AesCipher::new(s_enc), counter, false)
}

/// ICV for response encryption: the command counter block with its most
/// significant byte set to '80', encrypted with S-ENC (Amd D §6.2.7).
pub fn response_icv(s_enc: &AesKey, counter: u64) -> [u8; BLOCK_LEN] {
    icv(&AesCipher::new(s_enc), counter, true)
}

fn icv(s_enc: &AesCipher, counter: u64, response: bool) -> [u8; BLOCK_LEN] {
    let mut block = [0u8; BLOCK_LEN];
    block[8..].copy_from_slice(&counter.to_be_bytes());
    if response {
        block[0] = 0x80;
    }
    s_enc.encrypt_block(&block)
}

/// Lc field as it appears in the MAC input: the encoding the wire uses.
struct LcField {
    bytes: [u8; 3],
    len: usize,
}

impl LcField {
    fn new(lc: usize, extended: bool) -> LcField {
        if extended {
            LcField {
                bytes: [0x00, (lc >> 8) as u8, lc as u8],
                len: 3,
            }
        } else {
            LcField {
                bytes: [lc as u8, 0, 0],
                len: 1,
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A C-MAC computation with chaining value ‖ header ‖ Lc already absorbed
/// (Amd D §6.2.4); the data follows.
fn c_mac_start<'k>(
    keys: &'k SessionKeys,
    chaining: &ChainingValue,
    header: [u8; 4],
    lc: &LcField,
) -> CmacRun<'k> {
    let mut m = keys.c_mac_state();
    m.update(chaining);
    m.update(&header);
    m.update(lc.as_bytes());
    m
}

/// Full 16-byte C-MAC over chaining value ‖ header ‖ Lc ‖ data (Amd D §6.2.4).
fn c_mac(
    keys: &SessionKeys,
    chaining: &ChainingValue,
    header: [u8; 4],
    lc: &LcField,
    data: &[u8],
) -> [u8; BLOCK_LEN] {
    let mut m = c_mac_start(keys, chaining, header, lc);
    m.update(data);
    m.finalize()
}

/// Builds the EXTERNAL AUTHENTICATE command (Amd D §7.1.2, §6.2.3): the
/// plaintext command of `kf_apdu::gp::external_authenticate` (P1 = security
/// level, data = host cryptogram) protected with a C-MAC only, chained from
/// 16 × '00'. Returns the command (CLA '84') and the new chaining value.
pub fn external_authenticate(
    keys: &SessionKeys,
    mode: Mode,
    level: SecurityLevel,
    host_cryptogram: &[u8],
) -> Result<(CommandApdu, ChainingValue), Scp03Error> {
    let plain = gp::external_authenticate(level.value(), host_cryptogram)?;
    let mut chaining = [0u8; BLOCK_LEN];
    // No data is encrypted, so the encryption counter does not enter.
    let command = protect_command(keys, mode, SecurityLevel::C_MAC, &mut chaining, 0, &plain)?;
    Ok((command, chaining))
}

/// Verifies a received EXTERNAL AUTHENTICATE's C-MAC (card side) and returns
/// the host cryptogram and the new chaining value.
pub(crate) fn verify_external_authenticate(
    keys: &SessionKeys,
    mode: Mode,
    raw: &[u8],
) -> Result<(CommandApdu, Vec<u8>, ChainingValue), Scp03Error> {
    let malformed = |reason| Scp03Error::MalformedHandshakeCommand {
        command: "EXTERNAL AUTHENTICATE",
        reason,
    };
    let (cmd, form) =
        CommandApdu::parse_with_form(raw).map_err(|_| malformed("not a valid APDU"))?;
    let class = class_for_unwrap(cmd.cla()).ok_or(malformed("no secure messaging in CLA"))?;
    if cmd.ins() != gp::ins::EXTERNAL_AUTHENTICATE || cmd.p2() != 0x00 {
        return Err(malformed("wrong INS or P2"));
    }
    if cmd.data().len() != 2 * mode.byte_len() {
        return Err(malformed("data is not host cryptogram ‖ C-MAC"));
    }
    let (crypto, mac) = cmd.data().split_at(mode.byte_len());
    let extended = form == LengthForm::Extended;
    let computed = c_mac(
        keys,
        &[0u8; BLOCK_LEN],
        [class.mac, cmd.ins(), cmd.p1(), cmd.p2()],
        &LcField::new(cmd.data().len(), extended),
        crypto,
    );
    if !ct_eq(&computed[..mode.byte_len()], mac) {
        return Err(Scp03Error::ExternalAuthenticateMacMismatch);
    }
    let crypto = crypto.to_vec();
    Ok((cmd, crypto, computed))
}

/// Protects a plaintext command for the current level (host side).
///
/// `counter` is the encryption counter of this command (1 for the first
/// command after EXTERNAL AUTHENTICATE). `chaining` is updated only on
/// success. Commands without data are not encrypted (Amd D §6.2.6); padding is
/// always applied otherwise; Le is kept; extended lengths are used when the
/// protected data exceeds 255 bytes or Le exceeds 256.
pub fn protect_command(
    keys: &SessionKeys,
    mode: Mode,
    level: SecurityLevel,
    chaining: &mut ChainingValue,
    counter: u64,
    command: &CommandApdu,
) -> Result<CommandApdu, Scp03Error> {
    if !level.c_mac() {
        return Ok(command.clone());
    }
    let class = class_for_wrap(command.cla())?;
    let data = command.data();
    let encrypt = level.c_dec() && !data.is_empty();
    let lc = wrapped_data_len(level, mode, data.len());
    if lc > MAX_DATA_LEN {
        return Err(Scp03Error::CommandTooLong(data.len()));
    }
    let extended = lc > MAX_SHORT_DATA_LEN || command.le().is_some_and(|le| le > MAX_SHORT_LE);
    let header = [class.mac, command.ins(), command.p1(), command.p2()];
    let mut m = c_mac_start(keys, chaining, header, &LcField::new(lc, extended));
    let mut body = Vec::with_capacity(lc);
    if encrypt {
        // The C-MAC covers the ciphertext; it absorbs each block as the
        // encryption produces it, so the two AES chains overlap.
        let cipher = keys.enc_cipher();
        cipher.cbc_encrypt_m2_with(&icv(cipher, counter, false), data, &mut body, |block| {
            m.update(block)
        });
    } else {
        body.extend_from_slice(data);
        m.update(data);
    }
    let mac = m.finalize();
    body.extend_from_slice(&mac[..mode.byte_len()]);
    let mut out = CommandApdu::new(class.wire, command.ins(), command.p1(), command.p2())
        .try_with_data(body)?;
    if let Some(le) = command.le() {
        out = out.try_with_le(le)?;
    }
    if command.is_sensitive() {
        out = out.sensitive();
    }
    *chaining = mac;
    Ok(out)
}

/// Verifies and decrypts a received command (card side). `raw` is the command
/// as it came off the wire: its Lc encoding (short or extended) is what the
/// MAC covers.
pub fn verify_command(
    keys: &SessionKeys,
    mode: Mode,
    level: SecurityLevel,
    chaining: &mut ChainingValue,
    counter: u64,
    raw: &[u8],
) -> Result<CommandApdu, TerminationCause> {
    let (command, form) =
        CommandApdu::parse_with_form(raw).map_err(|_| TerminationCause::MalformedCommand)?;
    if !level.c_mac() {
        return Ok(command);
    }
    let class = class_for_unwrap(command.cla()).ok_or(TerminationCause::MissingSecureMessaging)?;
    let data = command.data();
    if data.len() < mode.byte_len() {
        return Err(TerminationCause::MissingMac);
    }
    let (body, mac) = data.split_at(data.len() - mode.byte_len());
    let extended = form == LengthForm::Extended;
    let computed = c_mac(
        keys,
        chaining,
        [class.mac, command.ins(), command.p1(), command.p2()],
        &LcField::new(data.len(), extended),
        body,
    );
    if !ct_eq(&computed[..mode.byte_len()], mac) {
        return Err(TerminationCause::CMacMismatch);
    }
    *chaining = computed;
    let plain = if level.c_dec() && !body.is_empty() {
        let cipher = keys.enc_cipher();
        cipher
            .cbc_decrypt_m2(&icv(cipher, counter, false), body)
            .map_err(|_| TerminationCause::BadCryptogramLayout)?
    } else {
        body.to_vec()
    };
    let mut out = CommandApdu::new(class.plain, command.ins(), command.p1(), command.p2())
        .try_with_data(plain)
        .map_err(|_| TerminationCause::MalformedCommand)?;
    if let Some(le) = command.le() {
        out = out
            .try_with_le(le)
            .map_err(|_| TerminationCause::MalformedCommand)?;
    }
    Ok(out)
}

/// What protects the response to one command: the session keys, mode and
/// level, the chaining value after that command's C-MAC, and its encryption
/// counter. The card protects and the host verifies with the same context.
#[derive(Clone, Copy)]
pub struct ResponseContext<'a> {
    /// Session keys (S-ENC, S-RMAC).
    pub keys: &'a SessionKeys,
    /// MAC length.
    pub mode: Mode,
    /// Whether R-MAC and R-ENCRYPTION apply.
    pub level: SecurityLevel,
    /// Chaining value of the command the response answers.
    pub chaining: &'a ChainingValue,
    /// Encryption counter of that command.
    pub counter: u64,
}

/// Whether a status word gets R-MAC protection: '9000' and the warnings
/// '62xx'/'63xx'; every other SW is an error and carries no R-MAC (Amd D §6.2.5).
pub fn sw_is_protected(sw: StatusWord) -> bool {
    sw.is_success() || sw.is_warning()
}

/// Protects a response (card side), for the command that had `counter`.
/// Error status words are returned alone, without data or R-MAC.
pub fn protect_response(ctx: &ResponseContext<'_>, response: &ResponseApdu) -> ResponseApdu {
    let (keys, mode) = (ctx.keys, ctx.mode);
    if !ctx.level.r_mac() {
        return response.clone();
    }
    let sw = response.sw();
    if !sw_is_protected(sw) {
        return ResponseApdu::status(sw);
    }
    let mut m = r_mac_start(keys, ctx.chaining);
    let mut body = Vec::with_capacity(response.data().len() + BLOCK_LEN + mode.byte_len());
    if ctx.level.r_enc() && !response.data().is_empty() {
        let cipher = keys.enc_cipher();
        cipher.cbc_encrypt_m2_with(
            &icv(cipher, ctx.counter, true),
            response.data(),
            &mut body,
            |block| m.update(block),
        );
    } else {
        body.extend_from_slice(response.data());
        m.update(response.data());
    }
    m.update(&sw.to_bytes());
    let mac = m.finalize();
    body.extend_from_slice(&mac[..mode.byte_len()]);
    ResponseApdu::new(body, sw)
}

/// An R-MAC computation with the chaining value absorbed (Amd D §6.2.5); the
/// response data and SW follow.
fn r_mac_start<'k>(keys: &'k SessionKeys, chaining: &ChainingValue) -> CmacRun<'k> {
    let mut m = keys.r_mac_state();
    m.update(chaining);
    m
}

fn r_mac(
    keys: &SessionKeys,
    chaining: &ChainingValue,
    data: &[u8],
    sw: StatusWord,
) -> [u8; BLOCK_LEN] {
    let mut m = r_mac_start(keys, chaining);
    m.update(data);
    m.update(&sw.to_bytes());
    m.finalize()
}

/// Outcome of opening a protected response without failing on the first error
/// (used by replay, and by [`verify_response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedResponse {
    /// `Some(true/false)` when an R-MAC was checked; `None` when the level has
    /// no R-MAC or the SW is an unprotected error.
    pub mac_valid: Option<bool>,
    /// Plaintext response, or the layout error that prevented decryption.
    pub plain: Result<ResponseApdu, TerminationCause>,
}

/// Checks the R-MAC and decrypts, reporting both results separately.
pub fn open_response(ctx: &ResponseContext<'_>, response: &ResponseApdu) -> OpenedResponse {
    let ResponseContext {
        keys,
        mode,
        level,
        chaining,
        counter,
    } = *ctx;
    let sw = response.sw();
    if !level.r_mac() {
        return OpenedResponse {
            mac_valid: None,
            plain: Ok(response.clone()),
        };
    }
    if !sw_is_protected(sw) {
        // Error responses carry the SW alone (Amd D §6.2.5); data next to an
        // error SW means the SW was altered in transit.
        if !response.data().is_empty() {
            return OpenedResponse {
                mac_valid: Some(false),
                plain: Err(TerminationCause::UnexpectedResponseData),
            };
        }
        return OpenedResponse {
            mac_valid: None,
            plain: Ok(ResponseApdu::status(sw)),
        };
    }
    let data = response.data();
    if data.len() < mode.byte_len() {
        return OpenedResponse {
            mac_valid: Some(false),
            plain: Err(TerminationCause::MissingMac),
        };
    }
    let (body, mac) = data.split_at(data.len() - mode.byte_len());
    let computed = r_mac(keys, chaining, body, sw);
    let mac_valid = ct_eq(&computed[..mode.byte_len()], mac);
    let plain = if level.r_enc() && !body.is_empty() {
        let cipher = keys.enc_cipher();
        cipher
            .cbc_decrypt_m2(&icv(cipher, counter, true), body)
            .map(|d| ResponseApdu::new(d, sw))
            .map_err(|_| TerminationCause::BadCryptogramLayout)
    } else {
        Ok(ResponseApdu::new(body.to_vec(), sw))
    };
    OpenedResponse {
        mac_valid: Some(mac_valid),
        plain,
    }
}

/// Verifies and decrypts a protected response (host side). Error SWs other
/// than '62xx'/'63xx' pass through when they come alone; with data beside them
/// they are rejected as tampered.
pub fn verify_response(
    ctx: &ResponseContext<'_>,
    response: &ResponseApdu,
) -> Result<ResponseApdu, TerminationCause> {
    let opened = open_response(ctx, response);
    match (opened.mac_valid, opened.plain) {
        (
            Some(false),
            Err(c @ (TerminationCause::MissingMac | TerminationCause::UnexpectedResponseData)),
        ) => Err(c),
        // A bad MAC wins over a decryption failure: no padding oracle.
        (Some(false), _) => Err(TerminationCause::RMacMismatch),
        (_, plain) => plain,
    }
}
