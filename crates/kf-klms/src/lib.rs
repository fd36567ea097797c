//! Reference KLMS ("Clypeum" contract) for integration tests and
//! factory dry runs: REST over mutual TLS, KDF3 key diversification, a
//! one-time issuance ledger, key-package TTL and audit ingest.
//!
//! Data flow of one request:
//!
//! ```text
//! station ──TLS (client cert verified against the station CA)──▶ accept loop
//!   └─ CN of the client certificate ──allow-list──▶ 403 when unlisted
//! POST /v1/key-packages {fob_uid, reader_id}
//!   ├─ UID length check ──▶ KDF3(master, label, UID) ──▶ static ENC/MAC/DEK
//!   ├─ ContentProvider ──▶ SPID, device cert, P-256 scalar, ICA, root, IRK
//!   │     └─ scalar ──AES-CBC(static DEK, IV 0, ISO 9797-1 M2)──▶ DGI A003
//!   ├─ Ledger (SQLite, synchronous=FULL): one package per UID, 409 otherwise;
//!   │     writes go through one writer thread that commits all queued requests
//!   │     in one fsynced transaction (group commit); the reply waits for it
//!   └─▶ {transaction_id, key_version, scp03_static_keys, ford_payload,
//!        personalization_dgis, expires_at = now + TTL}
//! POST /v1/audit {audit record} ──validate──▶ Ledger (idempotent by
//!   transaction_id; SUCCESS completes the issuance)
//! ```
//!
//! Decisions (the contract leaves them open):
//! * The private scalar never leaves the server in clear: the station receives
//!   A003 already encrypted under the fob's static DEK (AES-CBC, IV 0,
//!   ISO 9797-1 M2) and writes it as is.
//! * `ford_payload` carries the STORE DATA header template `80E20000` and the
//!   concatenation of all DGIs (`TAG ‖ len ‖ value`, the DGI encoding); the
//!   client checks it equals `personalization_dgis`.
//! * Requests are strict (duplicate keys, unknown fields, wrong types → 400
//!   naming the field); station and reader identifiers follow
//!   [`wire::check_identifier`] (see [`wire`]).
//! * Every connection phase is bounded (see [`limits`]): handshake, request
//!   head, body (408), keep-alive idle; at most `max_connections`; per-route
//!   body limits (413, before the body for a larger `Content-Length`); HTTP/1.1 only.
//! * Status codes: 400 malformed JSON / missing or unknown field, 415 wrong
//!   content type, 413 body over the limit, 408 body not received in time,
//!   422 well-formed but invalid value, 403 CN not allowed (or audit from
//!   another station, or `eol_station_id` not the certificate's CN), 404 audit
//!   for an unknown transaction, 409 already issued / conflicting audit, 202 a
//!   `SUCCESS` audit stored with a flag, 503 no content (`no_content`) or the
//!   ledger queue is full (`ledger_busy`, retry).
//! * `GET /healthz` needs a verified client certificate but no allow-listed CN.
//! * An audit must come from the station the package was issued to; a `SUCCESS`
//!   audit marks the issuance completed, which blocks re-issuance for good
//!   (until an operator re-issue), unless a later package superseded it
//!   (see [`ledger::AuditFlag`]).
//!
//! Depends on the primitives (`kf-crypto`, `kf-apdu`, `kf-profile`, `kf-audit`, `kf-files`,
//! `kf-secret-file`, `kf-accept`, `kf-stats`) and on `kf-source` for the container package
//! format its pool shares with the station; never on the station, the pipeline, the
//! transports or the virtual fob.

pub mod anchor;
pub mod bench;
pub mod clock;
pub mod config;
pub mod container_pool;
pub mod content;
pub mod keystore;
pub mod ledger;
mod ledger_writer;
pub mod limits;
pub mod pki;
pub mod receipt;
mod server;
mod service;
pub mod tls;
pub mod wire;

pub use limits::Limits;
pub use server::{
    serve, spawn_server, KlmsConfig, ServerError, ServerHandle, DEFAULT_TTL, DEFAULT_UID_LEN,
};

/// KDF3 diversification of the three static keys as upper-case hex JSON
/// (`kf-klms derive`): `{"enc": HEX, "mac": HEX, "dek": HEX}`.
pub fn derive_json(master_key_hex: &str, uid_hex: &str, uid_len: usize) -> Result<String, String> {
    let master =
        kf_crypto::AesKey::from_hex(master_key_hex).map_err(|e| format!("master key: {e}"))?;
    let uid = kf_crypto::decode_hex(uid_hex).map_err(|e| format!("uid: {e}"))?;
    if uid.len() != uid_len {
        return Err(format!("uid has {} bytes, expected {uid_len}", uid.len()));
    }
    let keys = kf_crypto::kdf::diversify_static_keys(&master, &uid).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "enc": hex::encode_upper(keys.enc.expose_secret()),
        "mac": hex::encode_upper(keys.mac.expose_secret()),
        "dek": hex::encode_upper(keys.dek.expose_secret()),
    })
    .to_string())
}
