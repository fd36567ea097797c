//! One container package (provisioning specification, "Container Directory Format") and the
//! factory-wide certificates, parsed and cross-checked.

use std::path::{Path, PathBuf};

use base64::Engine;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::pki;
use super::{ContainerError, ContainerErrorKind};
use crate::input::{BleIrk, PrivateScalar, Spid, IRK_LEN};

/// FESN file name.
pub const FESN_FILE: &str = "FESN.txt";
/// BLE IRK file name (base64 of 16 bytes).
pub const IRK_FILE: &str = "irk_keyfob.key";
/// Device private key file name (PKCS#8 or SEC 1 DER, EC P-256).
pub const PRIVATE_KEY_FILE: &str = "keyfob_private.der";
/// Device certificate file name (DER X.509).
pub const DEVICE_CERT_FILE: &str = "keyfob_public.der";
/// Shared ICA certificate, in the pool root.
pub const ICA_CERT_FILE: &str = "ica_cert.der";
/// Shared CMS/root certificate, in the pool root.
pub const ROOT_CERT_FILE: &str = "cms_root_cert.der";

/// Longest FESN accepted (the specified FESNs are 8 characters).
const MAX_FESN_LEN: usize = 16;

/// Size caps of the package files. The specified format fixes the sizes
/// (`FESN.txt` 8 bytes, `irk_keyfob.key` 24 Base64 characters,
/// `keyfob_private.der` 138 bytes, certificates 422–722 bytes); each cap
/// leaves room for line ends, SEC 1 keys and longer certificate chains.
pub const FESN_MAX_BYTES: u64 = 64;
/// Cap of `irk_keyfob.key`.
pub const IRK_MAX_BYTES: u64 = 128;
/// Cap of `keyfob_private.der`.
pub const PRIVATE_KEY_MAX_BYTES: u64 = 1024;
/// Cap of each certificate file (device, ICA, root).
pub const CERT_MAX_BYTES: u64 = 8 * 1024;

/// The raw bytes of a package's four files.
pub struct PackageFiles {
    /// `FESN.txt`.
    pub fesn_txt: Vec<u8>,
    /// `irk_keyfob.key`.
    pub irk_key: Zeroizing<Vec<u8>>,
    /// `keyfob_private.der`.
    pub private_key_der: Zeroizing<Vec<u8>>,
    /// `keyfob_public.der`.
    pub device_cert_der: Vec<u8>,
}

impl PackageFiles {
    /// Reads the four files of a package directory; a missing file is
    /// [`ContainerErrorKind::MissingFile`].
    ///
    /// The directory must be a real directory and each file a regular file
    /// (no symbolic links, FIFOs or devices) within its cap.
    pub fn read(dir: &Path) -> Result<PackageFiles, ContainerError> {
        kf_files::check_plain_dir(dir).map_err(file_error)?;
        Ok(PackageFiles {
            fesn_txt: read_file(&dir.join(FESN_FILE), FESN_MAX_BYTES)?,
            irk_key: Zeroizing::new(read_file(&dir.join(IRK_FILE), IRK_MAX_BYTES)?),
            private_key_der: Zeroizing::new(read_file(
                &dir.join(PRIVATE_KEY_FILE),
                PRIVATE_KEY_MAX_BYTES,
            )?),
            device_cert_der: read_file(&dir.join(DEVICE_CERT_FILE), CERT_MAX_BYTES)?,
        })
    }
}

/// Reads a pool file as a regular file (symbolic links refused, so nothing
/// is read from outside the pool) of at most `cap` bytes, mapping "not
/// found" to `MissingFile`.
pub(crate) fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, ContainerError> {
    kf_files::read_regular(path, cap, kf_files::Links::Refuse).map_err(file_error)
}

fn file_error(e: kf_files::FileError) -> ContainerError {
    let kind = match e.kind() {
        kf_files::FileErrorKind::Missing => ContainerErrorKind::MissingFile,
        other => ContainerErrorKind::Io {
            reason: other.to_string(),
        },
    };
    ContainerError::new(e.path(), kind)
}

/// The factory-wide certificates (DGIs A004 and A005), with the ICA checked
/// against the root.
pub struct SharedCertificates {
    ica_der: Vec<u8>,
    root_der: Vec<u8>,
    ica: Certificate,
}

