//! The validated key package and its wire parsing.

use std::fmt;
use std::time::{Duration, Instant};

use kf_apdu::Dgi;
use kf_crypto::{AesKey, StaticKeys};
use kf_profile::FobDgi;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::KlmsError;

/// Response as sent (the KLMS contract plus extensions); unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyPackage {
    transaction_id: String,
    fob_uid: String,
    key_version: u64,
    scp03_static_keys: RawKeys,
    ford_payload: RawFordPayload,
    personalization_dgis: Vec<RawDgi>,
    expires_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    enc: Zeroizing<String>,
    mac: Zeroizing<String>,
    dek: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFordPayload {
    apdu_cla_ins_p1_p2: String,
    data_hex: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDgi {
    tag: String,
    data_hex: Zeroizing<String>,
    encrypted: bool,
}

/// The KLMS contract's `ford_payload`: STORE DATA header template and the concatenated DGIs.
pub struct FordPayload {
    /// CLA INS P1 P2.
    pub cla_ins_p1_p2: [u8; 4],
    /// Concatenated `TAG ‖ len ‖ value` of all DGIs.
    pub data: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for FordPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FordPayload({:02X?}, {} bytes)",
            self.cla_ins_p1_p2,
            self.data.len()
        )
    }
}

/// One personalization DGI (provisioning specification table), value as written to the card.
pub struct PersonalizationDgi {
    /// The DGI.
    pub dgi: FobDgi,
    /// Value (A003 already encrypted under the static DEK; A006 is a secret IRK).
    pub data: Zeroizing<Vec<u8>>,
    /// True for values encrypted under the static DEK.
    pub encrypted: bool,
}

impl PersonalizationDgi {
    /// The 16-bit tag.
    pub fn tag(&self) -> u16 {
        self.dgi.tag()
    }
}

impl fmt::Debug for PersonalizationDgi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dgi({:04X}, {} bytes{})",
            self.dgi.tag(),
            self.data.len(),
            if self.encrypted { ", encrypted" } else { "" }
        )
    }
}

/// A validated key package. Secrets are zeroized on drop and redacted in
/// `Debug`; the package refuses use after `expires_at`.
pub struct KeyPackage {
    transaction_id: String,
    fob_uid: Vec<u8>,
    key_version: u8,
    static_keys: StaticKeys,
    ford_payload: FordPayload,
    dgis: Vec<PersonalizationDgi>,
    expires_at: OffsetDateTime,
    deadline: Instant,
}

impl fmt::Debug for KeyPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPackage")
            .field("transaction_id", &self.transaction_id)
            .field("fob_uid", &hex::encode_upper(&self.fob_uid))
            .field("key_version", &self.key_version)
            .field("static_keys", &self.static_keys)
            .field("ford_payload", &self.ford_payload)
            .field("dgis", &self.dgis)
            .field("expires_at", &self.expires_at_rfc3339())
            .finish()
    }
}

fn invalid(msg: impl Into<String>) -> KlmsError {
    KlmsError::InvalidResponse(msg.into())
}

fn decode_hex(field: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, KlmsError> {
    // The error names the field only: the value may be a key.
    hex::decode(text)
        .map(Zeroizing::new)
        .map_err(|_| invalid(format!("{field} is not valid hex")))
}

fn key(field: &str, text: &str) -> Result<AesKey, KlmsError> {
    let bytes = decode_hex(field, text)?;
    AesKey::from_slice(&bytes).map_err(|_| {
        invalid(format!(
            "{field} has {} bytes (expected 16, 24 or 32)",
            bytes.len()
        ))
    })
}

fn printable(field: &str, value: &str) -> Result<(), KlmsError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "{field} must be 1..=128 printable ASCII characters"
        )));
    }
    Ok(())
}

impl KeyPackage {
    /// Parses and validates a `POST /v1/key-packages` response body for the fob
    /// `expected_uid`. A JSON error names the field or the position, never a
    /// value: the body carries the fob's keys.
    pub fn from_json(body: &[u8], expected_uid: &[u8]) -> Result<KeyPackage, KlmsError> {
        let raw: RawKeyPackage = serde_json::from_slice(body)
            .map_err(|e| KlmsError::InvalidResponse(super::error::redacted_json_error(&e)))?;
        KeyPackage::from_raw(raw, expected_uid)
    }

