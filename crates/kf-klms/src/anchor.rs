//! Anchoring of station journals: per station, the last sequence number and
//! link the KLMS accepted, the rule that every upload extends it by exactly
//! one record, alerts for refused uploads, and signed receipts.
//!
//! ```text
//! upload (station = client CN, seq, prev_link, link[, audit record])
//!   head(station) = (s, L)  (0, 32 zero bytes before the first record)
//!   seq = s + 1 and prev_link = L          → accepted: head = (seq, link), receipt
//!   seq ≤ s and link(station, seq) = link  → the same record again: same receipt (idempotent)
//!   seq > s + 1                            → refused: chain_gap   + alert
//!   otherwise                              → refused: chain_fork  + alert (rollback, fork, replay of other content)
//! receipt = ECDSA P-256 over kf_audit::receipt::receipt_message(station, seq, link)
//! ```
//!
//! The KLMS cannot check a link (it has no journal key); it checks that the
//! station's journal only ever grows along one chain, so a journal restored
//! from an older copy, or rewritten, cannot be uploaded. An operator resets a
//! station's anchor deliberately with `kf-klms chain reset` (recorded as an alert).

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rusqlite::{params, Connection, OptionalExtension};

pub use kf_audit::receipt::{ChainHead, ChainUpload, ChainUploadAck};

use crate::ledger::{store_audit_in, AuditRecord, AuditStored, LedgerError, OperatorAction};

/// Tables of the anchor (created with the ledger).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chain_heads (
    station       TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,
    link          TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_links (
    station TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    link    TEXT NOT NULL,
    PRIMARY KEY (station, seq)
);
CREATE TABLE IF NOT EXISTS chain_alerts (
    id      INTEGER PRIMARY KEY,
    station TEXT NOT NULL,
    kind    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    detail  TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
";

pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// One record of a station's journal offered for anchoring.
#[derive(Debug, Clone)]
pub struct AnchorRequest {
    /// Client certificate CN of the uploader.
    pub station: String,
    /// The record's sequence number in the station's journal.
    pub seq: u64,
    /// The link of the record before it.
    pub prev_link: [u8; 32],
    /// The record's link.
    pub link: [u8; 32],
    /// The audit record carried by an `outcome` record.
    pub audit: Option<AuditRecord>,
    /// Receive time, Unix milliseconds.
    pub now_ms: i64,
}

/// Why an anchor upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainRefusal {
    /// The upload skips records.
    Gap {
        /// The sequence number the KLMS expects next.
        expected: u64,
    },
    /// The upload does not extend the anchored chain (rollback, fork, or a
    /// different record under an already anchored sequence number).
    Fork {
        /// The anchored head's sequence number.
        head: u64,
    },
}

impl ChainRefusal {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ChainRefusal::Gap { .. } => "chain_gap",
            ChainRefusal::Fork { .. } => "chain_fork",
        }
    }
}

impl std::fmt::Display for ChainRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainRefusal::Gap { expected } => write!(
                f,
                "journal records are missing: the KLMS expects record {expected} next"
            ),
            ChainRefusal::Fork { head } => write!(
                f,
                "the record does not extend the journal chain anchored at record {head} \
                 (journal rolled back, forked or rewritten)"
            ),
        }
    }
}

/// A station's anchored head.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainState {
    /// Station (client certificate CN).
    pub station: String,
    /// Last anchored sequence number.
    pub seq: u64,
    /// Its link, upper-case hex.
    pub link: String,
    /// Time of the last anchor, Unix milliseconds.
    pub updated_at_ms: i64,
    /// Alerts recorded for the station (refusals, resets).
    pub alerts: u64,
}

impl ChainState {
    /// A state from a row of the chain-states query of either ledger backend,
    /// read through its typed column getters: station, seq, link,
    /// updated_at_ms and alert count, in that order. A negative count (never
    /// written) reads as 0.
    pub(crate) fn from_row<E>(
        text: impl Fn(usize) -> Result<String, E>,
        int: impl Fn(usize) -> Result<i64, E>,
    ) -> Result<ChainState, E> {
        Ok(ChainState {
            station: text(0)?,
            seq: u64::try_from(int(1)?).unwrap_or(0),
            link: text(2)?,
            updated_at_ms: int(3)?,
            alerts: u64::try_from(int(4)?).unwrap_or(0),
        })
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let v = hex::decode(text).ok()?;
    v.try_into().ok()
}

/// The anchored head of `station` (`(0, zeros)` before its first record).
pub fn head(conn: &Connection, station: &str) -> Result<(u64, [u8; 32]), LedgerError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, link FROM chain_heads WHERE station = ?1")?
        .query_row(params![station], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(parse_head(row))
}

/// What the anchor rule says about an upload, given the station's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnchorStep {
    /// An already anchored number: the same record again if the stored link
    /// at `req.seq` equals `req.link` (else a fork).
    Replay,
    /// Extends the head by one record.
    Append,
}

