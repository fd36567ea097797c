//! `station.toml`: the station's configuration, read through the station's own
//! loader (TOML, error location, `KF_*` overrides) and turned into pipeline
//! options. The station is a binary crate, so its configuration modules are
//! compiled into this target from their source files.
#![no_main]
#![allow(dead_code)]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/kf-station/src/config.rs"]
mod config;
#[path = "../../crates/kf-station/src/klms.rs"]
mod klms;
#[path = "../../crates/kf-station/src/paths.rs"]
mod paths;
#[path = "../../crates/kf-station/src/text.rs"]
mod text;

#[path = "common/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::write("station.toml", data);
    match config::StationConfig::load(Some(&path)) {
        Ok(cfg) => {
            let _ = cfg.pipeline_options();
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
