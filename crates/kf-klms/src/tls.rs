//! Mutual TLS: server configuration and station identity (client certificate CN).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// TLS set-up errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no usable item.
    #[error("{what}: no {expected} found in PEM (found: {found})")]
    EmptyPem {
        /// Which input.
        what: &'static str,
        /// What was looked for.
        expected: &'static str,
        /// The PEM labels that were there (`nothing` when none).
        found: String,
    },
    /// A PEM input could not be read.
    #[error("{what}: unreadable PEM: {source}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Parser error.
        source: std::io::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// PEM inputs of the server side.
pub struct TlsMaterial {
    /// CA that issues station (client) certificates.
    pub client_ca_pem: String,
    /// Server certificate chain (leaf first).
    pub server_cert_pem: String,
    /// Server private key (PKCS#8 or SEC1).
    pub server_key_pem: String,
}

/// Parses all certificates of a PEM text.
pub fn certs_from_pem(
    what: &'static str,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(TlsError::EmptyPem {
            what,
            expected: "certificate",
            found: pem_labels(pem),
        });
    }
    Ok(certs)
}

/// The kinds of the PEM items in a text, comma separated (for errors: says
/// "certificate" when a key file holds a certificate).
fn pem_labels(pem: &str) -> String {
    use rustls_pemfile::Item;
    let kinds: Vec<&str> = rustls_pemfile::read_all(&mut pem.as_bytes())
        .take(8)
        .map(|item| match item {
            Ok(Item::X509Certificate(_)) => "certificate",
            Ok(Item::Pkcs1Key(_) | Item::Pkcs8Key(_) | Item::Sec1Key(_)) => "private key",
            Ok(Item::Crl(_)) => "CRL",
            Ok(Item::Csr(_)) => "certificate request",
            Ok(Item::SubjectPublicKeyInfo(_)) => "public key",
            Ok(_) => "other item",
            Err(_) => "unreadable item",
        })
        .collect();
    if kinds.is_empty() {
        "nothing".to_owned()
    } else {
        kinds.join(", ")
    }
}

/// Parses the first private key of a PEM text.
pub fn key_from_pem(what: &'static str, pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|source| TlsError::Pem { what, source })?
        .ok_or_else(|| TlsError::EmptyPem {
            what,
            expected: "private key",
            found: pem_labels(pem),
        })
}

/// Builds the rustls server configuration: TLS 1.2/1.3 with ring, a client
/// certificate required and verified against `client_ca_pem` only.
pub fn server_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs_from_pem("client CA", &material.client_ca_pem)? {
        roots.add(ca)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let chain = certs_from_pem("server certificate", &material.server_cert_pem)?;
    let key = key_from_pem("server key", &material.server_key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The rustls client configuration for the PostgreSQL ledger connection:
/// TLS 1.2/1.3 with ring, the server certificate verified against `ca_pem`
/// only (not the system roots) and for the host name of the ledger URL.
pub fn ledger_client_config(ca_pem: &str) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs_from_pem("ledger CA", ca_pem)? {
        roots.add(ca)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Common name (OID 2.5.4.3) of a certificate's subject, if it has one.
pub fn subject_common_name(cert_der: &[u8]) -> Option<String> {
    use der::asn1::{PrintableStringRef, Utf8StringRef};
    use der::Decode;
    const CN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != CN {
                continue;
            }
            if let Ok(s) = atv.value.decode_as::<Utf8StringRef<'_>>() {
                return Some(s.as_str().to_owned());
            }
            if let Ok(s) = atv.value.decode_as::<PrintableStringRef<'_>>() {
                return Some(s.as_str().to_owned());
            }
        }
    }
    None
}
