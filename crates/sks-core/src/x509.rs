//! X.509 helpers: reading the public key of an end-entity certificate, and issuing
//! certificates (the device certificate at `sks init`, and the issuer CA of `sks-issuer`).

use der::{Decode, Encode};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_cert::Certificate;

/// Certificate building or parsing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X.509 error: {0}")]
pub struct X509Error(pub String);

/// The SubjectPublicKeyInfo DER of a certificate.
pub fn certificate_spki(cert_der: &[u8]) -> Result<Vec<u8>, X509Error> {
    let cert = Certificate::from_der(cert_der).map_err(|e| X509Error(e.to_string()))?;
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| X509Error(e.to_string()))
}

/// The subject DN of a certificate, RFC 4514 style.
pub fn certificate_subject(cert_der: &[u8]) -> Result<String, X509Error> {
    let cert = Certificate::from_der(cert_der).map_err(|e| X509Error(e.to_string()))?;
    Ok(cert.tbs_certificate.subject.to_string())
}

/// Issues a certificate signed by a P-256 key with ECDSA-SHA256.
///
/// `issuer` = `None` makes a self-signed root (the subject key must be `signer`'s key).
pub fn issue_certificate(
    signer: &p256::SecretKey,
    issuer: Option<&str>,
    subject: &str,
    subject_spki: &[u8],
    serial: u64,
    valid_for: Duration,
) -> Result<Vec<u8>, X509Error> {
    let e = |e: &dyn std::fmt::Display| X509Error(e.to_string());
    let subject_name = Name::from_str(subject).map_err(|x| e(&x))?;
    let profile = match issuer {
        None => Profile::Root,
        Some(i) => Profile::Leaf {
            issuer: Name::from_str(i).map_err(|x| e(&x))?,
            enable_key_agreement: true,
            enable_key_encipherment: true,
        },
    };
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_spki).map_err(|x| e(&x))?;
    let signing_key = p256::ecdsa::SigningKey::from(signer);
    let serial = SerialNumber::from(serial);
    let validity = Validity::from_now(valid_for).map_err(|x| e(&x))?;
    let builder =
        CertificateBuilder::new(profile, serial, validity, subject_name, spki, &signing_key)
            .map_err(|x| e(&x))?;
    let cert = builder
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|x| e(&x))?;
    cert.to_der().map_err(|x| e(&x))
}
