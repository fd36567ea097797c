//! # sks-sqlite — the SQLite credential database of the software SKS
//!
//! ```text
//!  sks_core::Sks ── Storage::apply(one batch per API call) ──▶ SqliteStorage ──▶ one transaction
//!               ◀── Storage::load() (at open) ───────────────  records(kind, handle, data)
//! ```
//!
//! Records are opaque to this crate: it stores what the engine hands it, each sealed with
//! AES-256-GCM under a [`StorageKey`] kept outside the database (a 0600 key file, by default the
//! database path with `.key` appended), so a copied database alone reveals no key or PIN. The
//! record's (kind, handle) is authenticated with it, so records cannot be swapped. The database
//! file is created 0600 (SQLite gives its `-wal`/`-shm`/`-journal` side files the same mode),
//! and `secure_delete` overwrites deleted content.
//!
//! It depends on `sks-core` for the [`Storage`] trait only and must not depend on the issuer or
//! the CLI.

use sks_core::model::RecordId;
use sks_core::secret::Secret;
use sks_core::storage::{Change, Durability, Storage, StorageError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

fn sqlite(e: rusqlite::Error) -> StorageError {
    StorageError::Backend {
        backend: "sqlite",
        source: Box::new(e),
    }
}

/// Failures of the storage key and of sealed records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key file is unusable.
    #[error("storage key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record does not open under the storage key (wrong key, or tampered).
    #[error("record ({kind}, {handle}) does not open under the storage key")]
    Open {
        /// Record kind.
        kind: u8,
        /// Record handle.
        handle: u32,
    },
    /// Sealing or drawing a nonce failed.
    #[error("sealing failed")]
    Seal,
}

fn key_file(path: &Path, reason: impl std::fmt::Display) -> SealError {
    SealError::KeyFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn sealing(e: SealError) -> StorageError {
    StorageError::Backend {
        backend: "sealing",
        source: Box::new(e),
    }
}

/// Format version of a sealed record: `[1][nonce 12][ciphertext][tag 16]`.
const SEALED_V1: u8 = 1;

/// The AES-256-GCM key sealing every record.
pub struct StorageKey(ring::aead::LessSafeKey);

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

impl StorageKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, bytes)
            .map(|k| Self(ring::aead::LessSafeKey::new(k)))
            .map_err(|_| SealError::Seal)
    }

    /// The default key file of a database: its path with `.key` appended.
    pub fn default_path(db: &Path) -> PathBuf {
        let mut p = db.as_os_str().to_owned();
        p.push(".key");
        PathBuf::from(p)
    }

    /// Reads a key file (64 hex digits; a regular file of mode 0600 on Unix), creating it with
    /// a fresh random key if it does not exist ([`kf_secret_file::write_new`]: owner-only from
    /// the creating call, linked into place without replacing a file that appeared meanwhile).
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        if std::fs::symlink_metadata(path).is_err() {
            let text = sks_core::crypto::random_hex_line(32).map_err(|e| key_file(path, e))?;
            kf_secret_file::write_new(path, text.expose())
                .map_err(|e| key_file(path, format!("cannot create: {e}")))?;
        }
        Self::load(path)
    }

    /// Reads a key file (see [`StorageKey::load_or_create`]): a regular file, not a link, of at
    /// most 256 bytes, that only its owner can read.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = kf_files::read_regular(path, 256, kf_files::Links::Refuse)
            .map(Secret::new)
            .map_err(|e| key_file(path, e.kind()))?;
        match kf_secret_file::check_owner_only(path) {
            Ok(true) => {}
            Ok(false) => {
                return Err(key_file(
                    path,
                    "its mode gives other users access; it must be 0600",
                ))
            }
            Err(e) => return Err(key_file(path, e)),
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.expose().trim_ascii(), key.as_mut())
            .map_err(|_| key_file(path, "not 64 hex digits"))?;
        Self::from_bytes(&key)
    }

    fn aad(kind: u8, handle: u32) -> [u8; 15] {
        let mut aad = *b"sks-record\0\0\0\0\0";
        aad[10] = kind;
        aad[11..].copy_from_slice(&handle.to_be_bytes());
        aad
    }

    fn seal(&self, (kind, handle): RecordId, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; 12];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal)?;
        // Room for the tag up front: the buffer holding the plaintext is never reallocated,
        // and sealing overwrites it in place.
        let mut body = Vec::with_capacity(plain.len() + 16);
        body.extend_from_slice(plain);
        self.0
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(Self::aad(kind, handle)),
                &mut body,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(13 + body.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, (kind, handle): RecordId, sealed: &[u8]) -> Result<Secret, SealError> {
        let fail = SealError::Open { kind, handle };
        let (Some(&SEALED_V1), Some(nonce), Some(body)) =
            (sealed.first(), sealed.get(1..13), sealed.get(13..))
        else {
            return Err(fail);
        };
        let nonce =
            ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Seal)?;
        let mut work = Zeroizing::new(body.to_vec());
        let plain = self
            .0
            .open_in_place(
                nonce,
                ring::aead::Aad::from(Self::aad(kind, handle)),
                &mut work,
            )
            .map_err(|_| SealError::Open { kind, handle })?;
        Ok(Secret::from_slice(plain))
    }
}

