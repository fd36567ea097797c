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

use base64::Engine;
use der::Decode;
use p256::pkcs8::DecodePrivateKey;
use zeroize::Zeroizing;

use crate::content::{ContentError, ContentProvider, FobContent};

const CLAIM_FILE: &str = ".klms-claimed";

/// A pool of container packages.
pub struct ContainerPoolContent {
    dir: PathBuf,
    ica_cert_der: Vec<u8>,
    root_cert_der: Vec<u8>,
    packages: Mutex<Vec<PathBuf>>,
}

fn config_err(path: &Path, what: impl std::fmt::Display) -> ContentError {
    ContentError::Config(format!("{}: {what}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, ContentError> {
    std::fs::read(path).map_err(|e| config_err(path, e))
}

fn split_name(name: &str) -> Option<(&str, &str)> {
    let (fesn, spid) = name.rsplit_once('-')?;
    let ok = !fesn.is_empty()
        && fesn.chars().all(|c| c.is_ascii_alphanumeric())
        && spid.len() == 40
        && spid.chars().all(|c| c.is_ascii_hexdigit());
    ok.then_some((fesn, spid))
}

fn cert_public_point(path: &Path, der: &[u8]) -> Result<Vec<u8>, ContentError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|_| config_err(path, "not a DER certificate"))?;
    cert.tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| config_err(path, "bad public key bit string"))
}

impl ContainerPoolContent {
    /// Scans `dir` for package directories and loads the shared certificates.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let dir = dir.into();
        let ica_cert_der = read(&dir.join("ica_cert.der"))?;
        let root_cert_der = read(&dir.join("cms_root_cert.der"))?;
        let mut packages = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| config_err(&dir, e))? {
            let entry = entry.map_err(|e| config_err(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && split_name(&name).is_some() && !path.join(CLAIM_FILE).exists() {
                packages.push(path);
            }
        }
        packages.sort();
        packages.reverse(); // pop() hands out in name order
        Ok(ContainerPoolContent {
            dir,
            ica_cert_der,
            root_cert_der,
            packages: Mutex::new(packages),
        })
    }

    /// Unclaimed packages left.
    pub fn remaining(&self) -> usize {
        self.packages.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn load(&self, path: &Path) -> Result<FobContent, ContentError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (fesn, spid) = split_name(&name).ok_or_else(|| config_err(path, "bad package name"))?;
        let fesn_txt = String::from_utf8(read(&path.join("FESN.txt"))?)
            .map_err(|_| config_err(path, "FESN.txt is not text"))?;
        if fesn_txt.trim() != fesn {
            return Err(config_err(
                path,
                "FESN.txt does not match the directory name",
            ));
        }
        let irk_text = Zeroizing::new(read(&path.join("irk_keyfob.key"))?);
        let irk_bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(irk_text.trim_ascii())
                .map_err(|_| config_err(&path.join("irk_keyfob.key"), "not base64"))?,
        );
        let mut irk = Zeroizing::new([0u8; 16]);
        if irk_bytes.len() != 16 {
            return Err(config_err(
                &path.join("irk_keyfob.key"),
                "IRK is not 16 bytes",
            ));
        }
        irk.copy_from_slice(&irk_bytes);
        let key_path = path.join("keyfob_private.der");
        let key_der = Zeroizing::new(read(&key_path)?);
        let secret = p256::SecretKey::from_pkcs8_der(&key_der)
            .or_else(|_| p256::SecretKey::from_sec1_der(&key_der))
            .map_err(|_| config_err(&key_path, "not a PKCS#8 or SEC1 P-256 private key"))?;
        let cert_path = path.join("keyfob_public.der");
        let device_cert_der = read(&cert_path)?;
        let point = cert_public_point(&cert_path, &device_cert_der)?;
        let expected = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        if point != expected.as_bytes() {
            return Err(config_err(
                path,
                "private key does not match the device certificate",
            ));
        }
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&secret.to_bytes());
        Ok(FobContent {
            fesn: fesn.to_owned(),
            spid_hex: spid.to_ascii_uppercase(),
            device_cert_der,
            private_scalar: scalar,
            ica_cert_der: self.ica_cert_der.clone(),
            root_cert_der: self.root_cert_der.clone(),
            irk,
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

    #[test]
    fn a_claim_names_the_fob_and_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CLAIM_FILE);
        let mut claim = std::fs::File::create(&path).unwrap();
        record_claim(&mut claim, dir.path(), &[0x04, 0xAB]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "04AB\n");
    }
}
