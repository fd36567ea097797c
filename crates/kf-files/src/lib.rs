//! Bounded, type-checked file input for every station and KLMS command.
//!
//! Every file read from outside the program goes through [`read_regular`]:
//!
//! ```text
//! path ──symlink_metadata──▶ regular file? (or a symlink, when allowed)
//!      ──open(O_NONBLOCK [| O_NOFOLLOW])──▶ handle
//!      ──fstat(handle)──▶ regular file? size ≤ cap?
//!      ──read at most cap + 1 bytes──▶ bytes (refused when over the cap)
//! ```
//!
//! A FIFO, device, socket or directory is refused with an error naming the
//! file; opening with `O_NONBLOCK` means even a FIFO swapped in between the
//! check and the open cannot block, and the type is checked again on the
//! opened handle (no check-then-use race). Standard input is read through
//! [`read_capped`]. [`confined_join`] keeps a name derived from user input
//! inside its directory.
//!
//! Depends on no other crate of the workspace and knows no file format.

use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How a symbolic link as the last path component is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Followed (configuration files named by the operator).
    Follow,
    /// Refused (files inside a package pool, which must not point elsewhere).
    Refuse,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// The file does not exist.
    #[error("file is missing")]
    Missing,
    /// Not a regular file.
    #[error("{0}; expected a regular file")]
    NotRegular(&'static str),
    /// Larger than the cap.
    #[error("larger than the limit of {cap} bytes")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A name that would leave its directory.
    #[error("{0}")]
    BadName(String),
    /// Any other I/O error.
    #[error("{0}")]
    Io(std::io::Error),
}

/// A file that could not be read, with the file it concerns.
pub type FileError = PathError<FileErrorKind>;

/// An error about one file or directory: the path at fault and what is wrong
/// with it, shown as `PATH: KIND`. Readers of other formats use it with a kind
/// of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError<K> {
    path: PathBuf,
    kind: K,
}

impl<K> PathError<K> {
    /// An error of `kind` about `path`.
    pub fn new(path: impl Into<PathBuf>, kind: K) -> PathError<K> {
        PathError {
            path: path.into(),
            kind,
        }
    }

    /// The file or directory at fault.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &K {
        &self.kind
    }
}

impl<K: fmt::Display> fmt::Display for PathError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl<K: fmt::Debug + fmt::Display> std::error::Error for PathError<K> {}

fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file (FIFO, socket or device)"
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            FileErrorKind::Missing
        } else {
            FileErrorKind::Io(e)
        };
        FileError::new(path, kind)
    }
}

/// Reads `path` as a regular file of at most `cap` bytes (see the module
/// documentation for the checks).
pub fn read_regular(path: &Path, cap: u64, links: Links) -> Result<Vec<u8>, FileError> {
    let pre = std::fs::symlink_metadata(path).map_err(io(path))?;
    let ft = pre.file_type();
    if ft.is_symlink() {
        if links == Links::Refuse {
            return Err(FileError::new(
                path,
                FileErrorKind::NotRegular(describe(ft)),
            ));
        }
    } else if !ft.is_file() {
        return Err(FileError::new(
            path,
            FileErrorKind::NotRegular(describe(ft)),
        ));
    }
    let file = open_nonblocking(path, links).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(FileError::new(
            path,
            FileErrorKind::NotRegular(describe(meta.file_type())),
        ));
    }
    if meta.len() > cap {
        return Err(FileError::new(path, FileErrorKind::TooLarge { cap }));
    }
    read_capped(file, cap, path)
}

/// [`read_regular`] for UTF-8 text.
pub fn read_regular_text(path: &Path, cap: u64, links: Links) -> Result<String, FileError> {
    let bytes = read_regular(path, cap, links)?;
    String::from_utf8(bytes).map_err(|_| FileError::new(path, FileErrorKind::NotUtf8))
}

/// Reads at most `cap` bytes from `reader` (e.g. standard input), refusing
/// more; `name` names the input in errors.
pub fn read_capped(reader: impl Read, cap: u64, name: &Path) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io(name))?;
    if bytes.len() as u64 > cap {
        return Err(FileError::new(name, FileErrorKind::TooLarge { cap }));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path, links: Links) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path, _links: Links) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Checks that `path` is a real directory (not a symbolic link), e.g. a
/// package folder inside a pool.
pub fn check_plain_dir(path: &Path) -> Result<(), FileError> {
    let ft = std::fs::symlink_metadata(path)
        .map_err(io(path))?
        .file_type();
    if ft.is_dir() {
        Ok(())
    } else {
        Err(FileError::new(
            path,
            FileErrorKind::NotRegular(if ft.is_symlink() {
                "a symbolic link; expected a directory"
            } else {
                "not a directory"
            }),
        ))
    }
}

/// Joins a single file-name component derived from user input to `dir`,
/// refusing anything that could leave it: separators, `..`, `.`, absolute
/// paths, drive prefixes, NUL and the empty name.
pub fn confined_join(dir: &Path, name: &str) -> Result<PathBuf, FileError> {
    let bad = |why: &str| {
        FileError::new(
            dir.join(name),
            FileErrorKind::BadName(format!("name {name:?} {why}")),
        )
    };
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.contains(['/', '\\', '\0']) {
        return Err(bad("contains a path separator or NUL"));
    }
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(dir.join(name)),
        _ => Err(bad("is not a plain file name")),
    }
}

/// Opens an existing regular file with `options` (plus, on Unix, no blocking
/// and no following of a final symbolic link), refusing whatever else is in
/// its place; returns it with its metadata.
fn open_existing_regular(
    path: &Path,
    options: &mut std::fs::OpenOptions,
) -> Result<(std::fs::File, std::fs::Metadata), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(FileError::new(
            path,
            FileErrorKind::NotRegular(describe(meta.file_type())),
        ));
    }
    Ok((file, meta))
}

/// Appends `bytes` to an existing regular file and syncs it; a FIFO, device
/// or symbolic link in its place is refused without blocking.
pub fn append_regular(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    use std::io::Write;
    let (mut file, _) = open_existing_regular(path, std::fs::OpenOptions::new().append(true))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(path))
}

/// Overwrites an existing regular file with zeros (same length), syncs it to
/// disk and removes it: how a file that held a secret (a package's private
/// key) is disposed of. A FIFO, device or symbolic link in its place is
/// refused without blocking or following it. A missing file is
/// [`FileErrorKind::Missing`].
///
/// On file systems that write elsewhere (copy-on-write, SSD wear levelling,
/// journalled data) the old blocks may survive; the overwrite removes the
/// key from the file's live content, not from the medium.
pub fn wipe_and_remove(path: &Path) -> Result<(), FileError> {
    use std::io::Write;
    let (mut file, meta) = open_existing_regular(path, std::fs::OpenOptions::new().write(true))?;
    let mut left = meta.len();
    let zeros = [0u8; 4096];
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all(&zeros[..n]).map_err(io(path))?;
        left -= n as u64;
    }
    file.sync_all().map_err(io(path))?;
    drop(file);
    std::fs::remove_file(path).map_err(io(path))
}

/// Cap of a TOML configuration file.
pub const CONFIG_MAX_BYTES: u64 = 64 * 1024;
/// Cap of a PEM file (a certificate chain or a key).
pub const PEM_MAX_BYTES: u64 = 1024 * 1024;
