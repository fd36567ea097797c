//! `kf-klms serve --config`: the KLMS's TOML configuration, read from a file
//! through the same loader as the server (size cap, TOML, limits and station
//! identifier validation).
#![no_main]
use std::sync::OnceLock;

use kf_klms::config::FileConfig;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("klms.toml");
    std::fs::write(&path, data).expect("write the input");
    if let Ok(config) = FileConfig::load(&path) {
        let _ = config.ledger_path(dir().path());
    }
});
