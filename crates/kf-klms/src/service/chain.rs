//! `POST /v1/audit/chain` (anchor one journal record, store its audit record,
//! answer a signed receipt) and `GET /v1/audit/chain/head` (the caller's
//! anchored head). The rule is in [`crate::anchor`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::{
    audit_ledger_error, audit_record, authorize, to_ms, ApiError, AppState, StationIdentity,
    StationPost,
};
use crate::anchor::{ChainHead, ChainUpload, ChainUploadAck};
use crate::ledger::AnchorRequest;
use crate::ledger::{AuditStored, LedgerOp, LedgerOutcome};

fn link(field: &str, text: &str) -> Result<[u8; 32], ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| {
            ApiError::unprocessable("invalid_link", format!("{field} must be 64 hex digits"))
        })
}

pub(super) async fn upload(
    State(state): State<Arc<AppState>>,
    StationPost { station, body }: StationPost,
) -> Result<(StatusCode, Json<ChainUploadAck>), ApiError> {
    let request: ChainUpload = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    if request.seq == 0 || request.seq > i64::MAX as u64 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "seq must be at least 1",
        ));
    }
    let prev_link = link("prev_link", &request.prev_link)?;
    let this_link = link("link", &request.link)?;
    let audit = match (request.kind.as_str(), request.record) {
        ("started", None) => None,
        ("outcome", Some(record)) => Some(audit_record(
            &state,
            station.clone(),
            &serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?,
        )?),
        ("started", Some(_)) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "a started record carries no audit record",
            ))
        }
        ("outcome", None) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "an outcome record needs its audit record",
            ))
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "kind must be started or outcome",
            ))
        }
    };
    let outcome = state
        .ledger_writer
        .submit(LedgerOp::Anchor(AnchorRequest {
            station: station.clone(),
            seq: request.seq,
            prev_link,
            link: this_link,
            audit,
            now_ms: to_ms(state.clock.now()),
        }))
        .await
        .map_err(audit_ledger_error)?;
    let LedgerOutcome::Anchored(stored) = outcome else {
        return Err(ApiError::internal("unexpected ledger outcome"));
    };
    let receipt = state.receipts.sign(&station, request.seq, &this_link);
    let (status, word) = match stored {
        AuditStored::New => (StatusCode::CREATED, "stored"),
        AuditStored::Duplicate => (StatusCode::OK, "duplicate"),
        AuditStored::Flagged(flag) => {
            tracing::warn!(%station, seq = request.seq, flag = flag.as_str(), "SUCCESS audit anchored with a flag");
            (StatusCode::ACCEPTED, "flagged")
        }
    };
    Ok((
        status,
        Json(ChainUploadAck {
            status: word.to_owned(),
            receipt,
        }),
    ))
}

pub(super) async fn head(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<StationIdentity>,
) -> Result<Json<ChainHead>, ApiError> {
    let station = authorize(&state, &identity)?;
    let (seq, link) = state
        .ledger_reader
        .lock()
        .map_err(|_| ApiError::internal("ledger lock poisoned"))?
        .chain_head(&station)
        .map_err(audit_ledger_error)?;
    Ok(Json(ChainHead {
        station_id: station,
        seq,
        link: hex::encode_upper(link),
    }))
}
