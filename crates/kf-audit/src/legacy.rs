//! Format-1 journals (the earlier release): an unkeyed SHA-256 chain.
//!
//! Such a journal is never opened for writing by this release and never
//! migrated in place. [`verify_legacy`] re-checks its old chain read-only,
//! so it can be kept as evidence next to a new format-2 journal. An unkeyed
//! chain only shows accidental damage: anyone can recompute it.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::AuditError;

const CANONICAL_TAG: &[u8] = b"kf-audit/record/v1\0";

/// Result of [`verify_legacy`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LegacyReport {
    /// Records checked.
    pub records: u64,
    /// First record whose hash, previous hash or sequence number is wrong.
    pub first_broken: Option<i64>,
}

fn text(row: &rusqlite::Row<'_>, i: usize) -> Option<String> {
    row.get::<_, String>(i).ok()
}

/// Checks a format-1 journal's hash chain, opening it read-only.
pub fn verify_legacy(path: &Path) -> Result<LegacyReport, AuditError> {
    if !path.is_file() {
        return Err(AuditError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no audit journal at {}", path.display()),
        )));
    }
    let conn = crate::verify::open_read_only(path)?;
    match crate::journal::classify(&conn) {
        Err(AuditError::LegacyJournal) => {}
        Ok(()) => {
            return Err(AuditError::NotAJournal(
                "this is a format-2 journal; use verify without --legacy".into(),
            ))
        }
        Err(e) => return Err(e),
    }
    let mut stmt = conn.prepare(
        "SELECT seq, timestamp, transaction_id, kind, body, prev_hash, hash FROM records ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = [0u8; 32];
    let mut expected = 1i64;
    let mut records = 0u64;
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0).unwrap_or(-1);
        let fields: Option<Vec<String>> = (1..=6).map(|i| text(row, i)).collect();
        let ok = seq == expected
            && fields.as_ref().is_some_and(|f| {
                let mut canonical = Vec::with_capacity(64 + f[3].len());
                canonical.extend_from_slice(CANONICAL_TAG);
                canonical.extend_from_slice(&seq.to_be_bytes());
                for field in &f[0..4] {
                    canonical.extend_from_slice(&(field.len() as u32).to_be_bytes());
                    canonical.extend_from_slice(field.as_bytes());
                }
                let mut h = Sha256::new();
                h.update(prev);
                h.update(&canonical);
                let hash: [u8; 32] = h.finalize().into();
                let matches = hex::decode(&f[4]).ok().as_deref() == Some(&prev[..])
                    && hex::decode(&f[5]).ok().as_deref() == Some(&hash[..]);
                if matches {
                    prev = hash;
                }
                matches
            });
        if !ok {
            return Ok(LegacyReport {
                records,
                first_broken: Some(expected),
            });
        }
        records += 1;
        expected += 1;
    }
    Ok(LegacyReport {
        records,
        first_broken: None,
    })
}