/// Creates the database file 0600 (or tightens an existing one to 0600) before SQLite opens
/// it; SQLite creates its side files with the database file's mode.
#[cfg(unix)]
fn prepare_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn prepare_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// SQLite storage; each batch is one transaction in WAL mode, committed with
/// `synchronous=FULL` ([`Durability::Synced`]: the WAL is synced before the commit returns) or
/// `synchronous=NORMAL` ([`Durability::Ordered`]: written to the WAL, synced by the next FULL
/// commit or checkpoint; the WAL is append-only and checksummed frame by frame, so a power loss
/// keeps a prefix of the commits and never a later one without an earlier).
///
/// The connection holds an exclusive lock for its lifetime, so a second process cannot open
/// the same database and silently diverge from the first (serve it with `sks serve` instead).
pub struct SqliteStorage {
    conn: rusqlite::Connection,
    key: StorageKey,
    hook: Option<StatementHook>,
    /// The connection's current `synchronous` setting.
    durability: Durability,
}

/// Called inside a batch's transaction before each statement with its index (0-based): the
/// writes are `0..n`, index `n` comes after every write and before the COMMIT, and index
/// `n + 1` is the COMMIT itself. An error at an index up to `n` aborts the batch there: the
/// transaction rolls back and `apply` returns that error. An error at `n + 1` makes SQLite's
/// COMMIT fail (its commit hook turns the COMMIT into a rollback, as a full disk or an I/O
/// error at commit time would) and `apply` returns SQLite's error. Used to check that a
/// failure at any point of a write leaves the previous state (crash atomicity).
pub type StatementHook = Box<dyn FnMut(usize) -> Result<(), StorageError> + Send>;

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStorage")
    }
}