/// The anchor rule (the table in the module documentation), the same on every backend.
pub(crate) fn anchor_step(
    head_seq: u64,
    head_link: &[u8; 32],
    req: &AnchorRequest,
) -> Result<AnchorStep, ChainRefusal> {
    if req.seq <= head_seq && req.seq > 0 {
        return Ok(AnchorStep::Replay);
    }
    if req.seq != head_seq + 1 {
        return Err(ChainRefusal::Gap {
            expected: head_seq + 1,
        });
    }
    if req.prev_link != *head_link {
        return Err(ChainRefusal::Fork { head: head_seq });
    }
    Ok(AnchorStep::Append)
}

/// Hex form of a link as stored.
pub(crate) fn link_hex(link: &[u8; 32]) -> String {
    hex::encode_upper(link)
}

/// The head stored as `(seq, link hex)`, `(0, zeros)` when absent or unreadable.
pub(crate) fn parse_head(row: Option<(i64, String)>) -> (u64, [u8; 32]) {
    match row {
        None => (0, GENESIS),
        Some((seq, link)) => (
            u64::try_from(seq).unwrap_or(0),
            hex32(&link).unwrap_or(GENESIS),
        ),
    }
}

/// A record sent again at an anchored sequence number: the same link as
/// stored is a duplicate, another one a fork of the chain at `head`.
pub(crate) fn replay_outcome(
    stored_link: Option<&str>,
    link_hex: &str,
    head: u64,
) -> Result<AuditStored, LedgerError> {
    if stored_link == Some(link_hex) {
        Ok(AuditStored::Duplicate)
    } else {
        Err(LedgerError::ChainRefused(ChainRefusal::Fork { head }))
    }
}

/// Applies the anchor rule inside the caller's transaction.
pub(crate) fn anchor_in(
    conn: &Connection,
    req: &AnchorRequest,
) -> Result<AuditStored, LedgerError> {
    let (seq, link) = head(conn, &req.station)?;
    let link_hex = link_hex(&req.link);
    let step = anchor_step(seq, &link, req).map_err(LedgerError::ChainRefused)?;
    if step == AnchorStep::Replay {
        let stored: Option<String> = conn
            .prepare_cached("SELECT link FROM chain_links WHERE station = ?1 AND seq = ?2")?
            .query_row(params![req.station, req.seq as i64], |r| r.get(0))
            .optional()?;
        return replay_outcome(stored.as_deref(), &link_hex, seq);
    }
    let stored = match &req.audit {
        Some(a) => store_audit_in(conn, a)?,
        None => AuditStored::New,
    };
    conn.prepare_cached("INSERT INTO chain_links (station, seq, link) VALUES (?1, ?2, ?3)")?
        .execute(params![req.station, req.seq as i64, link_hex])?;
    conn.prepare_cached(
        "INSERT INTO chain_heads (station, seq, link, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(station) DO UPDATE SET seq = ?2, link = ?3, updated_at_ms = ?4",
    )?
    .execute(params![req.station, req.seq as i64, link_hex, req.now_ms])?;
    Ok(stored)
}

/// An anchor alert (a refused upload or an operator reset), as every
/// backend logs and records it.
pub(crate) struct Alert<'a> {
    pub station: &'a str,
    pub kind: &'static str,
    pub seq: u64,
    pub detail: String,
    pub now_ms: i64,
}

impl<'a> Alert<'a> {
    /// The alert of the upload `req`, refused for `why`.
    pub(crate) fn refused(req: &'a AnchorRequest, why: &ChainRefusal) -> Self {
        Alert {
            station: &req.station,
            kind: why.code(),
            seq: req.seq,
            detail: why.to_string(),
            now_ms: req.now_ms,
        }
    }

    /// The alert of an operator reset that dropped head `seq` (`detail`
    /// from [`reset_detail`]).
    pub(crate) fn reset(station: &'a str, seq: u64, detail: String, now_ms: i64) -> Self {
        Alert {
            station,
            kind: "reset",
            seq,
            detail,
            now_ms,
        }
    }

    /// Logs the alert (every backend, before recording it).
    pub(crate) fn log(&self) {
        tracing::warn!(
            station = %self.station,
            kind = self.kind,
            seq = self.seq,
            detail = self.detail.as_str(),
            "journal anchor alert"
        );
    }
}

/// Logs and records an alert.
pub(crate) fn record_alert(conn: &Connection, alert: &Alert<'_>) -> Result<(), LedgerError> {
    alert.log();
    conn.prepare_cached(
        "INSERT INTO chain_alerts (station, kind, seq, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        alert.station,
        alert.kind,
        alert.seq as i64,
        alert.detail,
        alert.now_ms
    ])?;
    Ok(())
}

