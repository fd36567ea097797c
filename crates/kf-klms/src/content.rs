//! Per-fob personalization content (the DGIs A001–A006) behind a trait.
//!
//! [`SynthesizedContent`] makes realistic content per request: a fresh P-256
//! key, a device certificate with CN = FESN signed by the fob ICA, a 40-hex
//! SPID and a random 16-byte BLE IRK.

use std::fmt;

use rand::RngCore;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, KeyUsagePurpose};
use zeroize::Zeroizing;

use crate::pki::{ca_params, FOB_ICA_CN};

/// Content errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// Certificate or key generation failed.
    #[error("content generation failed: {0}")]
    Generation(String),
    /// Configured content could not be loaded.
    #[error("content configuration: {0}")]
    Config(String),
    /// No content left for a new fob.
    #[error("no personalization content left")]
    Exhausted,
    /// A package was claimed but the claim could not be made durable; the
    /// package stays claimed and is not handed out.
    #[error("could not record the claim of package {}: {source}", path.display())]
    Claim {
        /// The package directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Plaintext personalization items of one fob (the private scalar is encrypted
/// under the fob's static DEK before it leaves the server).
pub struct FobContent {
    /// Fob serial number, e.g. `1KM0001E` (the device certificate's CN).
    pub fesn: String,
    /// SPID: 40 upper-case hex characters (DGI A001 stores them as ASCII).
    pub spid_hex: String,
    /// Device certificate, DER (A002).
    pub device_cert_der: Vec<u8>,
    /// P-256 private scalar (A003 before encryption).
    pub private_scalar: Zeroizing<[u8; 32]>,
    /// ICA certificate, DER (A004).
    pub ica_cert_der: Vec<u8>,
    /// Root certificate, DER (A005).
    pub root_cert_der: Vec<u8>,
    /// BLE identity resolving key (A006).
    pub irk: Zeroizing<[u8; 16]>,
}

impl fmt::Debug for FobContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FobContent")
            .field("fesn", &self.fesn)
            .field("spid_hex", &self.spid_hex)
            .field("device_cert_len", &self.device_cert_der.len())
            .field("private_scalar", &"<redacted>")
            .field("irk", &"<redacted>")
            .finish()
    }
}

/// Source of per-fob content.
pub trait ContentProvider: Send + Sync + 'static {
    /// Content for the fob with this UID.
    fn content_for(&self, fob_uid: &[u8]) -> Result<FobContent, ContentError>;
}

/// Generates content on the fly from a fob ICA (development and tests).
pub struct SynthesizedContent {
    ica_key: KeyPair,
    ica_issuer: rcgen::Certificate,
    ica_cert_der: Vec<u8>,
    root_cert_der: Vec<u8>,
}

fn pem_to_der(what: &'static str, pem: &str) -> Result<Vec<u8>, ContentError> {
    crate::tls::certs_from_pem(what, pem)
        .map_err(|e| ContentError::Config(e.to_string()))?
        .into_iter()
        .next()
        .map(|c| c.to_vec())
        .ok_or_else(|| ContentError::Config(format!("{what}: empty")))
}

impl SynthesizedContent {
    /// Builds the generator from the fob ICA certificate and key and the root
    /// certificate (PEM, as written by `kf-klms pki init`).
    pub fn new(
        ica_cert_pem: &str,
        ica_key_pem: &str,
        root_cert_pem: &str,
    ) -> Result<Self, ContentError> {
        let ica_key =
            KeyPair::from_pem(ica_key_pem).map_err(|e| ContentError::Config(e.to_string()))?;
        // rcgen signs with an issuer certificate object; one rebuilt from the same
        // subject and key yields the same issuer name and authority key id.
        let ica_issuer = ca_params(FOB_ICA_CN)
            .and_then(|p| p.self_signed(&ica_key))
            .map_err(|e| ContentError::Config(e.to_string()))?;
        Ok(SynthesizedContent {
            ica_key,
            ica_issuer,
            ica_cert_der: pem_to_der("fob ICA certificate", ica_cert_pem)?,
            root_cert_der: pem_to_der("fob root certificate", root_cert_pem)?,
        })
    }
}

