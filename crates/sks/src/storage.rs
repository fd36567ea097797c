//! Credential Database persistence (§2.5). A [`Storage`] holds opaque records keyed by
//! (kind, handle) and applies a batch of puts and deletes **atomically**. The engine writes
//! one batch per API call, before the call returns, so:
//! - closeProvisioningSession commits all its effects in one batch (old state or new state);
//! - PIN/PUK error counters are durable before the result is returned;
//! - open provisioning sessions survive a restart.

use crate::codec::Secret;
use crate::model::RecordId;
use std::collections::BTreeMap;
use std::path::Path;

/// A storage failure; mapped to ERROR_STORAGE by the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Injected failure (tests).
    #[error("injected storage failure")]
    Injected,
}

/// One change of a batch: `Some(bytes)` writes the record, `None` deletes it.
pub type Change<'a> = (RecordId, Option<&'a [u8]>);

/// Record store with atomic batches.
pub trait Storage {
    /// All records.
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError>;
    /// Applies every change or none.
    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError>;
}

/// In-memory storage. `fail_after` makes the n-th next `apply` fail (fault injection).
#[derive(Debug, Default)]
pub struct MemoryStorage {
    records: BTreeMap<RecordId, Secret>,
    /// When `Some(0)`, the next apply fails (and the counter is cleared); `Some(n)` counts down.
    pub fail_after: Option<u32>,
}

impl MemoryStorage {
    /// Empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
        Ok(self
            .records
            .iter()
            .map(|(k, v)| (*k, v.duplicate()))
            .collect())
    }

    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
        match self.fail_after {
            Some(0) => {
                self.fail_after = None;
                return Err(StorageError::Injected);
            }
            Some(n) => self.fail_after = Some(n - 1),
            None => {}
        }
        for (id, data) in batch {
            match data {
                Some(d) => {
                    self.records.insert(*id, Secret::from_slice(d));
                }
                None => {
                    self.records.remove(id);
                }
            }
        }
        Ok(())
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
}

impl Storage for SqliteStorage {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
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

    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
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
        tx.commit()?;
        Ok(())
    }
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
        (**self).load()
    }
    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
        (**self).apply(batch)
    }
}