impl SharedCertificates {
    /// Loads `ica_cert.der` and `cms_root_cert.der` from the pool directory.
    pub fn load(pool: &Path) -> Result<SharedCertificates, ContainerError> {
        let ica_path = pool.join(ICA_CERT_FILE);
        let root_path = pool.join(ROOT_CERT_FILE);
        let ica_der = read_file(&ica_path, CERT_MAX_BYTES)?;
        let root_der = read_file(&root_path, CERT_MAX_BYTES)?;
        SharedCertificates::from_der(ica_der, root_der, &ica_path, &root_path)
    }

    /// Checks both certificates: each parses, the ICA's issuer DN is the root's
    /// subject and the ICA signature verifies with the root key (EC P-256 or
    /// P-384 roots; other key types are refused with `UnsupportedKeyAlgorithm`).
    pub fn from_der(
        ica_der: Vec<u8>,
        root_der: Vec<u8>,
        ica_path: &Path,
        root_path: &Path,
    ) -> Result<SharedCertificates, ContainerError> {
        let ica = pki::parse_certificate(&ica_der).map_err(|k| ContainerError::new(ica_path, k))?;
        let root =
            pki::parse_certificate(&root_der).map_err(|k| ContainerError::new(root_path, k))?;
        pki::ec_public_key(&ica).map_err(|k| ContainerError::new(ica_path, k))?;
        pki::ec_public_key(&root).map_err(|k| ContainerError::new(root_path, k))?;
        pki::check_issued_by(&ica, &root).map_err(|k| ContainerError::new(ica_path, k))?;
        Ok(SharedCertificates {
            ica_der,
            root_der,
            ica,
        })
    }

    /// DER of the ICA certificate (DGI A004).
    pub fn ica_der(&self) -> &[u8] {
        &self.ica_der
    }

    /// DER of the root certificate (DGI A005).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }
}

/// A validated package.
#[derive(Debug)]
pub struct Package {
    /// Directory name `<FESN>-<SPID>`.
    pub name: String,
    /// Fob electronic serial number.
    pub fesn: String,
    /// SPID from the directory name (DGI A001).
    pub spid: Spid,
    /// Device certificate DER (DGI A002).
    pub device_certificate: Vec<u8>,
    /// Private scalar (DGI A003 before DEK encryption).
    pub scalar: PrivateScalar,
    /// BLE IRK (DGI A006).
    pub irk: BleIrk,
    /// Public key of the device certificate.
    pub device_public_key: p256::PublicKey,
}

/// Splits `<FESN>-<SPID_HEX>` and checks both parts.
pub fn parse_directory_name(dir: &Path, name: &str) -> Result<(String, Spid), ContainerError> {
    let bad = |reason: &str| {
        ContainerError::new(
            dir,
            ContainerErrorKind::BadDirectoryName {
                reason: reason.to_owned(),
            },
        )
    };
    let (fesn, spid) = name
        .split_once('-')
        .ok_or_else(|| bad("expected <FESN>-<SPID_HEX>"))?;
    check_fesn(fesn).map_err(|()| bad("the FESN part is not 1-16 ASCII letters/digits"))?;
    let spid = Spid::new(spid).map_err(|_| {
        ContainerError::new(
            dir,
            ContainerErrorKind::BadSpid {
                len: spid.chars().count(),
            },
        )
    })?;
    Ok((fesn.to_owned(), spid))
}

fn check_fesn(fesn: &str) -> Result<(), ()> {
    if !fesn.is_empty()
        && fesn.len() <= MAX_FESN_LEN
        && fesn.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err(())
    }
}

