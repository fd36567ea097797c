//! Small owner-only files holding a secret (the storage key here, the `sks serve` TCP token):
//! created 0600 in the same call that creates them and linked into place atomically, read only
//! if they are regular files of mode 0600 (Unix) within a size cap.

use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// Creates `path` holding `hex(secret)` and a newline, where `secret` is `len` fresh random
/// bytes, owner-only and atomically ([`kf_secret_file::write_new`]): the file appears complete
/// or not at all, and a file that appeared meanwhile is never replaced.
pub fn create_random_hex(path: &Path, len: usize) -> Result<(), String> {
    use ring::rand::SecureRandom;
    let mut secret = Zeroizing::new(vec![0u8; len]);
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| "random generator failure".to_owned())?;
    let mut text = Zeroizing::new(hex::encode(secret.as_slice()));
    text.push('\n');
    kf_secret_file::write_new(path, text.as_bytes()).map_err(|e| format!("cannot create: {e}"))
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
