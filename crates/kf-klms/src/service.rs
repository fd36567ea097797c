//! HTTP handlers: key-package issuance, audit ingest, health.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use kf_apdu::Dgi;
use kf_crypto::AesKey;
use time::OffsetDateTime;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::content::{ContentProvider, FobContent};
use crate::ledger::{AuditRecord, AuditStored, Issuance, LedgerError, LedgerOp, LedgerOutcome};
use crate::ledger_writer::LedgerWriter;
use crate::limits::Limits;
use crate::wire::{
    check_identifier, parse_strict, AuditAck, AuditRecordCore, DgiJson, ErrorBody, FordPayload,
    KeyPackageRequest, KeyPackageResponse, StaticKeysHex,
};

mod chain;

/// Identity of the TLS peer, attached to each request by the connection layer.
#[derive(Clone, Debug)]
pub(crate) struct StationIdentity(pub Option<String>);

pub(crate) struct AppState {
    /// Read connection for the advisory pre-check (never writes).
    pub ledger_reader: Mutex<Box<dyn crate::ledger::LedgerStore>>,
    /// All ledger writes go through the group-commit writer.
    pub ledger_writer: LedgerWriter,
    pub content: Arc<dyn ContentProvider>,
    pub key: Arc<dyn crate::keystore::KeyBackend>,
    pub key_version: u8,
    pub uid_len: usize,
    pub ttl: Duration,
    pub clock: crate::clock::Clock,
    pub allowed: HashSet<String>,
    /// Signs journal anchor receipts.
    pub receipts: crate::receipt::ReceiptSigner,
}

/// An error response: status + `{"error", "message"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// Routes with their body limits (tower-http: a larger `Content-Length` is
/// answered 413 before any body byte is read, a chunked body is cut at the
/// limit) under the body read timeout (408).
pub(crate) fn router(state: Arc<AppState>, limits: &Limits) -> Router {
    let limited = |limit: usize| RequestBodyLimitLayer::new(limit);
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/v1/key-packages",
            post(key_packages).layer(limited(limits.key_package_body_limit)),
        )
        .route(
            "/v1/audit",
            post(audit).layer(limited(limits.audit_body_limit)),
        )
        .route(
            "/v1/audit/chain",
            post(chain::upload).layer(limited(limits.audit_body_limit)),
        )
        .route("/v1/audit/chain/head", get(chain::head))
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.body_read_timeout(),
        ))
        .layer(axum::middleware::map_response(json_for_bare_errors))
        .with_state(state)
}

/// The limit layers answer 408 and 413 with a plain or empty body; every
/// error of the API carries the JSON error body. Both leave the request body
/// unread, so the connection is closed after them and says so
/// (`Connection: close`): a client must not send its next request on it.
async fn json_for_bare_errors(response: Response) -> Response {
    let mut response = bare_error_as_json(response);
    if matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

fn bare_error_as_json(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !is_json => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body exceeds the limit of this route",
        )
        .into_response(),
        StatusCode::REQUEST_TIMEOUT if !is_json => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body was not received in time",
        )
        .into_response(),
        _ => response,
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

fn authorize(state: &AppState, identity: &StationIdentity) -> Result<String, ApiError> {
    match &identity.0 {
        Some(cn) if state.allowed.contains(cn) => Ok(cn.clone()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "station_not_allowed",
            "the client certificate's CN is not on the station allow-list",
        )),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "station_not_allowed",
            "the client certificate has no CN",
        )),
    }
}

fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "body_too_large", "request body exceeds the limit")
        } else {
            ApiError::new(status, "bad_body", rejection.body_text())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ));
    }
    Ok(body)
}

/// A station's POST: the station its client certificate names, which must be
/// allowed, and the request body, which must be within its limit and
/// declared `application/json` (checked in that order).
pub(crate) struct StationPost {
    station: String,
    body: Bytes,
}

#[axum::async_trait]
impl FromRequest<Arc<AppState>> for StationPost {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Extension(identity) =
            Extension::<StationIdentity>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await;
        let station = authorize(state, &identity).map_err(IntoResponse::into_response)?;
        let body = json_body(&headers, body).map_err(IntoResponse::into_response)?;
        Ok(StationPost { station, body })
    }
}

