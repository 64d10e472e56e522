//! `ferrosync backup` and `ferrosync restore`: the embedded store copied while the server runs,
//! and put back while it is stopped.
//!
//! A backup is a directory holding `ferrosync.db` (a self-contained SQLite file, one consistent
//! snapshot) and `credentials.json` (the root credentials and the master key that decrypts
//! the API keys' secrets; without it the copy's keys are unusable).

use crate::local::LocalServer;
use anyhow::{Context, bail};
use ferrosync_server::backup::{self, BackedUp};
use ferrosync_server::bootstrap::{CREDENTIALS_FILE, DATABASE_FILE};
use ferrosync_server::{ServerConfig, StoreLocation};
use futures_util::StreamExt;
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

/// Copies the data directory's store into the new directory `dest`: the running server makes
/// the copy when there is one, this process otherwise.
pub async fn run_backup(config: &ServerConfig, dest: &Path) -> anyhow::Result<()> {
    embedded_only(config, "backup")?;
    // The server resolves nothing relative to this command's directory.
    let dest = std::path::absolute(dest).with_context(|| format!("cannot resolve {}", dest.display()))?;
    let progress = bar(0, "backing up");
    let done = match LocalServer::find(config).await? {
        Some(server) => {
            let request =
                server.request(reqwest::Method::POST, "/local/v1/backup").json(&serde_json::json!({ "to": &dest }));
            let response = server.send(request).await?;
            let mut done = None;
            let mut line = Vec::new();
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.context("the running server stopped answering the backup")?;
                for piece in chunk.split_inclusive(|b| *b == b'\n') {
                    line.extend_from_slice(piece);
                    if line.ends_with(b"\n") {
                        match serde_json::from_slice::<Said>(&line) {
                            Ok(Said::Progress { copied, total }) => {
                                progress.set_length(total);
                                progress.set_position(copied);
                            }
                            Ok(Said::Done { done: d }) => done = Some(d),
                            Ok(Said::Error { error }) => bail!("the backup failed: {}", error.message),
                            Err(e) => bail!("the running server's answer to the backup is unreadable: {e}"),
                        }
                        line.clear();
                    }
                }
            }
            done.context("the running server stopped before the backup was done: its log says why")?
        }
        None => {
            let data_dir = config.data_dir.clone();
            let (dest, progress) = (dest.clone(), progress.clone());
            tokio::task::spawn_blocking(move || {
                backup::backup(&data_dir, &dest, |done, total| {
                    progress.set_length(total);
                    progress.set_position(done);
                })
            })
            .await??
        }
    };
    progress.finish_and_clear();
    if !done.credentials {
        eprintln!(
            "note: {} does not exist (credentials come from the environment): keep FERROSYNC_ACCOUNT_SID, \
             FERROSYNC_AUTH_TOKEN and FERROSYNC_MASTER_KEY with the backup",
            config.data_dir.join(CREDENTIALS_FILE).display()
        );
    }
    println!(
        "backed up {} ({:.1} MiB, {} change-log events) to {}",
        config.data_dir.join(DATABASE_FILE).display(),
        done.bytes as f64 / (1024.0 * 1024.0),
        done.events,
        dest.display()
    );
    Ok(())
}

/// A line of the running server's answer to a backup.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Said {
    Progress { copied: u64, total: u64 },
    Done { done: BackedUp },
    Error { error: ferrosync_protocol::ErrorBody },
}

/// Puts the backup in `from` into the data directory. The server must be stopped.
pub async fn run_restore(config: &ServerConfig, from: &Path, force: bool) -> anyhow::Result<()> {
    embedded_only(config, "restore")?;
    if let Some(server) = LocalServer::find(config).await? {
        bail!(
            "a server is running on {} (it answers on {}): stop it before restoring",
            config.data_dir.display(),
            server.socket().display()
        );
    }
    let db = from.join(DATABASE_FILE);
    let events = ferrosync_store::sqlite::backup::verify(&db)
        .with_context(|| format!("{} is not a usable backup", from.display()))?;
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
        backup::copy_private(&credentials, &config.data_dir.join(CREDENTIALS_FILE))?;
    }
    if let Ok(dir) = fs::File::open(&config.data_dir) {
        // The renames are durable once the directory is.
        let _ = dir.sync_all();
    }
    println!("restored {} ({events} change-log events) into {}", from.display(), config.data_dir.display());
    Ok(())
}
