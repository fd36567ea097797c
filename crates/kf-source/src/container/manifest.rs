//! The optional signed manifest of a container package (`manifest.json`
//! beside the four files of the specified "Container Directory Format").
//!
//! ```json
//! {"format": "kf-package-manifest/v1",
//!  "package": "1KM0001E-59918C0096F859EC8BF6DA454E2E554A14DD4BD1",
//!  "files": {"FESN.txt": "<sha256 hex>", "irk_keyfob.key": "<sha256 hex>",
//!            "keyfob_private.der": "<sha256 hex>", "keyfob_public.der": "<sha256 hex>"},
//!  "signature": "<Base64 of a DER ECDSA P-256 / SHA-256 signature>"}
//! ```
//!
//! The signature is over this text (UTF-8, each line ending in `\n`, hashes
//! as 64 lower-case hex digits, files in the order shown), not over the JSON:
//!
//! ```text
//! kf-package-manifest/v1
//! package=<directory name>
//! FESN.txt=<sha256>
//! irk_keyfob.key=<sha256>
//! keyfob_private.der=<sha256>
//! keyfob_public.der=<sha256>
//! ```
//!
//! so a producer can sign it with any ECDSA tool (e.g. `openssl dgst -sha256
//! -sign producer.key`). The directory name is signed because it carries the
//! SPID (DGI A001). The JSON is parsed strictly: unknown or duplicate fields,
//! a missing file entry or a malformed hash are refused.

use sha2::{Digest, Sha256};

use super::package::{PackageFiles, DEVICE_CERT_FILE, FESN_FILE, IRK_FILE, PRIVATE_KEY_FILE};
use super::{ContainerError, ContainerErrorKind};
use std::path::Path;

/// Manifest file name, in the package directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Value of the `format` field and first line of the signed text.
pub const MANIFEST_FORMAT: &str = "kf-package-manifest/v1";
/// Cap of `manifest.json`.
pub const MANIFEST_MAX_BYTES: u64 = 8 * 1024;

