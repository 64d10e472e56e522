//! A backup of the data directory: a new directory holding `ferrosync.db` (a self-contained
//! SQLite file, one consistent snapshot) and `credentials.json` (the root credentials and the
//! master key that decrypts the API keys' secrets; without it the copy's keys are unusable).
//!
//! `ferrosync backup` makes it in its own process when no server runs. While one does, the
//! server takes the snapshot (it alone may open the file) into a staging file in its data
//! directory and streams it to the command, which writes the backup where it was asked to:
//! the server need not be able to write there (a sandboxed service usually cannot).

use crate::bootstrap::{CREDENTIALS_FILE, DATABASE_FILE};
use ferrosync_store::sqlite::backup as store_backup;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a staging file's name starts, beside the data file.
const STAGING_PREFIX: &str = "ferrosync.db.backup-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}: is the data directory right?")]
    NoDatabase(PathBuf),
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

/// Copies the store of `data_dir` into the new directory `dest`, in this process, calling
/// `progress(copied, total)` in pages as it goes.
pub fn backup(data_dir: &Path, dest: &Path, progress: impl FnMut(u64, u64)) -> Result<BackedUp, BackupError> {
    let source = data_dir.join(DATABASE_FILE);
    if !source.exists() {
        return Err(BackupError::NoDatabase(source));
    }
    prepare(dest)?;
    store_backup::backup(&source, &dest.join(DATABASE_FILE), progress)?;
    finish(data_dir, dest)
}

/// Creates the backup's directory `dest`, which must not exist or be empty.
pub fn prepare(dest: &Path) -> Result<(), BackupError> {
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(BackupError::NotEmpty(dest.to_owned()));
    }
    fs::create_dir_all(dest).map_err(io(dest))
}

/// Completes a backup whose `ferrosync.db` is in `dest`: copies the credentials file of
/// `data_dir` beside it and checks the copy.
pub fn finish(data_dir: &Path, dest: &Path) -> Result<BackedUp, BackupError> {
    let db = dest.join(DATABASE_FILE);
    let bytes = fs::metadata(&db).map_err(io(&db))?.len();
    let credentials = data_dir.join(CREDENTIALS_FILE);
    let copied = credentials.exists();
    if copied {
        copy_private(&credentials, &dest.join(CREDENTIALS_FILE))?;
    }
    let events = store_backup::verify(&db)?;
    Ok(BackedUp { bytes, events, credentials: copied })
}

/// A snapshot of the running server's store in a staging file of its data directory, removed
/// when this is dropped (sent or not).
pub struct Staged {
    pub path: PathBuf,
    pub bytes: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Takes a snapshot of the store of `data_dir` (open in this process) into a new staging
/// file beside it.
pub fn stage(data_dir: &Path, progress: impl FnMut(u64, u64)) -> Result<Staged, BackupError> {
    let source = data_dir.join(DATABASE_FILE);
    let name = format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple());
    // Owned before the copy starts, so a copy that fails leaves nothing behind either.
    let mut staged = Staged { path: data_dir.join(name), bytes: 0 };
    store_backup::backup(&source, &staged.path, progress)?;
    staged.bytes = fs::metadata(&staged.path).map_err(io(&staged.path))?.len();
    Ok(staged)
}

/// Removes staging files a server stopped mid-backup left in `data_dir`. Only the process
/// that holds the store may: another's backup may be under way otherwise.
pub fn remove_stale_staging(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed a backup's staging file left behind"),
                Err(e) => tracing::warn!(error = %e, path = %path.display(), "cannot remove a backup's staging file"),
            }
        }
    }
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