/// Detail text of an operator reset alert; `Err` without a reason.
pub(crate) fn reset_detail(action: &OperatorAction<'_>) -> Result<String, LedgerError> {
    action.check_reason()?;
    Ok(format!(
        "anchor reset by {}: {}",
        action.operator, action.reason
    ))
}

/// Every station's anchored head with its alert count.
pub fn chain_states(conn: &Connection) -> Result<Vec<ChainState>, LedgerError> {
    let mut stmt = conn.prepare(
        "SELECT s.station, COALESCE(h.seq, 0), COALESCE(h.link, ?1), COALESCE(h.updated_at_ms, 0),
                (SELECT COUNT(*) FROM chain_alerts a WHERE a.station = s.station)
         FROM (SELECT station FROM chain_heads UNION SELECT station FROM chain_alerts) s
         LEFT JOIN chain_heads h ON h.station = s.station ORDER BY s.station",
    )?;
    let rows = stmt.query_map(params![hex::encode_upper(GENESIS)], |r| {
        ChainState::from_row(|i| r.get(i), |i| r.get(i))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Operator reset of a station's anchor: the next upload starts at record 1.
pub(crate) fn reset_in(
    conn: &Connection,
    station: &str,
    action: &OperatorAction<'_>,
) -> Result<u64, LedgerError> {
    let detail = reset_detail(action)?;
    let (seq, _) = head(conn, station)?;
    conn.execute(
        "DELETE FROM chain_links WHERE station = ?1",
        params![station],
    )?;
    conn.execute(
        "DELETE FROM chain_heads WHERE station = ?1",
        params![station],
    )?;
    record_alert(conn, &Alert::reset(station, seq, detail, action.now_ms))?;
    Ok(seq)
}

/// Signs receipts with the KLMS receipt key.
///
/// The key is derived from the KLMS master key through its key backend (a
/// PRF over the label `kf-klms/receipt-key/v1` and a counter, the first
/// output below the curve order, see [`crate::keystore::KeyBackend::receipt_seed`]), so it needs no extra secret file and is stable across restarts;
/// the public key is published with `kf-klms receipt-key`.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptSigner(..)")
    }
}

impl ReceiptSigner {
    /// Derives the receipt key from a master key held in memory.
    pub fn derive(master: &kf_crypto::AesKey) -> Result<ReceiptSigner, LedgerError> {
        Self::from_backend(&crate::keystore::FileKey::new(master.duplicate()))
    }

    /// Derives the receipt key through the master key's backend: the first
    /// of the backend's receipt seeds (counter 0, 1, ..) below the curve order.
    pub fn from_backend(
        backend: &dyn crate::keystore::KeyBackend,
    ) -> Result<ReceiptSigner, LedgerError> {
        for counter in 0u32..16 {
            let bytes = backend
                .receipt_seed(counter)
                .map_err(|e| LedgerError::Receipt(format!("receipt key derivation: {e}")))?;
            if let Ok(key) = SigningKey::from_slice(&bytes[..]) {
                return Ok(ReceiptSigner { key });
            }
        }
        Err(LedgerError::Receipt("receipt key derivation failed".into()))
    }

    /// The receipt for `(station, seq, link)`.
    pub fn sign(&self, station: &str, seq: u64, link: &[u8; 32]) -> kf_audit::receipt::Receipt {
        let message = kf_audit::receipt::receipt_message(station, seq, link);
        let signature: Signature = self.key.sign(&message);
        kf_audit::receipt::Receipt {
            station_id: station.to_owned(),
            seq,
            link: hex::encode_upper(link),
            signature: hex::encode_upper(signature.to_bytes()),
        }
    }

    /// The public key, SubjectPublicKeyInfo PEM.
    pub fn public_key_pem(&self) -> Result<String, LedgerError> {
        use p256::pkcs8::EncodePublicKey;
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| LedgerError::Receipt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_under_the_published_key_only() {
        let master = kf_crypto::AesKey::from_slice(&[7; 16]).unwrap();
        let signer = ReceiptSigner::derive(&master).unwrap();
        let again = ReceiptSigner::derive(&master).unwrap();
        let key = kf_audit::receipt::klms_key_from_pem(&again.public_key_pem().unwrap()).unwrap();
        let receipt = signer.sign("S1", 5, &[9; 32]);
        assert!(receipt.verify(&key));
        assert!(receipt.covers(5, &[9; 32]));
        let mut forged = receipt.clone();
        forged.seq = 6;
        assert!(!forged.verify(&key));
        let other =
            ReceiptSigner::derive(&kf_crypto::AesKey::from_slice(&[8; 16]).unwrap()).unwrap();
        let other_key =
            kf_audit::receipt::klms_key_from_pem(&other.public_key_pem().unwrap()).unwrap();
        assert!(!receipt.verify(&other_key));
    }
}
