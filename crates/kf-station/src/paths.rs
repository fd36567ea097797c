//! Default locations of the station's files.
//!
//! On Windows the journal, the demo data and the optional `station.toml` live
//! under `%ProgramData%\keyfob-station` (`C:\ProgramData\keyfob-station`): the
//! station's files stay in one machine-wide place whatever directory the
//! program was started from. Elsewhere they are relative to the working
//! directory (`station-journal.db`, `kf-demo/`, no default configuration).

use std::path::{Path, PathBuf};

/// The directory of the station's default files: `%ProgramData%\keyfob-station`
/// on Windows, the working directory (an empty path) elsewhere.
pub fn data_dir() -> PathBuf {
    #[cfg(windows)]
    {
        std::env::var_os("ProgramData")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
            .join("keyfob-station")
    }
    #[cfg(not(windows))]
    {
        PathBuf::new()
    }
}

/// The default journal: `station-journal.db` in [`data_dir`].
pub fn default_journal() -> PathBuf {
    data_dir().join("station-journal.db")
}

/// The default data directory of `demo`: `kf-demo` in [`data_dir`].
#[cfg(any(feature = "sim", test))]
pub fn default_demo_dir() -> PathBuf {
    data_dir().join("kf-demo")
}

/// The configuration read when none is given: `station.toml` in [`data_dir`]
/// on Windows when that file exists; none elsewhere.
pub fn default_config() -> Option<PathBuf> {
    #[cfg(windows)]
    {
        Some(data_dir().join("station.toml")).filter(|p| p.is_file())
    }
    #[cfg(not(windows))]
    {
        None
    }
}

/// Creates [`data_dir`] when `file` is one of the default files directly in
/// it (on Windows, `%ProgramData%\keyfob-station` does not exist before the
/// first run). Other paths are the operator's: their directory must exist.
pub fn prepare_default_dir(file: &Path) -> std::io::Result<()> {
    let dir = data_dir();
    if !dir.as_os_str().is_empty() && file.parent() == Some(dir.as_path()) {
        std::fs::create_dir_all(&dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(windows))]
    #[test]
    fn unix_defaults_are_relative_to_the_working_directory() {
        assert_eq!(default_journal(), PathBuf::from("station-journal.db"));
        assert_eq!(default_demo_dir(), PathBuf::from("kf-demo"));
        assert_eq!(default_config(), None);
    }

    #[cfg(windows)]
    #[test]
    fn windows_defaults_are_under_program_data() {
        let dir = data_dir();
        assert!(dir.ends_with("keyfob-station"), "{}", dir.display());
        assert_eq!(default_journal(), dir.join("station-journal.db"));
        assert_eq!(default_demo_dir(), dir.join("kf-demo"));
    }
}
