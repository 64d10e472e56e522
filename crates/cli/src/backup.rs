//! `ferrosync backup` and `ferrosync restore`: the embedded store copied while the server runs,
//! and put back while it is stopped.
//!
//! A backup is a directory holding `ferrosync.db` (a self-contained SQLite file, one consistent
//! snapshot) and `credentials.json` (the root credentials and the master key that decrypts
//! the API keys' secrets; without it the copy's keys are unusable).

use anyhow::{Context, bail};
use ferrosync_server::bootstrap::{CREDENTIALS_FILE, DATABASE_FILE};
use ferrosync_server::{ServerConfig, StoreLocation};
use ferrosync_store::sqlite::backup;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs;
use std::io::Write;
use std::path::Path;

fn embedded_only(config: &ServerConfig, what: &str) -> anyhow::Result<()> {
    if config.store != StoreLocation::Embedded {
        bail!("{what} works on the embedded store; for PostgreSQL use pg_dump and pg_restore");
    }
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} pages ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Copies the data directory's store (the server may be running) into the new directory `dest`.
pub fn run_backup(config: &ServerConfig, dest: &Path) -> anyhow::Result<()> {
    embedded_only(config, "backup")?;
    let source = config.data_dir.join(DATABASE_FILE);
    if !source.exists() {
        bail!("no database at {}: is --data-dir right?", source.display());
    }
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty: a backup goes into a new directory", dest.display());
    }
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let progress = bar(0, "backing up");
    let summary = backup::backup(&source, &dest.join(DATABASE_FILE), |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })?;
    progress.finish_and_clear();
    let credentials = config.data_dir.join(CREDENTIALS_FILE);
    if credentials.exists() {
        copy_private(&credentials, &dest.join(CREDENTIALS_FILE))?;
    } else {
        eprintln!(
            "note: {} does not exist (credentials come from the environment): keep FERROSYNC_ACCOUNT_SID, \
             FERROSYNC_AUTH_TOKEN and FERROSYNC_MASTER_KEY with the backup",
            credentials.display()
        );
    }
    let events = backup::verify(&dest.join(DATABASE_FILE))?;
    println!(
        "backed up {} ({:.1} MiB, {events} change-log events) to {}",
        source.display(),
        summary.bytes as f64 / (1024.0 * 1024.0),
        dest.display()
    );
    Ok(())
}

/// Puts the backup in `from` into the data directory. The server must be stopped.
pub fn run_restore(config: &ServerConfig, from: &Path, force: bool) -> anyhow::Result<()> {
    embedded_only(config, "restore")?;
    let db = from.join(DATABASE_FILE);
    let events = backup::verify(&db).with_context(|| format!("{} is not a usable backup", from.display()))?;
    let target = config.data_dir.join(DATABASE_FILE);
    if target.exists() && !force {
        bail!(
            "{} already holds a database: stop the server, then pass --force to replace it",
            config.data_dir.display()
        );
    }
    fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    // Copied beside the target, flushed, then renamed over it: a crash leaves the old or the
    // new database, never half of one.
    let staging = config.data_dir.join(format!("{DATABASE_FILE}.restoring"));
    let len = fs::metadata(&db)?.len();
    let progress = bar(len, "restoring");
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    {
        let mut reader = progress.wrap_read(fs::File::open(&db)?);
        let mut out = fs::File::create(&staging).with_context(|| format!("cannot write {}", staging.display()))?;
        std::io::copy(&mut reader, &mut out)?;
        out.flush()?;
        out.sync_all()?;
    }
    progress.finish_and_clear();
    // The old database's write-ahead log must not be replayed into the restored one.
    for suffix in ["-wal", "-shm"] {
        let stale = config.data_dir.join(format!("{DATABASE_FILE}{suffix}"));
        if stale.exists() {
            fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    fs::rename(&staging, &target)?;
    let credentials = from.join(CREDENTIALS_FILE);
    if credentials.exists() {
        copy_private(&credentials, &config.data_dir.join(CREDENTIALS_FILE))?;
    }
    if let Ok(dir) = fs::File::open(&config.data_dir) {
        // The renames are durable once the directory is.
        let _ = dir.sync_all();
    }
    println!("restored {} ({events} change-log events) into {}", from.display(), config.data_dir.display());
    Ok(())
}

/// Copies a secret file, readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(to).with_context(|| format!("cannot write {}", to.display()))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(())
}
