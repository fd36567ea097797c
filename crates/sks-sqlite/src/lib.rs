//! # sks-sqlite — the SQLite credential database of the software SKS
//!
//! ```text
//!  sks_core::Sks ── Storage::apply(one batch per API call) ──▶ SqliteStorage ──▶ one transaction
//!               ◀── Storage::load() (at open) ───────────────  records(kind, handle, data)
//! ```
//!
//! Records are opaque to this crate: it stores what the engine hands it. It depends on
//! `sks-core` for the [`Storage`] trait only and must not depend on the issuer or the CLI.

use sks_core::model::RecordId;
use sks_core::secret::Secret;
use sks_core::storage::{Change, Storage, StorageError};
use std::collections::BTreeMap;
use std::path::Path;

fn sqlite(e: rusqlite::Error) -> StorageError {
    StorageError::Backend {
        backend: "sqlite",
        source: Box::new(e),
    }
}

/// SQLite storage (WAL, `synchronous=FULL`); each batch is one transaction.
///
/// The connection holds an exclusive lock for its lifetime, so a second process cannot open
/// the same database and silently diverge from the first (use `sks --connect` instead).
pub struct SqliteStorage {
    conn: rusqlite::Connection,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStorage")
    }
}

impl SqliteStorage {
    /// Opens or creates the database file.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_inner(path).map_err(sqlite)
    }

    fn open_inner(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = rusqlite::Connection::open(path)?;
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
        Ok(Self { conn })
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

    fn apply_inner(&mut self, batch: &[Change<'_>]) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        for ((kind, handle), data) in batch {
            match data {
                Some(d) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO records (kind, handle, data) VALUES (?1, ?2, ?3)",
                        rusqlite::params![kind, handle, d],
                    )?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM records WHERE kind = ?1 AND handle = ?2",
                        rusqlite::params![kind, handle],
                    )?;
                }
            }
        }
        tx.commit()
    }
}

impl Storage for SqliteStorage {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
        self.load_inner().map_err(sqlite)
    }

    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
        self.apply_inner(batch).map_err(sqlite)
    }
}
