//! Small owner-only files holding a secret (the storage key here, the `sks serve` TCP token):
//! created 0600 in the same call that creates them and linked into place atomically, read only
//! if they are regular files of mode 0600 (Unix) within a size cap.

use std::io::{Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// Creates `path` holding `hex(secret)` and a newline, where `secret` is `len` fresh random
/// bytes: written to a temporary file created 0600, then hard-linked into place, so the file
/// appears complete or not at all and a file that appeared meanwhile is never replaced.
pub fn create_random_hex(path: &Path, len: usize) -> Result<(), String> {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut secret = Zeroizing::new(vec![0u8; len]);
    let mut suffix = [0u8; 8];
    rng.fill(&mut secret)
        .and_then(|()| rng.fill(&mut suffix))
        .map_err(|_| "random generator failure".to_owned())?;
    let text = Zeroizing::new(hex::encode(secret.as_slice()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".sks-secret-{}.tmp", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let removed = std::fs::remove_file(&tmp);
    linked.map_err(|e| format!("cannot create: {e}"))?;
    removed.map_err(|e| format!("cannot remove {}: {e}", tmp.display()))
}

/// Reads an owner-only secret file of at most `max` bytes, trimmed of surrounding whitespace.
pub fn read(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("mode {mode:o}; it must be 0600"));
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Zeroizing::new(bytes.trim_ascii().to_vec()))
}
