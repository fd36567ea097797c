//! The journal anchor ([`crate::anchor`]) inside the ledger's transactions:
//! the SQLite tables and statements, and the outcomes both backends share
//! (a replayed record, an operator reset's alert text).

use rusqlite::{params, Connection, OptionalExtension};

use super::{store_audit_in, AnchorRequest, AuditStored, LedgerError, OperatorAction};
use crate::anchor::{
    anchor_step, link_hex, parse_head, reset_seq, Alert, AnchorStep, ChainRefusal, ChainState,
    GENESIS,
};

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

/// The anchored head of `station` (`(0, zeros)` before its first record).
pub fn head(conn: &Connection, station: &str) -> Result<(u64, [u8; 32]), LedgerError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, link FROM chain_heads WHERE station = ?1")?
        .query_row(params![station], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    parse_head(row).map_err(LedgerError::ChainRefused)
}

/// A record sent again at an anchored sequence number: the same link as
/// stored is a duplicate, another one a fork of the chain at `head`.
pub(super) fn replay_outcome(
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
    let step =
        anchor_step(seq, &link, req.seq, &req.prev_link).map_err(LedgerError::ChainRefused)?;
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
pub(super) fn reset_detail(action: &OperatorAction<'_>) -> Result<String, LedgerError> {
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
    let stored: Option<i64> = conn
        .prepare_cached("SELECT seq FROM chain_heads WHERE station = ?1")?
        .query_row(params![station], |r| r.get(0))
        .optional()?;
    let seq = reset_seq(stored);
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
