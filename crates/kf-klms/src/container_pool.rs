//! Content from a pool of container package directories.
//!
//! Layout: `DIR/<FESN>-<SPID_HEX>/{FESN.txt, irk_keyfob.key, keyfob_private.der,
//! keyfob_public.der}` plus the shared `DIR/ica_cert.der` and
//! `DIR/cms_root_cert.der`. Each package is handed out once: a claim file
//! `.klms-claimed` is created atomically (`create_new`) in the package
//! directory, so claims survive restarts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kf_source::container::{
    parse_directory_name, validate_package, PackageFiles, SharedCertificates,
};
use zeroize::Zeroizing;

use crate::content::{ContentError, ContentProvider, FobContent};

const CLAIM_FILE: &str = ".klms-claimed";

/// A pool of container packages.
pub struct ContainerPoolContent {
    dir: PathBuf,
    shared: SharedCertificates,
    packages: Mutex<Vec<PathBuf>>,
}

impl ContainerPoolContent {
    /// Scans `dir` for package directories and loads the shared certificates (with the
    /// station's own reader: regular files under size caps, certificates checked).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let dir = dir.into();
        let config_err = |what: &dyn std::fmt::Display| {
            ContentError::Config(format!("{}: {what}", dir.display()))
        };
        let shared = SharedCertificates::load(&dir).map_err(|e| config_err(&e))?;
        let mut packages = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| config_err(&e))? {
            let entry = entry.map_err(|e| config_err(&e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // As the station lists a pool: a link to a directory elsewhere is not a package.
            let is_dir = entry.file_type().map_err(|e| config_err(&e))?.is_dir();
            if is_dir
                && parse_directory_name(&path, &name).is_ok()
                && !path.join(CLAIM_FILE).exists()
            {
                packages.push(path);
            }
        }
        packages.sort();
        packages.reverse(); // pop() hands out in name order
        Ok(ContainerPoolContent {
            dir,
            shared,
            packages: Mutex::new(packages),
        })
    }

    /// Unclaimed packages left.
    pub fn remaining(&self) -> usize {
        self.packages.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Reads and validates one package as the station's container source does (provisioning
    /// specification, "Container Directory Format"): file caps, FESN, strict IRK, the key
    /// matching the device certificate, its CN and its issuer (the pool's ICA).
    fn load(&self, path: &Path) -> Result<FobContent, ContentError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let invalid = |e: kf_source::ContainerError| ContentError::Config(e.to_string());
        let files = PackageFiles::read(path).map_err(invalid)?;
        let package = validate_package(path, &name, &files, &self.shared).map_err(invalid)?;
        Ok(FobContent {
            fesn: package.fesn,
            spid_hex: package.spid.as_str().to_ascii_uppercase(),
            device_cert_der: package.device_certificate,
            private_scalar: Zeroizing::new(*package.scalar.expose_secret()),
            ica_cert_der: self.shared.ica_der().to_vec(),
            root_cert_der: self.shared.root_der().to_vec(),
            irk: Zeroizing::new(*package.irk.expose_secret()),
        })
    }
}

/// Writes the claiming fob's UID into the claim file and makes the file
/// and its directory entry durable.
fn record_claim(claim: &mut std::fs::File, package: &Path, fob_uid: &[u8]) -> std::io::Result<()> {
    writeln!(claim, "{}", hex::encode_upper(fob_uid))?;
    claim.sync_all()?;
    #[cfg(unix)]
    std::fs::File::open(package)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = package;
    Ok(())
}

impl ContentProvider for ContainerPoolContent {
    fn content_for(&self, fob_uid: &[u8]) -> Result<FobContent, ContentError> {
        loop {
            let next = self
                .packages
                .lock()
                .map_err(|_| ContentError::Generation("pool lock poisoned".into()))?
                .pop();
            let Some(path) = next else {
                return Err(ContentError::Exhausted);
            };
            // Claim atomically; another process may have taken it.
            let claim = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path.join(CLAIM_FILE));
            let Ok(mut claim) = claim else { continue };
            // Durable before the package is handed out: a claim lost in a
            // crash would let the same key material be issued twice.
            record_claim(&mut claim, &path, fob_uid).map_err(|source| ContentError::Claim {
                path: path.clone(),
                source,
            })?;
            match self.load(&path) {
                Ok(content) => return Ok(content),
                Err(e) => {
                    tracing::warn!(pool = %self.dir.display(), error = %e, "skipping malformed package");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_claim_that_cannot_be_written_is_an_error() {
        // /dev/full refuses every write with ENOSPC.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = record_claim(&mut full, dir.path(), &[0x04, 0x11]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
    }

    /// A package the station's container source refuses (here an IRK file with a leading
    /// blank, which a lax reader would trim) is claimed and skipped, never handed out.
    #[test]
    fn a_package_the_station_would_refuse_is_never_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let pool = kf_source::fixtures::generate(dir.path(), 2, Some(3)).unwrap();
        // Handed out in name order: the first is the broken one.
        let mut names = pool.dir_names();
        names.sort();
        let irk = dir.path().join(&names[0]).join("irk_keyfob.key");
        let text = std::fs::read(&irk).unwrap();
        std::fs::write(&irk, [b" ".as_slice(), &text].concat()).unwrap();
        let content = ContainerPoolContent::open(dir.path()).unwrap();
        assert_eq!(content.remaining(), 2);
        let served = content.content_for(&[0x04, 1]).unwrap();
        let (_, spid) = names[1].rsplit_once('-').unwrap();
        assert_eq!(served.spid_hex, spid.to_ascii_uppercase());
        assert!(matches!(
            content.content_for(&[0x04, 2]),
            Err(ContentError::Exhausted)
        ));
        assert!(dir.path().join(&names[0]).join(CLAIM_FILE).exists());
    }

    /// A link in the pool to a package directory elsewhere is not a package (the station
    /// lists a pool the same way).
    #[cfg(unix)]
    #[test]
    fn a_linked_package_directory_is_not_listed() {
        let outside = tempfile::tempdir().unwrap();
        let pool = kf_source::fixtures::generate(outside.path(), 1, Some(4)).unwrap();
        let name = &pool.dir_names()[0];
        let dir = tempfile::tempdir().unwrap();
        for shared in ["ica_cert.der", "cms_root_cert.der"] {
            std::fs::copy(outside.path().join(shared), dir.path().join(shared)).unwrap();
        }
        std::os::unix::fs::symlink(outside.path().join(name), dir.path().join(name)).unwrap();
        assert_eq!(
            ContainerPoolContent::open(dir.path()).unwrap().remaining(),
            0
        );
    }

    #[test]
    fn a_claim_names_the_fob_and_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CLAIM_FILE);
        let mut claim = std::fs::File::create(&path).unwrap();
        record_claim(&mut claim, dir.path(), &[0x04, 0xAB]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "04AB\n");
    }
}
