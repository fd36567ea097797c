//! Offline SCP03 calculator: recomputes a captured session from known static
//! keys, for checking a capture against an independent calculation (CLI
//! `kf-station scp03 replay --script FILE`).
//!
//! Input: static keys, host challenge (8 = S8, 16 = S16 bytes), the INITIALIZE
//! UPDATE response data, the security level, an optional SD AID, and plaintext
//! commands with optional protected responses. Output: the "i" parameter, KVN,
//! cryptogram checks, EXTERNAL AUTHENTICATE, and per command the wrapped APDU
//! and the checked/decrypted response. Invalid cryptograms and MACs are
//! reported and processing continues; malformed input is a [`ReplayError`].

use kf_apdu::{CommandApdu, ResponseApdu};
use kf_crypto::{ct_eq, StaticKeys};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Largest replay script accepted (hex JSON of a captured session; a
/// session of a few hundred extended-length commands fits many times over).
pub const SCRIPT_MAX_BYTES: u64 = 4 * 1024 * 1024;

use crate::session::{pseudo_random_card_challenge, Cryptogram};
use crate::sm::{self, external_authenticate};
use crate::{InitializeUpdateResponse, Mode, SecurityLevel, SessionKeys};

/// Malformed replay input. The message is one line and never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The input is not JSON of the expected shape.
    #[error("invalid replay script: {0}")]
    InvalidJson(String),
    /// A field has an invalid value.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// JSON path of the field, e.g. `commands[2].apdu`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn field_err(field: impl Into<String>, reason: impl std::fmt::Display) -> ReplayError {
    // Keep the message on one line whatever the underlying error says.
    let reason = reason.to_string().replace(['\n', '\r'], " ");
    ReplayError::InvalidField {
        field: field.into(),
        reason,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    static_keys: InputKeys,
    host_challenge: String,
    initialize_update_response: String,
    security_level: String,
    #[serde(default)]
    sd_aid: Option<String>,
    #[serde(default)]
    commands: Vec<InputCommand>,
}

/// The keys are wiped when dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct InputKeys {
    enc: String,
    mac: String,
    dek: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputCommand {
    apdu: String,
    #[serde(default)]
    response: Option<String>,
}

/// The replay result, serialized in the contract's key order.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    /// "i" parameter, 2 hex digits.
    pub scp_parameter_i: String,
    /// Key version number, 2 hex digits.
    pub key_version: String,
    /// Whether the card cryptogram matches the keys.
    pub card_cryptogram_valid: bool,
    /// `None` unless "i" announces a pseudo-random challenge and `sd_aid` was given.
    pub card_challenge_valid: Option<bool>,
    /// Host cryptogram, hex.
    pub host_cryptogram: String,
    /// Full EXTERNAL AUTHENTICATE APDU, hex.
    pub external_authenticate: String,
    /// One entry per input command.
    pub commands: Vec<ReplayCommand>,
    /// Session keys, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_keys: Option<SessionKeysHex>,
}

/// One replayed command.
#[derive(Debug, Serialize)]
pub struct ReplayCommand {
    /// Full protected command APDU, hex (Le kept when the plaintext had one).
    pub wrapped: String,
    /// R-MAC check result; `None` when the level has no R-MAC, the SW is an
    /// unprotected error, or no response was given.
    pub response_valid: Option<bool>,
    /// Decrypted data ‖ SW, hex; `None` when no response was given or it could
    /// not be decrypted.
    pub response_plain: Option<String>,
}

/// Session keys in hex (only produced with `show_session_keys`). Wiped on drop;
/// `Debug` is redacted.
#[derive(Serialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeysHex {
    /// S-ENC.
    pub s_enc: String,
    /// S-MAC.
    pub s_mac: String,
    /// S-RMAC.
    pub s_rmac: String,
}

impl std::fmt::Debug for SessionKeysHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeysHex([redacted])")
    }
}

impl ReplayReport {
    /// The report as a JSON value (keys in contract order when printed by
    /// [`ReplayReport::to_json_pretty`]).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Pretty JSON text in the contract's key order.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn hex_field(field: &str, value: &str) -> Result<Vec<u8>, ReplayError> {
    kf_crypto::decode_hex(value).map_err(|e| field_err(field, e))
}