/// Validates a package's files against its directory name and the shared certificates.
pub fn validate_package(
    dir: &Path,
    name: &str,
    files: &PackageFiles,
    shared: &SharedCertificates,
) -> Result<Package, ContainerError> {
    let (fesn, spid) = parse_directory_name(dir, name)?;
    let at = |file: &str| -> PathBuf { dir.join(file) };

    let fesn_file = std::str::from_utf8(&files.fesn_txt)
        .map(str::trim)
        .ok()
        .filter(|f| check_fesn(f).is_ok())
        .ok_or_else(|| ContainerError::new(at(FESN_FILE), ContainerErrorKind::BadFesn))?;
    if fesn_file != fesn {
        return Err(ContainerError::new(
            at(FESN_FILE),
            ContainerErrorKind::FesnMismatch {
                directory: fesn,
                file: fesn_file.to_owned(),
            },
        ));
    }

    let irk = decode_irk(&files.irk_key).map_err(|k| ContainerError::new(at(IRK_FILE), k))?;

    let secret = pki::parse_private_key(&files.private_key_der)
        .map_err(|k| ContainerError::new(at(PRIVATE_KEY_FILE), k))?;

    let cert_err = |k| ContainerError::new(at(DEVICE_CERT_FILE), k);
    let cert = pki::parse_certificate(&files.device_cert_der).map_err(cert_err)?;
    let device_public_key = pki::p256_public_key(&cert).map_err(cert_err)?;
    if secret.public_key() != device_public_key {
        return Err(ContainerError::new(
            at(PRIVATE_KEY_FILE),
            ContainerErrorKind::KeyMismatch,
        ));
    }
    match pki::subject_cn(&cert) {
        Some(cn) if cn == fesn => {}
        cn => {
            return Err(cert_err(ContainerErrorKind::CnMismatch {
                cn: cn.unwrap_or_default(),
                fesn,
            }))
        }
    }
    pki::check_issued_by(&cert, &shared.ica).map_err(cert_err)?;

    Ok(Package {
        name: name.to_owned(),
        fesn,
        spid,
        device_certificate: files.device_cert_der.clone(),
        scalar: PrivateScalar::from_secret_key(&secret),
        irk,
        device_public_key,
    })
}

/// Decodes `irk_keyfob.key` strictly (provisioning specification, "Container Directory Format":
/// "Base64 (24 chars)", "BLE IRK (16 bytes decoded)").
///
/// Rules, each refused with its own [`ContainerErrorKind`]:
/// - the file is exactly 24 characters of the standard Base64 alphabet
///   (RFC 4648 §4) with canonical `=` padding and zero trailing bits,
///   optionally followed by one line end (`\n` or `\r\n`); any other
///   whitespace (leading, inner, trailing blanks, several line ends) is
///   refused ([`ContainerErrorKind::BadIrkBase64`]);
/// - it decodes to exactly 16 bytes ([`ContainerErrorKind::BadIrkLength`]);
/// - the 16 bytes are not all zero ([`ContainerErrorKind::ZeroIrk`]).
pub(crate) fn decode_irk(text: &[u8]) -> Result<BleIrk, ContainerErrorKind> {
    let body = text
        .strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .unwrap_or(text);
    // The STANDARD engine refuses any byte outside the alphabet (whitespace
    // included), non-canonical padding and non-zero trailing bits.
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ContainerErrorKind::BadIrkBase64)?,
    );
    if bytes.len() != IRK_LEN {
        return Err(ContainerErrorKind::BadIrkLength { len: bytes.len() });
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(ContainerErrorKind::ZeroIrk);
    }
    BleIrk::from_bytes(&bytes).map_err(|_| ContainerErrorKind::BadIrkLength { len: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &[u8]) -> Option<ContainerErrorKind> {
        decode_irk(text).err()
    }

    #[test]
    fn irk_decoding_is_strict() {
        let good = base64::engine::general_purpose::STANDARD.encode([0x5Au8; 16]);
        for ok in [good.clone(), format!("{good}\n"), format!("{good}\r\n")] {
            assert_eq!(
                decode_irk(ok.as_bytes()).map(|k| *k.expose_secret()).ok(),
                Some([0x5A; 16]),
                "{ok:?}"
            );
        }
        for bad in [
            format!(" {good}"),
            format!("{good} "),
            format!("{good}\n\n"),
            format!("{}\n{}", &good[..12], &good[12..]),
            format!("\t{good}"),
            good.trim_end_matches('=').to_owned(),
            format!("{good}="),
            // Non-zero trailing bits: 'x' instead of 'w' before the padding.
            format!("{}x==", &good[..21]),
            good.replace('W', "-"),
        ] {
            assert_eq!(
                kind(bad.as_bytes()),
                Some(ContainerErrorKind::BadIrkBase64),
                "{bad:?}"
            );
        }
        let b64 = |n: usize, v: u8| base64::engine::general_purpose::STANDARD.encode(vec![v; n]);
        assert_eq!(
            kind(b64(15, 1).as_bytes()),
            Some(ContainerErrorKind::BadIrkLength { len: 15 })
        );
        assert_eq!(
            kind(b64(17, 1).as_bytes()),
            Some(ContainerErrorKind::BadIrkLength { len: 17 })
        );
        assert_eq!(
            kind(b64(16, 0).as_bytes()),
            Some(ContainerErrorKind::ZeroIrk)
        );
    }
}
