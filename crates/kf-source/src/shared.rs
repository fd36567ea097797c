//! [`SharedSource`]: one provisioning source used by several readers at once.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ProvisioningInput, ProvisioningSource, Settlement, SourceError};

/// A source behind a lock, cloned into every reader's worker: each call takes
/// the lock for its own duration only, so a pool hands each package to one
/// fob however many readers ask at the same time.
#[derive(Clone)]
pub struct SharedSource {
    name: Arc<str>,
    inner: Arc<Mutex<Box<dyn ProvisioningSource + Send>>>,
}

impl SharedSource {
    /// Shares `source`.
    pub fn new(source: Box<dyn ProvisioningSource + Send>) -> Self {
        Self {
            name: source.name().into(),
            inner: Arc::new(Mutex::new(source)),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Box<dyn ProvisioningSource + Send>>, SourceError> {
        self.inner.lock().map_err(|_| SourceError::Poisoned)
    }
}

impl ProvisioningSource for SharedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, SourceError> {
        self.lock()?.fetch(uid)
    }

    fn ensure_fresh(&self, input: &ProvisioningInput) -> Result<(), SourceError> {
        self.lock()?.ensure_fresh(input)
    }

    fn settle(&mut self, origin: &str, settlement: Settlement) -> Result<(), SourceError> {
        self.lock()?.settle(origin, settlement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DevSampleSource;

    #[test]
    fn readers_sharing_a_pool_never_get_the_same_package() {
        let shared = SharedSource::new(Box::new(DevSampleSource::generated(40, None).unwrap()));
        let origins = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for reader in 0..4u8 {
                let mut source = shared.clone();
                let origins = &origins;
                scope.spawn(move || {
                    for fob in 0..10u8 {
                        let uid = [0x04, reader, fob, 0x10, 0x20, 0x30, 0x40];
                        let input = source.fetch(&uid).unwrap();
                        origins.lock().unwrap().push(input.origin.clone());
                    }
                });
            }
        });
        let mut origins = origins.into_inner().unwrap();
        assert_eq!(origins.len(), 40);
        origins.sort();
        origins.dedup();
        assert_eq!(origins.len(), 40, "a package went to two fobs");
        assert_eq!(shared.name(), "dev");
        let mut source = shared.clone();
        assert!(matches!(
            source.fetch(&[0x04, 9, 9, 9, 9, 9, 9]),
            Err(SourceError::PoolExhausted { .. })
        ));
    }
}
