//! A backup of the data directory: a new directory holding `ferrosync.db` (a self-contained
//! SQLite file, one consistent snapshot) and `credentials.json` (the root credentials and the
//! master key that decrypts the API keys' secrets; without it the copy's keys are unusable).
//! `ferrosync backup` runs it in its own process when no server runs, or asks the running
//! server to, through its local socket.

use crate::bootstrap::{CREDENTIALS_FILE, DATABASE_FILE};
use ferrosync_store::sqlite::backup as store_backup;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}: is the data directory right?")]
    NoDatabase(PathBuf),
    #[error("{0} is not an absolute path")]
    Relative(PathBuf),
    #[error("{0} exists and is not empty: a backup goes into a new directory")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store_backup::BackupError),
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackedUp {
    pub bytes: u64,
    /// The change log's length in the copy.
    pub events: u64,
    /// Whether the credentials file was copied beside it (it is absent when the credentials
    /// come from the environment).
    pub credentials: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_owned(), source }
}

/// Copies the store of `data_dir` (a server may be writing it, in this process) into the new
/// directory `dest`, calling `progress(copied, total)` in pages as it goes.
pub fn backup(data_dir: &Path, dest: &Path, progress: impl FnMut(u64, u64)) -> Result<BackedUp, BackupError> {
    check(data_dir, dest)?;
    let source = data_dir.join(DATABASE_FILE);
    fs::create_dir_all(dest).map_err(io(dest))?;
    let summary = store_backup::backup(&source, &dest.join(DATABASE_FILE), progress)?;
    let credentials = data_dir.join(CREDENTIALS_FILE);
    let copied = credentials.exists();
    if copied {
        copy_private(&credentials, &dest.join(CREDENTIALS_FILE))?;
    }
    let events = store_backup::verify(&dest.join(DATABASE_FILE))?;
    Ok(BackedUp { bytes: summary.bytes, events, credentials: copied })
}

/// Refuses what [`backup`] would refuse, before any of it starts: a relative or non-empty
/// destination, a data directory with no database.
pub fn check(data_dir: &Path, dest: &Path) -> Result<(), BackupError> {
    if !dest.is_absolute() {
        return Err(BackupError::Relative(dest.to_owned()));
    }
    let source = data_dir.join(DATABASE_FILE);
    if !source.exists() {
        return Err(BackupError::NoDatabase(source));
    }
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(BackupError::NotEmpty(dest.to_owned()));
    }
    Ok(())
}

/// Copies a secret file, readable by its owner only.
pub fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = fs::read(from).map_err(io(from))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(to).map_err(io(to))?;
    f.write_all(&bytes).map_err(io(to))?;
    f.sync_all().map_err(io(to))?;
    Ok(())
}
