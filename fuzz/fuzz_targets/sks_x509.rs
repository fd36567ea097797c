//! SKS DER inputs: certificates of `setCertificatePath` (subject, SPKI),
//! public keys in SPKI form (ECDH peers, attestation keys), imported PKCS#8
//! private keys, signature verification and the stored device record.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sks_core::crypto::keys::{PrivateKey, PublicKey};
use sks_core::device::DeviceIdentity;
use sks_core::x509::{certificate_spki, certificate_subject};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let _ = certificate_subject(bytes);
    if let Ok(spki) = certificate_spki(bytes) {
        let _ = PublicKey::from_spki(&spki);
    }
    let cut = usize::from(split).min(bytes.len());
    let (key, signature) = bytes.split_at(cut);
    if let Ok(public) = PublicKey::from_spki(key) {
        let _ = public.to_spki();
        let _ = public.verify_sha256(b"message", signature);
    }
    let _ = PrivateKey::from_pkcs8(bytes);
    let _ = DeviceIdentity::from_record(bytes);
});
