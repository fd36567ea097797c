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
//!
//! This module is the rule alone, without storage: each ledger backend
//! applies it in its own transaction, and it depends on no ledger.

pub use kf_audit::receipt::{ChainHead, ChainUpload, ChainUploadAck};

pub(crate) const GENESIS: [u8; 32] = [0; 32];

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
    /// The stored head is one no anchor write produces (a negative sequence
    /// number, a link that is not 32 bytes of hex): the ledger was edited or
    /// damaged. Anchoring that station stops, rather than starting its chain
    /// again from the genesis link, until an operator resets the chain.
    CorruptHead {
        /// What is wrong with the stored head.
        reason: &'static str,
    },
}

impl ChainRefusal {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ChainRefusal::Gap { .. } => "chain_gap",
            ChainRefusal::Fork { .. } => "chain_fork",
            ChainRefusal::CorruptHead { .. } => "chain_head_corrupt",
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
            ChainRefusal::CorruptHead { reason } => write!(
                f,
                "the KLMS's stored chain head for this station is corrupt ({reason}); \
                 anchoring stops until the KLMS operator runs `kf-klms chain reset`"
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

/// What the anchor rule says about an upload, given the station's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnchorStep {
    /// An already anchored number: the same record again if the stored link
    /// at `req.seq` equals `req.link` (else a fork).
    Replay,
    /// Extends the head by one record.
    Append,
}

/// The anchor rule (the table in the module documentation) for record `seq`
/// linked to `prev_link`, the same on every backend.
pub(crate) fn anchor_step(
    head_seq: u64,
    head_link: &[u8; 32],
    seq: u64,
    prev_link: &[u8; 32],
) -> Result<AnchorStep, ChainRefusal> {
    if seq <= head_seq && seq > 0 {
        return Ok(AnchorStep::Replay);
    }
    if seq != head_seq + 1 {
        return Err(ChainRefusal::Gap {
            expected: head_seq + 1,
        });
    }
    if prev_link != head_link {
        return Err(ChainRefusal::Fork { head: head_seq });
    }
    Ok(AnchorStep::Append)
}

/// Hex form of a link as stored.
pub(crate) fn link_hex(link: &[u8; 32]) -> String {
    hex::encode_upper(link)
}

/// The sequence number a reset reports for the head it clears: the stored one, or 0 when
/// there is none or it is corrupt (a reset is how an operator clears a corrupt head).
pub(crate) fn reset_seq(stored: Option<i64>) -> u64 {
    stored.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

/// The head stored as `(seq, link hex)`; `(0, zeros)` when absent.
pub(crate) fn parse_head(row: Option<(i64, String)>) -> Result<(u64, [u8; 32]), ChainRefusal> {
    let corrupt = |reason| ChainRefusal::CorruptHead { reason };
    match row {
        None => Ok((0, GENESIS)),
        Some((seq, link)) => Ok((
            u64::try_from(seq).map_err(|_| corrupt("negative sequence number"))?,
            hex32(&link).ok_or(corrupt("link is not 32 bytes of hex"))?,
        )),
    }
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
    /// The alert of record `seq` of `station`, refused for `why`.
    pub(crate) fn refused(station: &'a str, seq: u64, why: &ChainRefusal, now_ms: i64) -> Self {
        Alert {
            station,
            kind: why.code(),
            seq,
            detail: why.to_string(),
            now_ms,
        }
    }

    /// The alert of an operator reset that dropped head `seq` (`detail`
    /// from the operator's action).
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
