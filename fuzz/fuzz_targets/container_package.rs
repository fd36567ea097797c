//! Container packages (the specified pool format): directory name,
//! `FESN.txt`, the Base64 IRK, the PKCS#8 device key, the device certificate and
//! the shared ICA/root certificates, validated in memory exactly as the
//! container source does after reading them.
//!
//! Input: one selector byte (low 3 bits: which of the seven inputs to change;
//! bit 3: replace it by the rest of the input, else splice the rest into the
//! valid original: two bytes position, one byte count removed, bytes inserted).
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use kf_source::container::{validate_package, PackageFiles, SharedCertificates};
use kf_source::fixtures::{self, FixturePool};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fn pool() -> &'static FixturePool {
    static POOL: OnceLock<FixturePool> = OnceLock::new();
    POOL.get_or_init(|| fixtures::build(1, Some(7)).expect("fixture pool"))
}

fn change(original: &[u8], replace: bool, rest: &[u8]) -> Vec<u8> {
    if replace {
        return rest.to_vec();
    }
    let [a, b, cut, insert @ ..] = rest else {
        return original.to_vec();
    };
    let pos = usize::from(u16::from_be_bytes([*a, *b])) % (original.len() + 1);
    let end = (pos + usize::from(*cut)).min(original.len());
    let mut out = original[..pos].to_vec();
    out.extend_from_slice(insert);
    out.extend_from_slice(&original[end..]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let pool = pool();
    let package = &pool.packages[0];
    let replace = selector & 0x08 != 0;
    let mut name = package.dir_name();
    let mut files: PackageFiles = package.files();
    let mut ica = pool.ica_cert_der.clone();
    let mut root = pool.root_cert_der.clone();
    match selector & 0x07 {
        0 => name = String::from_utf8_lossy(&change(name.as_bytes(), replace, rest)).into_owned(),
        1 => files.fesn_txt = change(&files.fesn_txt, replace, rest),
        2 => files.irk_key = Zeroizing::new(change(&files.irk_key, replace, rest)),
        3 => files.private_key_der = Zeroizing::new(change(&files.private_key_der, replace, rest)),
        4 => files.device_cert_der = change(&files.device_cert_der, replace, rest),
        5 => ica = change(&ica, replace, rest),
        _ => root = change(&root, replace, rest),
    }
    let dir = Path::new("pool").join(&name);
    let Ok(shared) = SharedCertificates::from_der(ica, root, Path::new("ica"), Path::new("root"))
    else {
        return;
    };
    let _ = validate_package(&dir, &name, &files, &shared);
});