/// Runs the replay contract on `input_json`. Session keys are included only
/// when `show_session_keys` is true.
pub fn replay(input_json: &str, show_session_keys: bool) -> Result<ReplayReport, ReplayError> {
    let input: Input = serde_json::from_str(input_json)
        .map_err(|e| ReplayError::InvalidJson(e.to_string().replace(['\n', '\r'], " ")))?;
    let keys = StaticKeys::from_hex(
        &input.static_keys.enc,
        &input.static_keys.mac,
        &input.static_keys.dek,
    )
    .map_err(|e| field_err("static_keys", e))?;
    let host_challenge = hex_field("host_challenge", &input.host_challenge)?;
    let mode = Mode::from_challenge_len(host_challenge.len())
        .map_err(|e| field_err("security_level", e))?;
    let iu_data = hex_field(
        "initialize_update_response",
        &input.initialize_update_response,
    )?;
    let card = InitializeUpdateResponse::parse(&iu_data, mode)
        .map_err(|e| field_err("initialize_update_response", e))?;
    let level_byte = hex_field("security_level", &input.security_level)?;
    let [level_byte] = level_byte[..] else {
        return Err(field_err("security_level", "expected one hex byte"));
    };
    let level = SecurityLevel::new(level_byte).map_err(|e| field_err("security_level", e))?;
    if !card.parameter_i.allows(level) {
        return Err(field_err(
            "security_level",
            format!(
                "level {level_byte:02X} needs R-MAC/R-ENC support that i = {:02X} does not announce",
                card.parameter_i.value()
            ),
        ));
    }
    let sd_aid = input
        .sd_aid
        .as_deref()
        .map(|a| hex_field("sd_aid", a))
        .transpose()?;

    let card_challenge_valid = match (card.sequence_counter, &sd_aid) {
        (Some(counter), Some(aid)) => {
            let expected = pseudo_random_card_challenge(&keys.enc, mode, counter, aid)
                .map_err(|e| field_err("static_keys", e))?;
            Some(ct_eq(&expected, &card.card_challenge))
        }
        _ => None,
    };
    let session = SessionKeys::derive(&keys, &host_challenge, &card.card_challenge)
        .map_err(|e| field_err("static_keys", e))?;
    let expected_card = Cryptogram::Card
        .compute(&session, mode, &host_challenge, &card.card_challenge)
        .map_err(|e| field_err("static_keys", e))?;
    let host_crypto = Cryptogram::Host
        .compute(&session, mode, &host_challenge, &card.card_challenge)
        .map_err(|e| field_err("static_keys", e))?;
    let (ea, mut chaining) = external_authenticate(&session, mode, level, &host_crypto)
        .map_err(|e| field_err("security_level", e))?;

    let mut commands = Vec::with_capacity(input.commands.len());
    for (n, c) in input.commands.iter().enumerate() {
        let apdu_field = format!("commands[{n}].apdu");
        let raw = hex_field(&apdu_field, &c.apdu)?;
        let plain = CommandApdu::parse(&raw).map_err(|e| field_err(&apdu_field, e))?;
        let counter = n as u64 + 1;
        let wrapped = sm::protect_command(&session, mode, level, &mut chaining, counter, &plain)
            .map_err(|e| field_err(&apdu_field, e))?;
        let (response_valid, response_plain) = match &c.response {
            None => (None, None),
            Some(r) => {
                let resp_field = format!("commands[{n}].response");
                let bytes = hex_field(&resp_field, r)?;
                let resp = ResponseApdu::parse(&bytes).map_err(|e| field_err(&resp_field, e))?;
                let ctx = sm::ResponseContext {
                    keys: &session,
                    mode,
                    level,
                    chaining: &chaining,
                    counter,
                };
                let opened = sm::open_response(&ctx, &resp);
                (
                    opened.mac_valid,
                    opened.plain.ok().map(|p| hex::encode_upper(p.to_bytes())),
                )
            }
        };
        commands.push(ReplayCommand {
            wrapped: hex::encode_upper(wrapped.to_bytes()),
            response_valid,
            response_plain,
        });
    }

    let session_keys = show_session_keys.then(|| SessionKeysHex {
        s_enc: hex::encode_upper(session.s_enc().expose_secret()),
        s_mac: hex::encode_upper(session.s_mac().expose_secret()),
        s_rmac: hex::encode_upper(session.s_rmac().expose_secret()),
    });
    Ok(ReplayReport {
        scp_parameter_i: format!("{:02X}", card.parameter_i.value()),
        key_version: format!("{:02X}", card.key_version),
        card_cryptogram_valid: ct_eq(&expected_card, &card.card_cryptogram),
        card_challenge_valid,
        host_cryptogram: hex::encode_upper(&host_crypto),
        external_authenticate: hex::encode_upper(ea.to_bytes()),
        commands,
        session_keys,
    })
}
