//! A scratch directory for the targets whose input is a file: made once per
//! process, each input written over the last.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The scratch directory.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// Writes `data` to the file `name` in the scratch directory; its path.
pub fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, data).expect("write the input");
    path
}