/// The private scalar of a P-256 PKCS#8 key we generated ourselves.
///
/// `p256::SecretKey::from_pkcs8_der` re-derives the public key (a pure-Rust
/// scalar multiplication, twice) to check it against the embedded one; that
/// was the largest CPU cost of an issuance. The key comes from `ring` in this
/// process, so the structure and the scalar range are checked, not the
/// public point.
fn p256_scalar_from_pkcs8(pkcs8: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    use der::{Decode, Reader};
    const EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const SECP256R1: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let info = p256::pkcs8::PrivateKeyInfo::from_der(pkcs8).ok()?;
    if info.algorithm.oid != EC_PUBLIC_KEY || info.algorithm.parameters_oid().ok()? != SECP256R1 {
        return None;
    }
    // ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING,
    //                             [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
    let mut reader = der::SliceReader::new(info.private_key).ok()?;
    let key: &[u8] = reader
        .sequence(|seq| {
            if u8::decode(seq)? != 1 {
                return Err(der::Tag::Integer.value_error());
            }
            let key = der::asn1::OctetStringRef::decode(seq)?;
            seq.read_slice(seq.remaining_len())?;
            Ok(key.as_bytes())
        })
        .ok()?;
    // Range check only (non-zero, below the group order): no point multiplication.
    let secret = p256::SecretKey::from_slice(key).ok()?;
    let mut scalar = Zeroizing::new([0u8; 32]);
    scalar.copy_from_slice(&secret.to_bytes());
    Some(scalar)
}

impl ContentProvider for SynthesizedContent {
    fn content_for(&self, _fob_uid: &[u8]) -> Result<FobContent, ContentError> {
        let gen = |e: rcgen::Error| ContentError::Generation(e.to_string());
        let mut rng = rand::thread_rng();
        let fesn = format!("1KM{:05X}", rng.next_u32() & 0xF_FFFF);
        let mut spid = [0u8; 20];
        rng.fill_bytes(&mut spid);
        let mut irk = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(irk.as_mut());

        let key = KeyPair::generate().map_err(gen)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, fesn.as_str());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(20 * 365);
        let cert = params
            .signed_by(&key, &self.ica_issuer, &self.ica_key)
            .map_err(gen)?;

        let pkcs8 = Zeroizing::new(key.serialize_der());
        let scalar = p256_scalar_from_pkcs8(&pkcs8).ok_or_else(|| {
            ContentError::Generation("generated key is not a P-256 PKCS#8 key".into())
        })?;

        Ok(FobContent {
            fesn,
            spid_hex: hex::encode_upper(spid),
            device_cert_der: cert.der().to_vec(),
            private_scalar: scalar,
            ica_cert_der: self.ica_cert_der.clone(),
            root_cert_der: self.root_cert_der.clone(),
            irk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesized_scalar_matches_the_device_certificate() {
        let pki = crate::pki::DevPki::generate("Test CA", &["station-01"]).unwrap();
        let content = SynthesizedContent::new(
            &pki.fob_ica.cert_pem,
            &pki.fob_ica.key_pem,
            &pki.fob_root.cert_pem,
        )
        .unwrap();
        for _ in 0..4 {
            let c = content.content_for(&[0x04; 10]).unwrap();
            let secret = p256::SecretKey::from_slice(c.private_scalar.as_ref()).unwrap();
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &secret.public_key(),
                false,
            );
            let cert =
                <x509_cert::Certificate as der::Decode>::from_der(&c.device_cert_der).unwrap();
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .as_bytes()
                .unwrap()
                .to_vec();
            assert_eq!(spki, point.as_bytes());
        }
    }

    #[test]
    fn scalar_extraction_refuses_other_keys() {
        assert!(p256_scalar_from_pkcs8(b"not der").is_none());
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert!(p256_scalar_from_pkcs8(&p384.serialize_der()).is_none());
        let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(p256_scalar_from_pkcs8(&p256.serialize_der()).is_some());
    }
}
