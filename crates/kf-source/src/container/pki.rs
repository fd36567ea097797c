//! X.509 and EC key checks for container packages (RFC 5280 §4.1, RFC 5915,
//! RFC 5208/5958, SEC 1 §2.3.3; ECDSA signatures per RFC 5758 §3.2).

use der::{Decode, Encode};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256, Sha384};
use x509_cert::Certificate;

use super::ContainerErrorKind;

/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480 §2.1.1.1).
const OID_P256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1`.
const OID_P384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `ecdsa-with-SHA256` (RFC 5758 §3.2).
const OID_ECDSA_SHA256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384`.
const OID_ECDSA_SHA384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// `id-at-commonName` (X.520).
const OID_CN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");

/// A certificate's public key as far as this station can verify with it.
pub(crate) enum EcPublicKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

/// Parses a DER certificate strictly (trailing bytes rejected).
pub(crate) fn parse_certificate(der_bytes: &[u8]) -> Result<Certificate, ContainerErrorKind> {
    Certificate::from_der(der_bytes).map_err(|e| ContainerErrorKind::BadCertificate {
        reason: e.to_string(),
    })
}

/// The subject public key of a certificate, when it is an EC P-256 or P-384 key.
pub(crate) fn ec_public_key(cert: &Certificate) -> Result<EcPublicKey, ContainerErrorKind> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let alg = &spki.algorithm;
    let curve = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    let unsupported = || ContainerErrorKind::UnsupportedKeyAlgorithm {
        algorithm: match curve {
            Some(c) => format!("{} / {}", alg.oid, c),
            None => alg.oid.to_string(),
        },
    };
    if alg.oid != OID_EC_PUBLIC_KEY {
        return Err(unsupported());
    }
    let point = spki.subject_public_key.raw_bytes();
    let bad_point = |_| ContainerErrorKind::BadCertificate {
        reason: "subject public key is not a valid EC point".to_owned(),
    };
    match curve {
        Some(c) if c == OID_P256 => p256::PublicKey::from_sec1_bytes(point)
            .map(EcPublicKey::P256)
            .map_err(bad_point),
        Some(c) if c == OID_P384 => p384::PublicKey::from_sec1_bytes(point)
            .map(EcPublicKey::P384)
            .map_err(bad_point),
        _ => Err(unsupported()),
    }
}

/// The P-256 subject public key of a device certificate.
pub(crate) fn p256_public_key(cert: &Certificate) -> Result<p256::PublicKey, ContainerErrorKind> {
    match ec_public_key(cert)? {
        EcPublicKey::P256(k) => Ok(k),
        EcPublicKey::P384(_) => Err(ContainerErrorKind::UnsupportedKeyAlgorithm {
            algorithm: "EC P-384 (the fob needs P-256)".to_owned(),
        }),
    }
}

/// Parses an EC P-256 private key: PKCS#8 (RFC 5958) first, then SEC 1 (RFC 5915).
pub(crate) fn parse_private_key(der_bytes: &[u8]) -> Result<p256::SecretKey, ContainerErrorKind> {
    if let Ok(key) = p256::SecretKey::from_pkcs8_der(der_bytes) {
        return Ok(key);
    }
    p256::SecretKey::from_sec1_der(der_bytes).map_err(|_| ContainerErrorKind::BadPrivateKey {
        reason: describe_private_key_failure(der_bytes),
    })
}

/// Says why neither format matched, without echoing key bytes.
fn describe_private_key_failure(der_bytes: &[u8]) -> String {
    match der::Document::from_der(der_bytes) {
        Err(e) => format!("not valid DER ({e})"),
        Ok(_) => match pkcs8::PrivateKeyInfo::try_from(der_bytes) {
            Ok(info) => format!(
                "PKCS#8 key of algorithm {} is not an EC P-256 key",
                info.algorithm.oid
            ),
            Err(_) => "neither a PKCS#8 nor a SEC 1 EC P-256 private key".to_owned(),
        },
    }
}

/// Checks that `cert` was issued by `issuer`: issuer DN equals the issuer's
/// subject DN and the ECDSA signature verifies with the issuer's public key.
pub(crate) fn check_issued_by(
    cert: &Certificate,
    issuer: &Certificate,
) -> Result<(), ContainerErrorKind> {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(ContainerErrorKind::IssuerMismatch {
            issuer: cert.tbs_certificate.issuer.to_string(),
            expected: issuer.tbs_certificate.subject.to_string(),
        });
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| ContainerErrorKind::BadCertificate {
            reason: e.to_string(),
        })?;
    let sig_alg = cert.signature_algorithm.oid;
    let digest: Vec<u8> = if sig_alg == OID_ECDSA_SHA256 {
        Sha256::digest(&tbs).to_vec()
    } else if sig_alg == OID_ECDSA_SHA384 {
        Sha384::digest(&tbs).to_vec()
    } else {
        return Err(ContainerErrorKind::UnsupportedKeyAlgorithm {
            algorithm: format!("signature algorithm {sig_alg}"),
        });
    };
    let sig = cert
        .signature
        .as_bytes()
        .ok_or(ContainerErrorKind::BadSignature)?;
    let verified = match ec_public_key(issuer)? {
        EcPublicKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
            .ok()
            .map(|s| p256::ecdsa::VerifyingKey::from(&k).verify_prehash(&digest, &s)),
        EcPublicKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
            .ok()
            .map(|s| p384::ecdsa::VerifyingKey::from(&k).verify_prehash(&digest, &s)),
    };
    match verified {
        Some(Ok(())) => Ok(()),
        _ => Err(ContainerErrorKind::BadSignature),
    }
}

/// The subject common name (first CN attribute), when it is a string type.
pub(crate) fn subject_cn(cert: &Certificate) -> Option<String> {
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == OID_CN)
        .and_then(|atv| {
            use der::{Tag, Tagged};
            match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                    std::str::from_utf8(atv.value.value())
                        .ok()
                        .map(str::to_owned)
                }
                _ => None,
            }
        })
}