async fn key_packages(
    State(state): State<Arc<AppState>>,
    StationPost { station, body }: StationPost,
) -> Result<Json<KeyPackageResponse>, ApiError> {
    let request: KeyPackageRequest = parse_strict(&body).map_err(invalid_json)?;
    // Key derivation and content (which may read or claim files) run on the
    // blocking pool; the ledger write is awaited without holding a thread.
    let prepared = {
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || prepare_issue(&state, station, request))
            .await
            .map_err(|_| ApiError::internal("issuance task failed"))??
    };
    let outcome = state
        .ledger_writer
        .submit(LedgerOp::Issue(prepared.issuance.clone()))
        .await
        .map_err(ledger_issue_error)?;
    if outcome != LedgerOutcome::Issued {
        return Err(ApiError::internal("unexpected ledger outcome"));
    }
    // Only now, after the group commit returned, is the package handed out.
    Ok(Json(prepared.into_response(&state)))
}

/// Parses a UID of exactly `uid_len` bytes (hex, either case).
pub(crate) fn parse_uid(text: &str, uid_len: usize) -> Result<Vec<u8>, ApiError> {
    let uid = hex::decode(text)
        .map_err(|_| ApiError::unprocessable("invalid_uid", "fob_uid is not valid hex"))?;
    if uid.len() != uid_len {
        return Err(ApiError::unprocessable(
            "invalid_uid",
            format!("fob_uid has {} bytes, expected {uid_len}", uid.len()),
        ));
    }
    Ok(uid)
}

fn invalid_json(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
}

fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
    check_identifier(value)
        .map_err(|e| ApiError::unprocessable("invalid_identifier", format!("{field}: {e}")))
}

fn check_label(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be 1..=128 printable ASCII characters"),
        ))
    }
}

/// DGIs in personalization order; A003 is AES-CBC(static DEK, IV 0, ISO 9797-1 M2).
fn build_dgis(dek: &AesKey, content: &FobContent) -> Vec<(u16, Vec<u8>, bool)> {
    let encrypted_scalar =
        kf_crypto::cbc::encrypt_m2(dek, &[0u8; 16], content.private_scalar.as_ref());
    vec![
        (0xA003, encrypted_scalar, true),
        (0xA001, content.spid_hex.as_bytes().to_vec(), false),
        (0xA002, content.device_cert_der.clone(), false),
        (0xA004, content.ica_cert_der.clone(), false),
        (0xA005, content.root_cert_der.clone(), false),
        (0xA006, content.irk.to_vec(), false),
    ]
}

