//! The claim ledger of a package pool: one marker file per claimed package in
//! `POOL/.used/`, created with `create_new` so a claim is atomic.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::SourceError;

/// Ledger directory name inside the pool.
pub(crate) const LEDGER_DIR: &str = ".used";
/// Largest claim marker (a UID line, a time line and a status line).
const MARKER_MAX_BYTES: u64 = 1024;

/// A recorded claim.
pub(crate) struct ClaimRecord {
    pub(crate) package: String,
    uid_hex: Option<String>,
    rejected: bool,
}

/// Result of a claim attempt.
pub(crate) enum Claim {
    /// The fob already holds a claim on this package.
    Existing(String),
    /// A package newly claimed for the fob.
    New(String),
    /// The fob already holds a claim on this package, which has left the
    /// pool for the done directory (the fob passed with it).
    Done(String),
    /// No unclaimed package is left.
    None,
}

pub(crate) struct Ledger {
    pool: PathBuf,
    dir: PathBuf,
    skip: Option<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Package directory names of a pool, sorted byte-wise; hidden entries,
/// plain files and the directory named `skip` (the done directory when it
/// lies inside the pool) are skipped.
pub(crate) fn package_names(pool: &Path, skip: Option<&str>) -> Result<Vec<String>, SourceError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(pool).map_err(io_err(pool))? {
        let entry = entry.map_err(io_err(pool))?;
        let is_dir = entry.file_type().map_err(io_err(pool))?.is_dir();
        // Non-UTF-8 names cannot be packages (FESN and SPID are ASCII).
        if let Some(name) = entry.file_name().to_str() {
            if is_dir && !name.starts_with('.') && Some(name) != skip {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

impl Ledger {
    /// The ledger of `pool`; `skip` names a directory of the pool that is
    /// not a package (the done directory).
    pub(crate) fn new(pool: &Path, skip: Option<&str>) -> Ledger {
        Ledger {
            pool: pool.to_path_buf(),
            dir: pool.join(LEDGER_DIR),
            skip: skip.map(str::to_owned),
        }
    }

    /// Package directory names of the pool (see [`package_names`]).
    pub(crate) fn package_names(&self) -> Result<Vec<String>, SourceError> {
        package_names(&self.pool, self.skip.as_deref())
    }

    /// Releases the claim on `name` (its marker is removed) unless the
    /// package was rejected; a missing marker is not an error.
    pub(crate) fn release(&self, name: &str) -> Result<(), SourceError> {
        let marker = kf_files::confined_join(&self.dir, name)?;
        let rejected = self
            .claims()?
            .iter()
            .any(|c| c.package == name && c.rejected);
        if rejected {
            return Ok(());
        }
        match std::fs::remove_file(&marker) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&marker)(e)),
        }
    }

    /// Every claim recorded so far.
    pub(crate) fn claims(&self) -> Result<Vec<ClaimRecord>, SourceError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut claims = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue; // temporary files of an interrupted writer
            }
            // A marker is a few short lines; anything else in its place (a
            // FIFO, a link, a large file) stops the pool with a clear error.
            let path = entry.path();
            let bytes = kf_files::read_regular(&path, MARKER_MAX_BYTES, kf_files::Links::Refuse)?;
            let text = String::from_utf8_lossy(&bytes);
            let uid_hex = text
                .lines()
                .find_map(|l| l.strip_prefix("uid="))
                .map(str::to_owned);
            let rejected = text.lines().any(|l| l == "status=rejected");
            claims.push(ClaimRecord {
                package: name,
                uid_hex,
                rejected,
            });
        }
        Ok(claims)
    }

    /// Claims a package for `uid`: the one it already holds, else the next
    /// unclaimed one in sorted order.
    pub(crate) fn claim(&self, uid: &[u8], done_dir: &Path) -> Result<Claim, SourceError> {
        let uid_hex = hex::encode_upper(uid);
        let claims = self.claims()?;
        for own in claims
            .iter()
            .filter(|c| !c.rejected && c.uid_hex.as_deref() == Some(uid_hex.as_str()))
        {
            if self.pool.join(&own.package).is_dir() {
                return Ok(Claim::Existing(own.package.clone()));
            }
            if done_dir.join(&own.package).is_dir() {
                return Ok(Claim::Done(own.package.clone()));
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        for name in self.package_names()? {
            if claims.iter().any(|c| c.package == name) {
                continue;
            }
            let marker = self.dir.join(&name);
            let mut file = match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker)
            {
                Ok(f) => f,
                // Another station claimed it between our listing and now.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&marker)(e)),
            };
            let record = format!("uid={uid_hex}\nclaimed_unix_ms={}\n", crate::unix_millis());
            file.write_all(record.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io_err(&marker))?;
            return Ok(Claim::New(name));
        }
        Ok(Claim::None)
    }

    /// Marks a claimed package as rejected (it failed validation).
    pub(crate) fn mark_rejected(&self, name: &str) -> Result<(), SourceError> {
        let marker = kf_files::confined_join(&self.dir, name)?;
        Ok(kf_files::append_regular(&marker, b"status=rejected\n")?)
    }
}