    /// Validates a parsed response for the fob `expected_uid`.
    pub(crate) fn from_raw(
        raw: RawKeyPackage,
        expected_uid: &[u8],
    ) -> Result<KeyPackage, KlmsError> {
        printable("transaction_id", &raw.transaction_id)?;
        let uid = decode_hex("fob_uid", &raw.fob_uid)?;
        if uid.as_slice() != expected_uid {
            return Err(invalid("fob_uid does not match the requested UID"));
        }
        let key_version = u8::try_from(raw.key_version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| invalid(format!("key_version {} is not in 1..=255", raw.key_version)))?;
        let static_keys = StaticKeys::new(
            key("scp03_static_keys.enc", &raw.scp03_static_keys.enc)?,
            key("scp03_static_keys.mac", &raw.scp03_static_keys.mac)?,
            key("scp03_static_keys.dek", &raw.scp03_static_keys.dek)?,
        )
        .map_err(|_| invalid("scp03_static_keys have different lengths"))?;

        let header = decode_hex(
            "ford_payload.apdu_cla_ins_p1_p2",
            &raw.ford_payload.apdu_cla_ins_p1_p2,
        )?;
        let cla_ins_p1_p2: [u8; 4] = header
            .as_slice()
            .try_into()
            .map_err(|_| invalid("ford_payload.apdu_cla_ins_p1_p2 must be 4 bytes"))?;
        let payload_data = decode_hex("ford_payload.data_hex", &raw.ford_payload.data_hex)?;

        let mut dgis = Vec::with_capacity(raw.personalization_dgis.len());
        let mut expected_payload = Zeroizing::new(Vec::new());
        for (i, d) in raw.personalization_dgis.iter().enumerate() {
            let tag = (d.tag.len() == 4)
                .then(|| u16::from_str_radix(&d.tag, 16).ok())
                .flatten()
                .ok_or_else(|| {
                    invalid(format!("personalization_dgis[{i}].tag is not 4 hex digits"))
                })?;
            let dgi = FobDgi::from_tag(tag).ok_or_else(|| {
                invalid(format!("personalization_dgis[{i}]: unknown DGI {tag:04X}"))
            })?;
            if dgis.iter().any(|p: &PersonalizationDgi| p.dgi == dgi) {
                return Err(invalid(format!("DGI {tag:04X} appears twice")));
            }
            if d.encrypted != dgi.is_encrypted() {
                return Err(invalid(format!("DGI {tag:04X}: wrong encrypted flag")));
            }
            let data = decode_hex(&format!("personalization_dgis[{i}].data_hex"), &d.data_hex)?;
            dgi.check_value(&data)
                .map_err(|e| invalid(format!("personalization_dgis[{i}]: {e}")))?;
            let wire = Dgi {
                tag,
                data: data.to_vec(),
                sensitive: dgi.is_secret(),
            };
            wire.encode_into(&mut expected_payload)
                .map_err(|e| invalid(format!("personalization_dgis[{i}]: {e}")))?;
            dgis.push(PersonalizationDgi {
                dgi,
                data,
                encrypted: d.encrypted,
            });
        }
        for required in FobDgi::ALL {
            if !dgis.iter().any(|p| p.dgi == required) {
                return Err(invalid(format!("DGI {:04X} is missing", required.tag())));
            }
        }
        if !kf_crypto::ct_eq(&expected_payload, &payload_data) {
            return Err(invalid(
                "ford_payload.data_hex is not the concatenation of personalization_dgis",
            ));
        }

        let expires_at = OffsetDateTime::parse(&raw.expires_at, &Rfc3339)
            .map_err(|_| invalid("expires_at is not an RFC 3339 time"))?;
        let remaining = expires_at - OffsetDateTime::now_utc();
        let remaining = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
        let package = KeyPackage {
            transaction_id: raw.transaction_id,
            fob_uid: uid.to_vec(),
            key_version,
            static_keys,
            ford_payload: FordPayload {
                cla_ins_p1_p2,
                data: payload_data,
            },
            dgis,
            expires_at,
            deadline: Instant::now() + remaining,
        };
        package.ensure_fresh()?;
        Ok(package)
    }

    /// Errors with [`KlmsError::Expired`] once the package's validity ended
    /// (by the wall clock or by the monotonic clock measured from receipt).
    /// Call it right before the keys are used.
    pub fn ensure_fresh(&self) -> Result<(), KlmsError> {
        self.ensure_fresh_at(Instant::now(), OffsetDateTime::now_utc())
    }

    /// [`KeyPackage::ensure_fresh`] at the given monotonic and wall-clock
    /// times.
    pub fn ensure_fresh_at(&self, now: Instant, wall: OffsetDateTime) -> Result<(), KlmsError> {
        if now >= self.deadline || wall >= self.expires_at {
            return Err(KlmsError::Expired {
                transaction_id: self.transaction_id.clone(),
                expires_at: self.expires_at_rfc3339(),
            });
        }
        Ok(())
    }

    /// Time left before expiry (zero when expired).
    pub fn remaining(&self) -> Duration {
        self.remaining_at(Instant::now())
    }

    /// Time left before expiry at the monotonic time `now`.
    pub fn remaining_at(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Transaction id to echo in the audit record.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The UID the package was issued for.
    pub fn fob_uid(&self) -> &[u8] {
        &self.fob_uid
    }

    /// Key version number of the static keys.
    pub fn key_version(&self) -> u8 {
        self.key_version
    }

    /// Diversified static keys (check [`KeyPackage::ensure_fresh`] first).
    pub fn static_keys(&self) -> &StaticKeys {
        &self.static_keys
    }

    /// The KLMS contract's payload.
    pub fn ford_payload(&self) -> &FordPayload {
        &self.ford_payload
    }

    /// DGIs in the order the KLMS sent them.
    pub fn dgis(&self) -> &[PersonalizationDgi] {
        &self.dgis
    }

    /// End of validity.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    fn expires_at_rfc3339(&self) -> String {
        self.expires_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| "<unformattable>".to_owned())
    }
}