/// A token that is not usable right now is 503 (retry later); anything else 500.
fn key_error(e: crate::keystore::KeyError) -> ApiError {
    match e {
        crate::keystore::KeyError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "key_store_unavailable",
            e.to_string(),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

fn ledger_issue_error(e: LedgerError) -> ApiError {
    match e {
        LedgerError::AlreadyIssued(why) => {
            ApiError::new(StatusCode::CONFLICT, "already_issued", why)
        }
        LedgerError::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_busy",
            e.to_string(),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// Everything of an issuance except its ledger record.
struct PreparedIssue {
    issuance: Issuance,
    keys: kf_crypto::StaticKeys,
    dgis: Vec<(u16, Vec<u8>, bool)>,
    /// The DGIs encoded back to back (the `ford_payload` data).
    payload: Vec<u8>,
    fesn: String,
    expires: OffsetDateTime,
}

fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn prepare_issue(
    state: &AppState,
    station: String,
    request: KeyPackageRequest,
) -> Result<PreparedIssue, ApiError> {
    let uid = parse_uid(&request.fob_uid, state.uid_len)?;
    check_id("reader_id", &request.reader_id)?;
    let keys = state.key.diversify(&uid).map_err(key_error)?;
    let uid_hex = hex::encode_upper(&uid);
    state
        .ledger_reader
        .lock()
        .map_err(|_| ApiError::internal("ledger lock poisoned"))?
        .check_issuable(&uid_hex, to_ms(state.clock.now()))
        .map_err(ledger_issue_error)?;
    let content = state
        .content
        .content_for(&uid)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_content", e.to_string()))?;
    let dgis = build_dgis(&keys.dek, &content);
    let mut payload = Vec::new();
    for (tag, value, _) in &dgis {
        let profile = kf_profile::FobDgi::from_tag(*tag);
        if let Some(dgi) = profile {
            dgi.check_value(value)
                .map_err(|e| ApiError::internal(format!("content does not fit the applet: {e}")))?;
        }
        let wire = Dgi {
            tag: *tag,
            data: value.clone(),
            sensitive: profile.is_some_and(kf_profile::FobDgi::is_secret),
        };
        wire.encode_into(&mut payload)
            .map_err(|e| ApiError::internal(format!("content does not fit a DGI: {e}")))?;
    }
    let transaction_id = format!("trx_{}", uuid::Uuid::new_v4().simple());
    let now = state.clock.now();
    let expires = now + state.ttl;
    Ok(PreparedIssue {
        issuance: Issuance {
            transaction_id,
            fob_uid: uid_hex,
            station,
            reader_id: request.reader_id,
            key_version: state.key_version,
            issued_at_ms: to_ms(now),
            expires_at_ms: to_ms(expires),
        },
        keys,
        dgis,
        payload,
        fesn: content.fesn.clone(),
        expires,
    })
}

impl PreparedIssue {
    fn into_response(self, state: &AppState) -> KeyPackageResponse {
        let PreparedIssue {
            issuance,
            keys,
            dgis,
            payload,
            fesn,
            expires,
        } = self;
        tracing::info!(
            transaction_id = %issuance.transaction_id,
            fob_uid = %issuance.fob_uid,
            station = %issuance.station,
            %fesn,
            "key package issued"
        );
        KeyPackageResponse {
            transaction_id: issuance.transaction_id,
            fob_uid: issuance.fob_uid,
            key_version: state.key_version,
            scp03_static_keys: StaticKeysHex {
                enc: hex::encode_upper(keys.enc.expose_secret()),
                mac: hex::encode_upper(keys.mac.expose_secret()),
                dek: hex::encode_upper(keys.dek.expose_secret()),
            },
            ford_payload: FordPayload {
                apdu_cla_ins_p1_p2: "80E20000".to_owned(),
                data_hex: hex::encode_upper(&payload),
            },
            personalization_dgis: dgis
                .iter()
                .map(|(tag, value, encrypted)| DgiJson {
                    tag: format!("{tag:04X}"),
                    data_hex: hex::encode_upper(value),
                    encrypted: *encrypted,
                })
                .collect(),
            expires_at: kf_audit::format_timestamp(expires),
        }
    }
}

fn validate_audit(core: &AuditRecordCore, uid_len: usize) -> Result<(), ApiError> {
    check_label("transaction_id", &core.transaction_id)?;
    check_id("eol_station_id", &core.eol_station_id)?;
    if let Some(reader) = &core.reader_id {
        check_id("reader_id", reader)?;
    }
    check_label("overall_result", &core.overall_result)?;
    check_label("stage_reached", &core.stage_reached)?;
    parse_uid(&core.fob_uid, uid_len)?;
    OffsetDateTime::parse(
        &core.timestamp_iso8601,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| ApiError::unprocessable("invalid_field", "timestamp_iso8601 is not RFC 3339"))?;
    if let Some(reason) = &core.failure_reason {
        if reason.len() > 4096 || reason.chars().any(char::is_control) {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "failure_reason must be at most 4096 bytes without control characters",
            ));
        }
    }
    check_identity(core)?;
    check_irk_fingerprint(core)?;
    for stage in core.stage_durations_ms.iter().flat_map(|m| m.0.keys()) {
        check_label("stage_durations_ms key", stage)?;
    }
    for (i, entry) in core.apdu_trace.iter().enumerate() {
        let bad = |what: &str| {
            ApiError::unprocessable("invalid_trace", format!("apdu_trace[{i}]: {what}"))
        };
        if entry.direction != "TX" && entry.direction != "RX" {
            return Err(bad("direction must be TX or RX"));
        }
        if hex::decode(&entry.apdu_hex).is_err() {
            return Err(bad("apdu_hex is not valid hex"));
        }
        for sw in [&entry.sw1, &entry.sw2].into_iter().flatten() {
            if sw.len() != 2 || hex::decode(sw).is_err() {
                return Err(bad("sw1/sw2 must be one hex byte"));
            }
        }
    }
    Ok(())
}

/// The CPLC identity fields, when present: `ic_serial` is hex groups joined
/// by `-` (at most 64 characters), `ic_fabrication_date` two hex bytes.
fn check_identity(core: &AuditRecordCore) -> Result<(), ApiError> {
    if let Some(serial) = &core.ic_serial {
        let groups_ok = serial
            .split('-')
            .all(|g| !g.is_empty() && g.len() % 2 == 0 && hex::decode(g).is_ok());
        if serial.len() > 64 || !groups_ok {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "ic_serial must be hex groups joined by '-', at most 64 characters",
            ));
        }
    }
    if let Some(date) = &core.ic_fabrication_date {
        if date.len() != 4 || hex::decode(date).is_err() {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "ic_fabrication_date must be two hex bytes (YDDD)",
            ));
        }
    }
    Ok(())
}

