//! The claim ledger of a package pool: one marker file per claimed package in
//! `POOL/.used/`, created with `create_new` so a claim is atomic.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::SourceError;

/// Ledger directory name inside the pool.
pub(crate) const LEDGER_DIR: &str = ".used";

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
    /// No unclaimed package is left.
    None,
}

pub(crate) struct Ledger {
    pool: PathBuf,
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Package directory names of a pool, sorted byte-wise; hidden entries and
/// plain files are skipped.
pub(crate) fn package_names(pool: &Path) -> Result<Vec<String>, SourceError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(pool).map_err(io_err(pool))? {
        let entry = entry.map_err(io_err(pool))?;
        let is_dir = entry.file_type().map_err(io_err(pool))?.is_dir();
        // Non-UTF-8 names cannot be packages (FESN and SPID are ASCII).
        if let Some(name) = entry.file_name().to_str() {
            if is_dir && !name.starts_with('.') {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

impl Ledger {
    pub(crate) fn new(pool: &Path) -> Ledger {
        Ledger {
            pool: pool.to_path_buf(),
            dir: pool.join(LEDGER_DIR),
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
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
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
    pub(crate) fn claim(&self, uid: &[u8]) -> Result<Claim, SourceError> {
        let uid_hex = hex::encode_upper(uid);
        let claims = self.claims()?;
        if let Some(own) = claims
            .iter()
            .find(|c| !c.rejected && c.uid_hex.as_deref() == Some(uid_hex.as_str()))
        {
            if self.pool.join(&own.package).is_dir() {
                return Ok(Claim::Existing(own.package.clone()));
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        for name in package_names(&self.pool)? {
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
        let marker = self.dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&marker)
            .map_err(io_err(&marker))?;
        file.write_all(b"status=rejected\n")
            .and_then(|()| file.sync_all())
            .map_err(io_err(&marker))
    }
}
