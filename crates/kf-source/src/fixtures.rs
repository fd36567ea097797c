//! Synthetic container package pools for tests and demos.
//!
//! ```text
//! seed ──StdRng──▶ root key ──self-signed──▶ CN=FMC-NFC-ROOT (≈722 B)
//!                  ICA key  ──signed by root─▶ CN=FMC-NFC-ICA  (≈435 B)
//!                  per fob: P-256 key, FESN 1KM0001E style, SPID (40 hex), IRK
//!                           ──signed by ICA──▶ device cert CN=FESN (≈422–424 B)
//! ──write──▶ POOL/ in exactly the container format (see [`crate::container`])
//! ```
//!
//! Certificates are built with `rcgen`; signatures are deterministic ECDSA
//! P-256/SHA-256 (RFC 6979) from the `p256` crate, so a given seed always
//! produces the same pool byte for byte. Sizes are brought close to the specification's
//! 001 packages with a certificate-policies extension whose CPS URI length is
//! tuned.

use std::path::Path;

use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePrivateKey;
use rand::{RngCore, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RemoteKeyPair, SerialNumber, SignatureAlgorithm,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::container::{
    PackageFiles, DEVICE_CERT_FILE, FESN_FILE, ICA_CERT_FILE, IRK_FILE, PRIVATE_KEY_FILE,
    ROOT_CERT_FILE,
};
use crate::SourceError;

/// Target DER sizes (provisioning specification: device 422/424, ICA 435, root 722 bytes).
const DEVICE_CERT_TARGET: usize = 423;
const ICA_CERT_TARGET: usize = 435;
const ROOT_CERT_TARGET: usize = 722;

/// One synthetic package, as the files of its directory.
pub struct FixturePackage {
    /// FESN, e.g. `1KM0001E`.
    pub fesn: String,
    /// SPID, 40 upper-case hex characters.
    pub spid: String,
    /// Content of `irk_keyfob.key` (base64, 24 characters).
    pub irk_base64: Zeroizing<String>,
    /// Content of `keyfob_private.der` (PKCS#8, 138 bytes).
    pub private_key_der: Zeroizing<Vec<u8>>,
    /// Content of `keyfob_public.der` (device certificate).
    pub device_cert_der: Vec<u8>,
}

impl FixturePackage {
    /// Directory name `<FESN>-<SPID>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.fesn, self.spid)
    }

    /// The package's files, as [`PackageFiles`] for in-memory validation.
    pub fn files(&self) -> PackageFiles {
        PackageFiles {
            fesn_txt: self.fesn.as_bytes().to_vec(),
            irk_key: Zeroizing::new(self.irk_base64.as_bytes().to_vec()),
            private_key_der: self.private_key_der.clone(),
            device_cert_der: self.device_cert_der.clone(),
        }
    }
}

impl std::fmt::Debug for FixturePackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixturePackage")
            .field("fesn", &self.fesn)
            .field("spid", &self.spid)
            .field("device_cert_len", &self.device_cert_der.len())
            .finish_non_exhaustive()
    }
}

/// A synthetic pool: shared certificates and packages.
#[derive(Debug)]
pub struct FixturePool {
    /// `ica_cert.der`.
    pub ica_cert_der: Vec<u8>,
    /// `cms_root_cert.der`.
    pub root_cert_der: Vec<u8>,
    /// The packages, in FESN order.
    pub packages: Vec<FixturePackage>,
}

impl FixturePool {
    /// The packages' directory names, sorted (the order a pool serves them).
    pub fn dir_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.packages.iter().map(|p| p.dir_name()).collect();
        names.sort();
        names
    }

    /// Writes the pool into `dir` (created if needed). Refuses to overwrite an
    /// existing pool's certificates or packages.
    pub fn write(&self, dir: &Path) -> Result<(), SourceError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_new(&dir.join(ICA_CERT_FILE), &self.ica_cert_der)?;
        write_new(&dir.join(ROOT_CERT_FILE), &self.root_cert_der)?;
        for p in &self.packages {
            let pkg = dir.join(p.dir_name());
            std::fs::create_dir(&pkg).map_err(io(&pkg))?;
            write_new(&pkg.join(FESN_FILE), p.fesn.as_bytes())?;
            write_new(&pkg.join(IRK_FILE), p.irk_base64.as_bytes())?;
            write_new(&pkg.join(PRIVATE_KEY_FILE), &p.private_key_der)?;
            write_new(&pkg.join(DEVICE_CERT_FILE), &p.device_cert_der)?;
        }
        Ok(())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// Builds a pool of `count` packages in memory. With a seed the result is