/// The IRK fingerprint, when present: 16 bytes as 32 hex digits.
fn check_irk_fingerprint(core: &AuditRecordCore) -> Result<(), ApiError> {
    if let Some(fp) = &core.irk_fingerprint {
        if fp.len() != 32 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "irk_fingerprint must be 32 hex digits (16 bytes)",
            ));
        }
    }
    Ok(())
}

/// Parses (strictly) and validates an audit record of the KLMS contract sent by `station`.
fn audit_record(state: &AppState, station: String, body: &[u8]) -> Result<AuditRecord, ApiError> {
    // Strict parse first (duplicates, unknown fields, types); the stored copy
    // is the same text as a value, re-serialized.
    let core: AuditRecordCore = parse_strict(body).map_err(invalid_json)?;
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid_json(e.to_string()))?;
    validate_audit(&core, state.uid_len)?;
    if core.eol_station_id != station {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "station_mismatch",
            "eol_station_id differs from the CN of the client certificate",
        ));
    }
    let canonical = serde_json::to_string(&value).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(AuditRecord {
        transaction_id: core.transaction_id,
        station,
        fob_uid: core.fob_uid,
        overall_result: core.overall_result,
        body: canonical,
        now_ms: to_ms(state.clock.now()),
    })
}

/// HTTP status of a ledger error while storing an audit record.
fn audit_ledger_error(e: LedgerError) -> ApiError {
    match e {
        LedgerError::ChainRefused(why) => {
            ApiError::new(StatusCode::CONFLICT, why.code(), why.to_string())
        }
        LedgerError::UnknownTransaction => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_transaction", e.to_string())
        }
        LedgerError::WrongStation => {
            ApiError::new(StatusCode::FORBIDDEN, "wrong_station", e.to_string())
        }
        LedgerError::UidMismatch => ApiError::unprocessable("uid_mismatch", e.to_string()),
        LedgerError::ConflictingAudit => {
            ApiError::new(StatusCode::CONFLICT, "conflicting_audit", e.to_string())
        }
        LedgerError::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_busy",
            e.to_string(),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

async fn audit(
    State(state): State<Arc<AppState>>,
    StationPost { station, body }: StationPost,
) -> Result<(StatusCode, Json<AuditAck>), ApiError> {
    let record = audit_record(&state, station, &body)?;
    let transaction_id = record.transaction_id.clone();
    let outcome = state
        .ledger_writer
        .submit(LedgerOp::Audit(record))
        .await
        .map_err(audit_ledger_error)?;
    let LedgerOutcome::Audit(stored) = outcome else {
        return Err(ApiError::internal("unexpected ledger outcome"));
    };
    Ok(match stored {
        AuditStored::New => (
            StatusCode::CREATED,
            Json(AuditAck {
                transaction_id,
                status: "stored",
            }),
        ),
        AuditStored::Flagged(flag) => {
            tracing::warn!(%transaction_id, flag = flag.as_str(), "SUCCESS audit stored with a flag");
            (
                StatusCode::ACCEPTED,
                Json(AuditAck {
                    transaction_id,
                    status: "flagged",
                }),
            )
        }
        AuditStored::Duplicate => (
            StatusCode::OK,
            Json(AuditAck {
                transaction_id,
                status: "duplicate",
            }),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_parsing() {
        assert_eq!(parse_uid("04112233445566778899", 10).unwrap().len(), 10);
        let refused = |text: &str| {
            let e = parse_uid(text, 10).unwrap_err();
            (e.status, e.code, e.message)
        };
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let not_hex = (
            unprocessable,
            "invalid_uid",
            "fob_uid is not valid hex".to_string(),
        );
        assert_eq!(refused("0411223344556677889"), not_hex);
        assert_eq!(refused("zz112233445566778899"), not_hex);
        assert_eq!(
            refused("041122334455667788"),
            (
                unprocessable,
                "invalid_uid",
                "fob_uid has 9 bytes, expected 10".to_string()
            )
        );
    }

    #[test]
    fn identity_fields_are_checked() {
        let with = |serial: Option<&str>, date: Option<&str>| {
            let mut body = serde_json::json!({"transaction_id":"t","fob_uid":"00",
                "timestamp_iso8601":"x","overall_result":"SUCCESS","stage_reached":"S",
                "apdu_trace":[],"eol_station_id":"s"});
            body["ic_serial"] = serial.into();
            body["ic_fabrication_date"] = date.into();
            let core: AuditRecordCore = parse_strict(body.to_string().as_bytes()).unwrap();
            check_identity(&core).is_ok()
        };
        assert!(with(None, None));
        assert!(with(Some("4790-D321-A4A5-A6A7A8A9"), Some("3123")));
        assert!(!with(Some("4790--A4A5"), None));
        assert!(!with(Some("47G0"), None));
        assert!(!with(Some(&"00".repeat(33)), None));
        assert!(!with(None, Some("312")));
        assert!(!with(None, Some("31ZZ")));
    }

    #[test]
    fn irk_fingerprint_is_checked() {
        let with = |fp: serde_json::Value| {
            let body = serde_json::json!({"transaction_id":"t","fob_uid":"00",
                "timestamp_iso8601":"x","overall_result":"SUCCESS","stage_reached":"S",
                "apdu_trace":[],"eol_station_id":"s","irk_fingerprint": fp});
            let core: AuditRecordCore = parse_strict(body.to_string().as_bytes()).unwrap();
            check_irk_fingerprint(&core).is_ok()
        };
        assert!(with(serde_json::Value::Null));
        assert!(with("00112233445566778899AABBCCDDEEFF".into()));
        assert!(!with("00112233".into()));
        assert!(!with("00112233445566778899AABBCCDDEEFG".into()));
    }

    #[test]
    fn reader_id_is_an_identifier() {
        let with = |reader: serde_json::Value| {
            let body = serde_json::json!({"transaction_id":"t","fob_uid":"04112233",
                "timestamp_iso8601":"2026-12-06T08:00:00.000Z","overall_result":"SUCCESS",
                "stage_reached":"S","apdu_trace":[],"eol_station_id":"s","reader_id": reader});
            let core: AuditRecordCore = parse_strict(body.to_string().as_bytes()).unwrap();
            validate_audit(&core, 4).map_err(|e| (e.code, e.message))
        };
        assert_eq!(with(serde_json::Value::Null), Ok(()));
        assert_eq!(with("LINE_04_READER_01".into()), Ok(()));
        assert_eq!(
            with("ACS ACR1252 PICC 0".into()),
            Err((
                "invalid_identifier",
                "reader_id: identifier has character U+0020 at position 3; allowed: A-Z a-z 0-9 . _ -"
                    .to_string()
            ))
        );
    }
}