impl SqliteStorage {
    /// Opens or creates the database file, sealed under the key file next to it
    /// ([`StorageKey::default_path`], created if missing).
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let key = StorageKey::load_or_create(&StorageKey::default_path(path)).map_err(sealing)?;
        Self::open_with_key(path, key)
    }

    /// Opens or creates the database file, sealed under `key`.
    pub fn open_with_key(path: &Path, key: StorageKey) -> Result<Self, StorageError> {
        prepare_file(path).map_err(|e| StorageError::Backend {
            backend: "sqlite",
            source: Box::new(e),
        })?;
        let conn = Self::open_inner(path).map_err(sqlite)?;
        Ok(Self {
            conn,
            key,
            hook: None,
            durability: Durability::Synced,
        })
    }

    /// Installs (or with `None` removes) the [`StatementHook`].
    pub fn set_statement_hook(&mut self, hook: Option<StatementHook>) {
        self.hook = hook;
    }

    fn open_inner(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A header write takes the exclusive lock now rather than at the first batch.
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                kind INTEGER NOT NULL,
                handle INTEGER NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (kind, handle)
            );",
        )?;
        Ok(conn)
    }

    fn load_inner(&mut self) -> Result<BTreeMap<RecordId, Secret>, rusqlite::Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, handle, data FROM records")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                (row.get::<_, u8>(0)?, row.get::<_, u32>(1)?),
                Secret::new(row.get(2)?),
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, data) = row?;
            out.insert(id, data);
        }
        Ok(out)
    }

    fn apply_inner(
        &mut self,
        batch: &[Change<'_>],
        durability: Durability,
    ) -> Result<(), StorageError> {
        if durability != self.durability {
            let level = match durability {
                Durability::Synced => "FULL",
                Durability::Ordered => "NORMAL",
            };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(sqlite)?;
            self.durability = durability;
        }
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut hook = |i: usize| self.hook.as_mut().map_or(Ok(()), |h| h(i));
        for (i, ((kind, handle), data)) in batch.iter().enumerate() {
            hook(i)?;
            match data {
                Some(d) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO records (kind, handle, data) VALUES (?1, ?2, ?3)",
                        rusqlite::params![kind, handle, d],
                    )
                    .map_err(sqlite)?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM records WHERE kind = ?1 AND handle = ?2",
                        rusqlite::params![kind, handle],
                    )
                    .map_err(sqlite)?;
                }
            }
        }
        hook(batch.len())?;
        let fail_commit = hook(batch.len() + 1).is_err();
        if !fail_commit {
            return tx.commit().map_err(sqlite);
        }
        tx.commit_hook(Some(|| true));
        let committed = tx.commit();
        self.conn.commit_hook(None::<fn() -> bool>);
        match committed {
            Ok(()) => Err(StorageError::Injected),
            Err(e) => Err(sqlite(e)),
        }
    }
}

impl Storage for SqliteStorage {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
        let sealed = self.load_inner().map_err(sqlite)?;
        sealed
            .into_iter()
            .map(|(id, data)| Ok((id, self.key.open(id, data.expose()).map_err(sealing)?)))
            .collect()
    }

    fn apply_with(
        &mut self,
        batch: &[Change<'_>],
        durability: Durability,
    ) -> Result<(), StorageError> {
        let mut sealed = Vec::with_capacity(batch.len());
        for (id, data) in batch {
            let data = match data {
                Some(d) => Some(self.key.seal(*id, d).map_err(sealing)?),
                None => None,
            };
            sealed.push((*id, data));
        }
        let changes: Vec<Change<'_>> = sealed.iter().map(|(id, d)| (*id, d.as_deref())).collect();
        self.apply_inner(&changes, durability)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn synchronous(s: &SqliteStorage) -> i64 {
        s.conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn each_batch_commits_with_the_synchronous_level_of_its_durability() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(&dir.path().join("sks.db")).unwrap();
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        assert_eq!(synchronous(&s), FULL);
        let mut seen = Vec::new();
        s.apply_with(&[((1, 1), Some(b"a"))], Durability::Ordered)
            .unwrap();
        seen.push(synchronous(&s));
        s.apply_with(&[((1, 2), Some(b"b"))], Durability::Ordered)
            .unwrap();
        seen.push(synchronous(&s));
        s.apply(&[((1, 1), None)]).unwrap();
        seen.push(synchronous(&s));
        assert_eq!(seen, vec![NORMAL, NORMAL, FULL]);
        drop(s);
        let mut s = SqliteStorage::open(&dir.path().join("sks.db")).unwrap();
        let records = s.load().unwrap();
        assert_eq!(records.keys().copied().collect::<Vec<_>>(), vec![(1, 2)]);
        assert_eq!(records[&(1, 2)].expose(), b"b");
    }
}