/// reproducible; without one it comes from the OS RNG.
pub fn build(count: usize, seed: Option<u64>) -> Result<FixturePool, SourceError> {
    let mut rng = match seed {
        Some(s) => rand::rngs::StdRng::seed_from_u64(s),
        None => rand::rngs::StdRng::from_entropy(),
    };
    let root_key = p256::SecretKey::random(&mut rng);
    let ica_key = p256::SecretKey::random(&mut rng);

    let root_params =
        |pad: usize| ca_params(root_dn(), 1, Knob::Policies(pad), &root_key, &[0x52; 8]);
    let root = sized(ROOT_CERT_TARGET, |pad| {
        root_params(pad)?.self_signed(&remote(&root_key)?)
    })?;

    let mut ica_serial = [0u8; 20];
    rng.fill_bytes(&mut ica_serial);
    let ica = sized(ICA_CERT_TARGET, |pad| {
        ca_params(ica_dn(), 0, Knob::SerialLen(pad), &ica_key, &ica_serial)?.signed_by(
            &remote(&ica_key)?,
            &root,
            &remote(&root_key)?,
        )
    })?;

    let first = 0x1E + (rng.next_u32() % 0x1000) as usize;
    let mut packages = Vec::with_capacity(count);
    for i in 0..count {
        let fesn = format!("1KM{:05X}", first + i);
        let mut spid_bytes = [0u8; 20];
        rng.fill_bytes(&mut spid_bytes);
        let mut irk = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(irk.as_mut());
        let mut serial = [0u8; 8];
        rng.fill_bytes(&mut serial);
        let key = p256::SecretKey::random(&mut rng);
        let cert = sized(DEVICE_CERT_TARGET, |pad| {
            device_params(&fesn, Knob::CrlUri(pad), &key, &serial)?.signed_by(
                &remote(&key)?,
                &ica,
                &remote(&ica_key)?,
            )
        })?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| SourceError::Fixture(e.to_string()))?;
        packages.push(FixturePackage {
            fesn,
            spid: hex::encode_upper(spid_bytes),
            irk_base64: Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(irk.as_ref()),
            ),
            private_key_der: Zeroizing::new(der.as_bytes().to_vec()),
            device_cert_der: cert.der().to_vec(),
        });
    }
    Ok(FixturePool {
        ica_cert_der: ica.der().to_vec(),
        root_cert_der: root.der().to_vec(),
        packages,
    })
}

/// Builds a pool and writes it to `dir` (the `kf-station fixtures generate` command).
pub fn generate(dir: &Path, count: usize, seed: Option<u64>) -> Result<FixturePool, SourceError> {
    let pool = build(count, seed)?;
    pool.write(dir)?;
    Ok(pool)
}

/// Calls `make` with growing padding until the DER size reaches `target`
/// (within the ±1 byte an ECDSA signature's DER length may vary by). Padding
/// 0 means no padding extension at all.
fn sized(
    target: usize,
    mut make: impl FnMut(usize) -> Result<rcgen::Certificate, rcgen::Error>,
) -> Result<rcgen::Certificate, SourceError> {
    let fixture_err = |e: rcgen::Error| SourceError::Fixture(e.to_string());
    let mut pad = 0usize;
    let mut best = make(pad).map_err(fixture_err)?;
    let mut cert_len = best.der().len();
    for _ in 0..8 {
        if cert_len.abs_diff(target) <= 1 || (cert_len > target && pad == 0) {
            break;
        }
        pad = if cert_len < target {
            pad + (target - cert_len)
        } else {
            pad.saturating_sub(cert_len - target)
        };
        let cert = make(pad).map_err(fixture_err)?;
        cert_len = cert.der().len();
        if cert_len.abs_diff(target) < best.der().len().abs_diff(target) {
            best = cert;
        }
    }
    Ok(best)
}

/// An rcgen key pair that signs with a `p256` key (deterministic ECDSA).
struct P256Remote {
    key: p256::ecdsa::SigningKey,
    public: Vec<u8>,
}

impl RemoteKeyPair for P256Remote {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sig: p256::ecdsa::Signature = self.key.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn remote(key: &p256::SecretKey) -> Result<KeyPair, rcgen::Error> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let public = key.public_key().to_encoded_point(false).as_bytes().to_vec();
    KeyPair::from_remote(Box::new(P256Remote {
        key: p256::ecdsa::SigningKey::from(key),
        public,
    }))
}

/// Subject key identifier: leftmost 160 bits of SHA-256 of the public key
/// (RFC 7093 §2 method 1).
fn key_id(key: &p256::SecretKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let digest = Sha256::digest(key.public_key().to_encoded_point(false).as_bytes());
    digest[..20].to_vec()
}

