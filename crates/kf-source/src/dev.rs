//! Development samples (provisioning specification, "Development Samples (OEF B212)"): the chip
//! carries the published static key set at KVN 255, so no KLMS is involved;
//! the personalization content comes from a container pool or from fixtures
//! generated in memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::container::{
    input_from_package, validate_package, ContainerSource, Package, SharedCertificates,
    ICA_CERT_FILE, ROOT_CERT_FILE,
};
use crate::fixtures::FixturePool;
use crate::input::{CardKeys, ProvisioningInput};
use crate::{ProvisioningSource, Settlement, SourceError};

/// Dev-sample keys plus package content.
pub struct DevSampleSource {
    content: Content,
}

enum Content {
    Pool(ContainerSource),
    Memory {
        shared: SharedCertificates,
        packages: VecDeque<Package>,
        /// Packages already handed out, by fob UID (a re-presented fob gets its own back).
        issued: Vec<(Vec<u8>, Package)>,
    },
}

impl DevSampleSource {
    /// Dev keys with packages from a container pool directory (claim ledger included).
    pub fn with_pool(pool: impl Into<PathBuf>) -> Result<DevSampleSource, SourceError> {
        DevSampleSource::with_pool_options(pool, &crate::PoolOptions::default())
    }

    /// [`DevSampleSource::with_pool`] with the pool's options (done directory, kept packages).
    pub fn with_pool_options(
        pool: impl Into<PathBuf>,
        options: &crate::PoolOptions,
    ) -> Result<DevSampleSource, SourceError> {
        let source =
            ContainerSource::open_with(pool, CardKeys::dev_sample()?, options)?.with_name("dev");
        Ok(DevSampleSource {
            content: Content::Pool(source),
        })
    }

    /// Dev keys with packages held in memory (validated exactly like files on disk).
    pub fn with_fixtures(pool: &FixturePool) -> Result<DevSampleSource, SourceError> {
        let memory = Path::new("memory");
        let shared = SharedCertificates::from_der(
            pool.ica_cert_der.clone(),
            pool.root_cert_der.clone(),
            &memory.join(ICA_CERT_FILE),
            &memory.join(ROOT_CERT_FILE),
        )?;
        let packages = pool
            .packages
            .iter()
            .map(|p| {
                let name = p.dir_name();
                validate_package(&memory.join(&name), &name, &p.files(), &shared)
            })
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(DevSampleSource {
            content: Content::Memory {
                shared,
                packages,
                issued: Vec::new(),
            },
        })
    }

    /// Dev keys with `count` freshly generated in-memory packages.
    pub fn generated(count: usize, seed: Option<u64>) -> Result<DevSampleSource, SourceError> {
        DevSampleSource::with_fixtures(&crate::fixtures::build(count, seed)?)
    }
}

impl ProvisioningSource for DevSampleSource {
    fn name(&self) -> &str {
        "dev"
    }

    fn settle(&mut self, origin: &str, settlement: Settlement) -> Result<(), SourceError> {
        match &mut self.content {
            Content::Pool(source) => source.settle(origin, settlement),
            // In-memory packages are handed out once already.
            Content::Memory { .. } => Ok(()),
        }
    }

    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, SourceError> {
        crate::check_uid(uid)?;
        match &mut self.content {
            Content::Pool(source) => source.fetch(uid),
            Content::Memory {
                shared,
                packages,
                issued,
            } => {
                if !issued.iter().any(|(u, _)| u == uid) {
                    let package = packages.pop_front().ok_or(SourceError::PoolExhausted {
                        pool: "memory".to_owned(),
                    })?;
                    issued.push((uid.to_vec(), package));
                }
                let package = issued
                    .iter()
                    .find(|(u, _)| u == uid)
                    .map(|(_, p)| p)
                    .ok_or(SourceError::PoolExhausted {
                        pool: "memory".to_owned(),
                    })?;
                Ok(input_from_package(
                    package,
                    shared,
                    CardKeys::dev_sample()?,
                    uid,
                    "dev",
                ))
            }
        }
    }
}
