//! Credential Database persistence (§2.5). A [`Storage`] holds opaque records keyed by
//! (kind, handle) and applies a batch of puts and deletes **atomically**. The engine writes
//! one batch per API call, before the call returns, so:
//! - closeProvisioningSession commits all its effects in one batch (old state or new state);
//! - PIN/PUK error counters are durable before the result is returned;
//! - open provisioning sessions survive a restart.
//!
//! How far "durable" reaches is the call's [`Durability`]: every batch survives a crash of the
//! process; batches that change user-visible state (closeProvisioningSession, PIN/PUK error
//! counters, every User API write, abort, signProvisioningSessionData's key-use counter) also
//! survive a power loss before the call returns. The intermediate steps of an open provisioning
//! session are written [`Durability::Ordered`]: a power loss may take back the last of them,
//! never a later one without the earlier, and never past a synced batch. The issuer then sees
//! its session fail at the next call and starts a new one, which it must be ready for anyway
//! (an open session can also be aborted by its timeout).

use crate::model::RecordId;
use crate::secret::Secret;
use std::collections::BTreeMap;

/// A storage failure; mapped to ERROR_STORAGE by the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend failed (`backend` names it, e.g. `sqlite`).
    #[error("{backend}: {source}")]
    Backend {
        /// Short backend name.
        backend: &'static str,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Injected failure (tests).
    #[error("injected storage failure")]
    Injected,
}

/// One change of a batch: `Some(bytes)` writes the record, `None` deletes it.
pub type Change<'a> = (RecordId, Option<&'a [u8]>);

/// How far a batch must have reached when [`Storage::apply_with`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On stable storage: survives a power loss.
    Synced,
    /// Survives a crash of the process; after a power loss it is there if any later
    /// [`Durability::Synced`] batch is, and batches are never kept out of order.
    Ordered,
}

/// Record store with atomic batches. An implementation provides [`Storage::apply_with`];
/// [`Storage::apply`] is that at [`Durability::Synced`].
pub trait Storage {
    /// All records.
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError>;
    /// Applies every change or none, [`Durability::Synced`].
    fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
        self.apply_with(batch, Durability::Synced)
    }
    /// Applies every change or none, at least as durably as `durability` asks. A store that
    /// cannot tell the two apart (memory, wrappers) syncs every batch.
    fn apply_with(
        &mut self,
        batch: &[Change<'_>],
        durability: Durability,
    ) -> Result<(), StorageError>;
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

    /// Memory has one durability.
    fn apply_with(
        &mut self,
        batch: &[Change<'_>],
        _durability: Durability,
    ) -> Result<(), StorageError> {
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

/// A store behind a box or a mutable reference is the store itself.
macro_rules! forward_storage {
    ($($outer:ty),*) => {$(
        impl<S: Storage + ?Sized> Storage for $outer {
            fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
                (**self).load()
            }
            fn apply(&mut self, batch: &[Change<'_>]) -> Result<(), StorageError> {
                (**self).apply(batch)
            }
            fn apply_with(
                &mut self,
                batch: &[Change<'_>],
                durability: Durability,
            ) -> Result<(), StorageError> {
                (**self).apply_with(batch, durability)
            }
        }
    )*};
}

forward_storage!(Box<S>, &mut S);
