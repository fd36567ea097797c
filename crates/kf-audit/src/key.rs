//! The station's journal key.
//!
//! 32 random bytes kept in a file beside the journal (`<journal>.key` unless
//! configured otherwise) as 64 hex digits and a newline. The file is created
//! owner-only ([`kf_secret_file`]: mode 0600, or a protected owner /
//! Administrators / SYSTEM ACL on Windows) under a temporary name, synced and
//! then linked to its final name without replacing an existing file, so a key
//! file is either complete or absent and is never overwritten. The key is never written into the
//! journal; the journal holds only a key check value ([`crate::record::key_check`]).
//!
//! Anyone who can read the key can rewrite the journal undetectably on this
//! machine: the key protects against edits by someone with the journal file
//! (a copy, a SQLite shell on a shared account) but not against someone with
//! the station's own file permissions. The KLMS anchor covers that case.

use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use crate::AuditError;

/// Largest key file accepted (64 hex digits and line endings).
const MAX_KEY_FILE: u64 = 256;

/// A journal MAC key (zeroized on drop, never printed).
pub struct JournalKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalKey(..)")
    }
}

impl JournalKey {
    /// A key from raw bytes (tests and golden vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> JournalKey {
        JournalKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The raw key, for the MAC.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The default key file of a journal: the journal's path with `.key` appended.
    pub fn default_path(journal: &Path) -> PathBuf {
        let mut name = journal.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<JournalKey, AuditError> {
        let bad = |why: &str| AuditError::Key {
            path: path.to_owned(),
            reason: why.to_owned(),
        };
        let mut text = Zeroizing::new(
            kf_files::read_regular(path, MAX_KEY_FILE, kf_files::Links::Follow)
                .map_err(|e| bad(&e.kind().to_string()))?,
        );
        let trimmed = text.trim_ascii();
        let mut bytes = Zeroizing::new([0u8; 32]);
        let decoded = trimmed.len() == 64 && hex::decode_to_slice(trimmed, &mut bytes[..]).is_ok();
        text.zeroize();
        if !decoded {
            return Err(bad("expected 64 hex digits"));
        }
        Ok(JournalKey { bytes })
    }

    /// Creates a new random key file at `path` (0600, atomic, never
    /// replacing an existing file) and returns the key.
    pub fn create(path: &Path) -> Result<JournalKey, AuditError> {
        let err = |e: &dyn std::fmt::Display| AuditError::Key {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut bytes[..]).map_err(|e| err(&e))?;
        let mut text = Zeroizing::new(hex::encode_upper(&bytes[..]));
        text.push('\n');
        kf_secret_file::write_new(path, text.as_bytes()).map_err(|e| err(&e))?;
        Ok(JournalKey { bytes })
    }
}