fn root_dn() -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "Ford Motor Company");
    dn.push(DnType::CommonName, "FMC-NFC-ROOT");
    dn
}

fn ica_dn() -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "FMC-NFC-ICA");
    dn
}

/// How a certificate's size is tuned, with 1-byte steps where possible.
#[derive(Clone, Copy)]
enum Knob {
    /// certificatePolicies with a CPS URI of this many extra characters (0: no extension).
    Policies(usize),
    /// Serial number of `1 + n` bytes (at most 20, RFC 5280 §4.1.2.2).
    SerialLen(usize),
    /// CRL distribution point URI with this many extra characters.
    CrlUri(usize),
}

impl Knob {
    fn apply(self, params: &mut CertificateParams, serial: &[u8]) {
        let serial_len = match self {
            Knob::SerialLen(n) => (1 + n).min(20),
            _ => 8,
        };
        let mut serial = serial[..serial_len.min(serial.len())].to_vec();
        if let Some(first) = serial.first_mut() {
            *first = (*first & 0x7F) | 0x40; // positive, minimal INTEGER
        }
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        match self {
            Knob::Policies(pad) => {
                params.custom_extensions = policies_extension(pad).into_iter().collect();
            }
            Knob::CrlUri(pad) => {
                let mut uri = String::from("http://pki.fixtures.invalid/FMC-NFC-ICA.crl");
                uri.insert_str(28, &filler(pad));
                params.crl_distribution_points =
                    vec![rcgen::CrlDistributionPoint { uris: vec![uri] }];
            }
            Knob::SerialLen(_) => {}
        }
    }
}

fn filler(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

fn ca_params(
    dn: DistinguishedName,
    path_len: u8,
    knob: Knob,
    key: &p256::SecretKey,
    serial: &[u8],
) -> Result<CertificateParams, rcgen::Error> {
    let profile = Profile {
        validity: ((2024, 1, 1), (2049, 12, 31)),
        is_ca: IsCa::Ca(BasicConstraints::Constrained(path_len)),
        key_usages: vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ],
    };
    Ok(profile.params(dn, knob, key, serial))
}

fn device_params(
    fesn: &str,
    knob: Knob,
    key: &p256::SecretKey,
    serial: &[u8],
) -> Result<CertificateParams, rcgen::Error> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, fesn);
    let profile = Profile {
        validity: ((2025, 6, 1), (2045, 5, 31)),
        is_ca: IsCa::NoCa,
        key_usages: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ],
    };
    Ok(profile.params(dn, knob, key, serial))
}

/// What sets a CA certificate apart from a device certificate.
struct Profile {
    /// First and last valid day, (year, month, day).
    validity: ((i32, u8, u8), (i32, u8, u8)),
    is_ca: IsCa,
    key_usages: Vec<KeyUsagePurpose>,
}

impl Profile {
    /// The certificate's parameters: this profile, the key identifier of
    /// `key` with an authority key identifier, then the knob's defect.
    fn params(
        self,
        dn: DistinguishedName,
        knob: Knob,
        key: &p256::SecretKey,
        serial: &[u8],
    ) -> CertificateParams {
        let ((y0, m0, d0), (y1, m1, d1)) = self.validity;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        params.is_ca = self.is_ca;
        params.key_usages = self.key_usages;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(key));
        params.use_authority_key_identifier_extension = true;
        knob.apply(&mut params, serial);
        params
    }
}

/// certificatePolicies (RFC 5280 §4.2.1.4) with one policy and a CPS URI of
/// `pad - 1` extra characters; none for `pad` 0.
fn policies_extension(pad: usize) -> Option<CustomExtension> {
    let pad = pad.checked_sub(1)?;
    const ID_CE_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
    // Private-enterprise style policy OID for the synthetic PKI; id-qt-cps.
    const POLICY_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0xB0, 0x1A, 0x01, 0x01];
    const ID_QT_CPS: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x01];
    let uri = format!("https://pki.fixtures.invalid/keyfob/cps{}", filler(pad));
    let qualifier = tlv(
        0x30,
        &[tlv(0x06, ID_QT_CPS), tlv(0x16, uri.as_bytes())].concat(),
    );
    let info = tlv(
        0x30,
        &[tlv(0x06, POLICY_OID), tlv(0x30, &qualifier)].concat(),
    );
    Some(CustomExtension::from_oid_content(
        ID_CE_CERTIFICATE_POLICIES,
        tlv(0x30, &info),
    ))
}

/// DER TLV with a definite length (X.690 §8.1.3).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}
