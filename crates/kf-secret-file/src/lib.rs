//! Owner-only files for secrets (journal keys, storage keys, tokens, private
//! keys): one home for how they are created, so no caller can create one
//! world-readable first and restrict it afterwards.
//!
//! ```text
//! write_new(path, bytes)
//!   └─ create_new(dir/.NAME.<random>.tmp)   owner-only from the creating call:
//!        Unix     open(O_CREAT|O_EXCL, 0600)
//!        Windows  CreateFileW(CREATE_NEW) with a protected DACL:
//!                 owner, Administrators and SYSTEM, full access; nothing inherited
//!   └─ write, fsync
//!   └─ link into place without replacing (hard link; Windows: rename without
//!      replace), remove the temporary name, fsync the directory (Unix)
//! ```
//!
//! Reading back is the caller's job (it knows the format and its size cap);
//! [`check_owner_only`] tells whether an existing file is still owner-only.
//!
//! Depends on no other crate of the workspace and knows no secret's format.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(windows)]
mod windows;

/// The DACL given to secret files on Windows, in SDDL: protected (`P`, no
/// inherited entries), full access (`FA`) for the file's owner (`OW`),
/// the built-in Administrators (`BA`) and `SYSTEM` (`SY`).
pub const WINDOWS_SDDL: &str = "D:P(A;;FA;;;OW)(A;;FA;;;BA)(A;;FA;;;SY)";

/// Creates `path`, which must not exist, readable and writable by its owner
/// only, from the call that creates it (see the crate docs).
pub fn create_new(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }
    #[cfg(windows)]
    {
        windows::create_new_protected(path)
    }
    #[cfg(not(any(unix, windows)))]
    {
        std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(path)
    }
}

/// Writes `bytes` to a new owner-only file at `path`, atomically: the file
/// appears complete or not at all, and an existing file is never replaced
/// (`AlreadyExists`).
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_name(path, &dir)?;
    let written = create_new(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| link_new(&tmp, path));
    // The temporary name goes whether or not linking worked; a failure to
    // remove it is reported only when everything else succeeded.
    let removed = match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    linked?;
    removed?;
    sync_dir(&dir)
}

/// Who may read a file written by [`replace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Secrets: owner-only, as [`create_new`] makes them.
    OwnerOnly,
    /// Public material (certificates): 0644 on Unix, the directory's
    /// inherited ACL on Windows.
    Public,
}

/// Replaces `path` (or creates it) with `bytes` so that readers see the old
/// or the new content, never a mix: a new temporary file created with
/// `access` by the creating call, written and fsynced, renamed over `path`,
/// and the directory fsynced (Unix). On failure `path` is untouched and the
/// temporary file removed.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_name(path, &dir)?;
    let created = match access {
        Access::OwnerOnly => create_new(&tmp),
        Access::Public => create_new_public(&tmp),
    };
    let result = created
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        // The caller hears of the write failure; a leftover temporary name
        // (random, created with the same access) does not change it.
        std::fs::remove_file(&tmp).ok();
        return Err(e);
    }
    sync_dir(&dir)
}

fn create_new_public(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path)
}

/// Whether the existing file at `path` is owner-only: on Unix no group or
/// other permission bit is set; elsewhere always true (Windows files created
/// by [`create_new`] carry their ACL; a changed ACL is an administrator's act).
pub fn check_owner_only(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(meta.file_type().is_file() && meta.permissions().mode() & 0o077 == 0)
    }
    #[cfg(not(unix))]
    {
        Ok(meta.file_type().is_file())
    }
}

/// Creates the directory `path` (and its parents) for secrets: 0700 on Unix.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn temp_name(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix).map_err(|e| io::Error::other(e.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dir.join(format!(".{name}.{}.tmp", hex::encode(suffix))))
}

/// Gives the complete temporary file its final name without replacing
/// anything there: a hard link (Unix `link`, Windows `CreateHardLinkW`) fails
/// with `AlreadyExists` where a rename would overwrite.
fn link_new(tmp: &Path, path: &Path) -> io::Result<()> {
    std::fs::hard_link(tmp, path)
}

/// Makes the new directory entry durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directory entries cannot be flushed through std on this platform; NTFS
/// journals the metadata change itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn write_new_is_owner_only_complete_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.key");
        write_new(&path, b"secret\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret\n");
        assert!(check_owner_only(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = write_new(&path, b"other\n").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret\n");
        // No temporary file is left behind, in either case.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("journal.key")]);
    }

    #[test]
    fn replace_swaps_content_whole_and_keeps_the_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace(&path, b"old", Access::OwnerOnly).unwrap();
        replace(&path, b"new", Access::OwnerOnly).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(check_owner_only(&path).unwrap());
        let cert = dir.path().join("ca.pem");
        replace(&cert, b"cert", Access::Public).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
        // A directory in the way: the error comes back, nothing is left behind.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        let err = replace(&blocked, b"data", Access::OwnerOnly).unwrap_err();
        // rename(2) onto a directory: EISDIR.
        #[cfg(unix)]
        assert_eq!(err.kind(), std::io::ErrorKind::IsADirectory, "{err}");
        #[cfg(not(unix))]
        drop(err);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked", "ca.pem", "state.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn mode_is_0600_even_under_a_permissive_umask_and_group_bits_are_detected() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let f = create_new(&path).unwrap();
        drop(f);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!check_owner_only(&path).unwrap());
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(
            std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
