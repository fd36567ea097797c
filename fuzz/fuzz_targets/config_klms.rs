//! `kf-klms serve --config`: the KLMS's TOML configuration, read from a file
//! through the same loader as the server (size cap, TOML, limits and station
//! identifier validation).
#![no_main]
use kf_klms::config::FileConfig;
use libfuzzer_sys::fuzz_target;

#[path = "common/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::write("klms.toml", data);
    if let Ok(config) = FileConfig::load(&path) {
        let _ = config.ledger_path(scratch::dir());
    }
});
