//! Development PKI (`kf-klms pki init DIR`): a TLS CA, the server certificate,
//! station client certificates, and the fob certificate hierarchy
//! (`CN=FMC-NFC-ROOT` → `CN=FMC-NFC-ICA`) used for synthesized fob content.
//!
//! Development only: keys are written unencrypted. On Unix every key file is
//! created 0600 by the call that creates it (a temporary file in the same
//! directory, then renamed over the target), and the directory is created 0700.
//! Station names become file names, so they must pass
//! [`crate::wire::check_identifier`].

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PKI errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory already holds a PKI.
    #[error("{0} already contains a PKI (ca.pem); refusing to overwrite")]
    Exists(PathBuf),
    /// A station name is not a valid identifier (it names files).
    #[error("station name: {0}")]
    InvalidStation(#[from] crate::wire::IdentifierError),
}

/// Subject CN of the fob root CA.
pub const FOB_ROOT_CN: &str = "FMC-NFC-ROOT";
/// Subject CN of the fob intermediate CA (provisioning specification, DGI A004).
pub const FOB_ICA_CN: &str = "FMC-NFC-ICA";

/// A certificate with its key, PEM.
pub struct IssuedCert {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Private key PEM (PKCS#8).
    pub key_pem: String,
}

/// A freshly generated development PKI, in memory.
pub struct DevPki {
    /// TLS CA that signs the server and station certificates.
    pub ca: IssuedCert,
    /// Server certificate for `localhost` and `127.0.0.1`.
    pub server: IssuedCert,
    /// Station client certificates, by CN.
    pub stations: Vec<(String, IssuedCert)>,
    /// Fob root CA (DGI A005 for synthesized content).
    pub fob_root: IssuedCert,
    /// Fob intermediate CA (DGI A004; signs synthesized device certificates).
    pub fob_ica: IssuedCert,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

pub(crate) fn ca_params(cn: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn issued(cert: &rcgen::Certificate, key: &KeyPair) -> IssuedCert {
    IssuedCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
    }
}

impl DevPki {
    /// Generates a TLS CA named `ca_cn`, a server certificate and one client
    /// certificate per station CN, plus the fob CA hierarchy.
    pub fn generate(ca_cn: &str, stations: &[&str]) -> Result<DevPki, PkiError> {
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params(ca_cn)?.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        server_params.distinguished_name = dn("kf-klms");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca_cert, &ca_key)?;

        for cn in stations {
            crate::wire::check_identifier(cn)?;
        }
        let mut station_certs = Vec::new();
        for cn in stations {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = dn(cn);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
            station_certs.push(((*cn).to_owned(), issued(&cert, &key)));
        }

        let root_key = KeyPair::generate()?;
        let root_cert = ca_params(FOB_ROOT_CN)?.self_signed(&root_key)?;
        let ica_key = KeyPair::generate()?;
        let ica_cert = ca_params(FOB_ICA_CN)?.signed_by(&ica_key, &root_cert, &root_key)?;

        Ok(DevPki {
            ca: issued(&ca_cert, &ca_key),
            server: issued(&server_cert, &server_key),
            stations: station_certs,
            fob_root: issued(&root_cert, &root_key),
            fob_ica: issued(&ica_cert, &ica_key),
        })
    }

    /// Writes the PKI to `dir` (see [`PkiPaths`] for the layout).
    pub fn write_to(&self, dir: &Path) -> Result<PkiPaths, PkiError> {
        for (cn, _) in &self.stations {
            crate::wire::check_identifier(cn)?;
        }
        create_private_dir(dir)?;
        let paths = PkiPaths::in_dir(dir);
        write(&paths.ca_cert, &self.ca.cert_pem, false)?;
        write(&dir.join("ca.key"), &self.ca.key_pem, true)?;
        write(&paths.server_cert, &self.server.cert_pem, false)?;
        write(&paths.server_key, &self.server.key_pem, true)?;
        for (cn, cert) in &self.stations {
            write(&dir.join(format!("{cn}.pem")), &cert.cert_pem, false)?;
            write(&dir.join(format!("{cn}.key")), &cert.key_pem, true)?;
        }
        write(&paths.fob_root_cert, &self.fob_root.cert_pem, false)?;
        write(&paths.fob_ica_cert, &self.fob_ica.cert_pem, false)?;
        write(&paths.fob_ica_key, &self.fob_ica.key_pem, true)?;
        Ok(paths)
    }
}

/// File layout written by [`DevPki::write_to`].
#[derive(Debug, Clone)]
pub struct PkiPaths {
    /// `ca.pem`: TLS CA (trust anchor for both sides).
    pub ca_cert: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `fob-root.pem`.
    pub fob_root_cert: PathBuf,
    /// `fob-ica.pem`.
    pub fob_ica_cert: PathBuf,
    /// `fob-ica.key`.
    pub fob_ica_key: PathBuf,
}

impl PkiPaths {
    /// The layout inside `dir`; station files are `<CN>.pem` / `<CN>.key`.
    pub fn in_dir(dir: &Path) -> PkiPaths {
        PkiPaths {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            fob_root_cert: dir.join("fob-root.pem"),
            fob_ica_cert: dir.join("fob-ica.pem"),
            fob_ica_key: dir.join("fob-ica.key"),
        }
    }
}

fn write(path: &Path, content: &str, secret: bool) -> Result<(), PkiError> {
    write_atomic(path, content.as_bytes(), secret)
}

/// Creates `dir` (and missing parents); on Unix the directories created are 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    kf_secret_file::create_private_dir(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` atomically ([`kf_secret_file::replace`]): owner-only
/// from the creating call when `secret`, else readable by all; on failure
/// `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), PkiError> {
    let access = if secret {
        kf_secret_file::Access::OwnerOnly
    } else {
        kf_secret_file::Access::Public
    };
    kf_secret_file::replace(path, bytes, access).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}