/// How a pool treats manifests.
#[derive(Debug, Clone, Default)]
pub struct ManifestPolicy {
    /// The producer's public key; a manifest is verified with it.
    pub key: Option<p256::PublicKey>,
    /// A package without a manifest is refused.
    pub required: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    format: String,
    package: String,
    files: FileHashes,
    signature: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHashes {
    #[serde(rename = "FESN.txt")]
    fesn: String,
    #[serde(rename = "irk_keyfob.key")]
    irk: String,
    #[serde(rename = "keyfob_private.der")]
    private_key: String,
    #[serde(rename = "keyfob_public.der")]
    device_cert: String,
}

/// `(file name, content)` of the covered files, in signing order.
fn covered(files: &PackageFiles) -> [(&'static str, &[u8]); 4] {
    [
        (FESN_FILE, &files.fesn_txt),
        (IRK_FILE, &files.irk_key),
        (PRIVATE_KEY_FILE, &files.private_key_der),
        (DEVICE_CERT_FILE, &files.device_cert_der),
    ]
}

/// The text the signature covers, from the package name and file hashes.
fn signed_text(name: &str, hashes: &[(&str, String)]) -> String {
    let mut text = format!("{MANIFEST_FORMAT}\npackage={name}\n");
    for (file, hash) in hashes {
        text.push_str(file);
        text.push('=');
        text.push_str(hash);
        text.push('\n');
    }
    text
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes the manifest JSON of a package (for producers and tests): the
/// hashes of `files`, signed with `key`.
pub fn sign_manifest(name: &str, files: &PackageFiles, key: &p256::ecdsa::SigningKey) -> String {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    let hashes: Vec<(&str, String)> = covered(files)
        .iter()
        .map(|(f, b)| (*f, sha256_hex(b)))
        .collect();
    let signature: p256::ecdsa::Signature = key.sign(signed_text(name, &hashes).as_bytes());
    let mut json = serde_json::json!({
        "format": MANIFEST_FORMAT,
        "package": name,
        "files": {},
        "signature": base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
    });
    for (file, hash) in hashes {
        json["files"][file] = hash.into();
    }
    json.to_string()
}

/// Checks the manifest of the package in `dir` against `policy` and the
/// bytes read: absent (refused when required), or present and then the
/// producer key must be configured, the JSON strict, the package name equal
/// to the directory's, every hash equal and the signature valid.
pub(crate) fn check(
    dir: &Path,
    name: &str,
    files: &PackageFiles,
    policy: &ManifestPolicy,
) -> Result<(), ContainerError> {
    let path = dir.join(MANIFEST_FILE);
    let err = |kind| ContainerError::new(&path, kind);
    let text = match kf_files::read_regular(&path, MANIFEST_MAX_BYTES, kf_files::Links::Refuse) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), kf_files::FileErrorKind::Missing) => {
            return if policy.required {
                Err(err(ContainerErrorKind::ManifestMissing))
            } else {
                Ok(())
            };
        }
        Err(e) => {
            return Err(err(ContainerErrorKind::Io {
                reason: e.kind().to_string(),
            }))
        }
    };
    let key = policy
        .key
        .as_ref()
        .ok_or_else(|| err(ContainerErrorKind::ManifestKeyMissing))?;
    let invalid = |reason: String| err(ContainerErrorKind::BadManifest { reason });
    let manifest: ManifestJson =
        serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(invalid(format!("format is not {MANIFEST_FORMAT:?}")));
    }
    if manifest.package != name {
        return Err(invalid(format!(
            "it is the manifest of package {:?}",
            manifest.package
        )));
    }
    let listed = [
        (FESN_FILE, &manifest.files.fesn),
        (IRK_FILE, &manifest.files.irk),
        (PRIVATE_KEY_FILE, &manifest.files.private_key),
        (DEVICE_CERT_FILE, &manifest.files.device_cert),
    ];
    let mut hashes = Vec::with_capacity(listed.len());
    for ((file, listed_hash), (_, bytes)) in listed.iter().zip(covered(files)) {
        if listed_hash.len() != 64
            || !listed_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(format!(
                "the hash of {file} is not 64 lower-case hex digits"
            )));
        }
        if sha256_hex(bytes) != **listed_hash {
            return Err(ContainerError::new(
                dir.join(file),
                ContainerErrorKind::ManifestHashMismatch,
            ));
        }
        hashes.push((*file, (*listed_hash).clone()));
    }
    let der = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(manifest.signature.as_bytes())
            .map_err(|_| invalid("the signature is not Base64".into()))?
    };
    let signature = p256::ecdsa::Signature::from_der(&der)
        .map_err(|_| invalid("the signature is not a DER ECDSA signature".into()))?;
    let verifying = p256::ecdsa::VerifyingKey::from(key);
    p256::ecdsa::signature::Verifier::verify(
        &verifying,
        signed_text(name, &hashes).as_bytes(),
        &signature,
    )
    .map_err(|_| err(ContainerErrorKind::BadManifestSignature))
}

/// Loads a producer public key (PEM `PUBLIC KEY`, EC P-256) from a file.
pub fn load_producer_key(path: &Path) -> Result<p256::PublicKey, ContainerError> {
    use p256::pkcs8::DecodePublicKey;
    let text = kf_files::read_regular_text(path, kf_files::PEM_MAX_BYTES, kf_files::Links::Follow)
        .map_err(|e| {
            ContainerError::new(
                path,
                ContainerErrorKind::Io {
                    reason: e.kind().to_string(),
                },
            )
        })?;
    p256::PublicKey::from_public_key_pem(&text).map_err(|e| {
        ContainerError::new(
            path,
            ContainerErrorKind::BadProducerKey {
                reason: e.to_string(),
            },
        )
    })
}
