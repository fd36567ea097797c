//! `kf-station self-test`: the full pipeline against an in-process virtual fob,
//! at the specification's level (01) and at level 33, with a container package written
//! to a temporary directory.

use kf_perso::pipeline::{provision_fob, NoHooks};
use kf_source::{CardKeys, ContainerSource, ProvisioningSource};
use kf_transport::loopback::LoopbackTransport;

use crate::config::StationConfig;
use crate::exit;
use crate::station::{outcome_line, sim_fob};

/// Runs the self-test; exit 0 when every case passes.
pub fn run() -> u8 {
    match self_test() {
        Ok(true) => {
            outln!("self-test PASSED");
            exit::OK
        }
        Ok(false) => {
            outln!("self-test FAILED");
            exit::FAILED
        }
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::FAILED
        }
    }
}

fn self_test() -> anyhow::Result<bool> {
    let pool = tempfile::tempdir()?;
    kf_source::fixtures::generate(pool.path(), 2, None)?;
    let mut all = true;
    for level in ["01", "33"] {
        let config = StationConfig {
            security_level: level.into(),
            station_id: "SELF-TEST".into(),
            ..StationConfig::default()
        };
        let options = config.pipeline_options()?;
        let mut source: Box<dyn ProvisioningSource> = Box::new(ContainerSource::open(
            pool.path().to_path_buf(),
            CardKeys::dev_sample()?,
        )?);
        let mut link = LoopbackTransport::new(sim_fob()?);
        let outcome = provision_fob(&mut link, source.as_mut(), &options, &mut NoHooks);
        outln!("level {level}: {}", outcome_line(&outcome));
        all &= outcome.is_success();
    }
    Ok(all)
}
