//! `ferrosync backup` and `ferrosync restore`: the embedded store copied while the server runs,
//! and put back while it is stopped.
//!
//! A backup is a directory holding `ferrosync.db` (a self-contained SQLite file, one consistent
//! snapshot) and `credentials.json` (the root credentials and the master key that decrypts
//! the API keys' secrets; without it the copy's keys are unusable).

use crate::local::{Lines, LocalServer};
use anyhow::{Context, bail};
use ferrosync_server::backup;
use ferrosync_server::bootstrap::{CREDENTIALS_FILE, DATABASE_FILE};
use ferrosync_server::{ServerConfig, StoreLocation};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs;
use std::io::Write;
use std::path::Path;
use tokio::io::AsyncWriteExt;

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

/// Copies the data directory's store into the new directory `dest`: from a snapshot the
/// running server sends when there is one, by this process otherwise.
pub async fn run_backup(config: &ServerConfig, dest: &Path) -> anyhow::Result<()> {
    embedded_only(config, "backup")?;
    let progress = bar(0, "backing up");
    let done = match LocalServer::find(config).await? {
        Some(server) => {
            backup::prepare(dest)?;
            let response = server.send(server.request(reqwest::Method::POST, "/local/v1/backup")).await?;
            let mut received = Received { lines: Lines::default(), file: None, left: 0, progress: &progress };
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                received.feed(&chunk.context("the running server stopped sending the backup")?, dest).await?;
            }
            received.end().await?;
            backup::finish(&config.data_dir, dest)?
        }
        None => {
            let (data_dir, dest, progress) = (config.data_dir.clone(), dest.to_owned(), progress.clone());
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

/// A line of the running server's answer to a backup, before the file's bytes.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Said {
    Progress { copied: u64, total: u64 },
    File { file: FileHeader },
    Error { error: ferrosync_protocol::ErrorBody },
}

#[derive(serde::Deserialize)]
struct FileHeader {
    bytes: u64,
}

/// The backup as it arrives: lines of JSON, then the file's bytes, written to `ferrosync.db`.
struct Received<'a> {
    lines: Lines,
    file: Option<tokio::fs::File>,
    /// The file's bytes still to come.
    left: u64,
    progress: &'a ProgressBar,
}

impl Received<'_> {
    async fn feed(&mut self, mut chunk: &[u8], dest: &Path) -> anyhow::Result<()> {
        while !chunk.is_empty() {
            if let Some(file) = &mut self.file {
                let n = chunk.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
                if n == 0 {
                    bail!("the running server sent more than the backup's file");
                }
                file.write_all(&chunk[..n]).await?;
                self.left -= n as u64;
                self.progress.inc(n as u64);
                chunk = &chunk[n..];
                continue;
            }
            let Some(line) = self.lines.next(&mut chunk) else {
                return Ok(());
            };
            match serde_json::from_slice::<Said>(line) {
                Ok(Said::Progress { copied, total }) => {
                    self.progress.set_length(total);
                    self.progress.set_position(copied);
                }
                Ok(Said::File { file }) => {
                    let path = dest.join(DATABASE_FILE);
                    self.file = Some(
                        tokio::fs::File::create(&path)
                            .await
                            .with_context(|| format!("cannot write {}", path.display()))?,
                    );
                    self.left = file.bytes;
                    self.progress.set_style(
                        ProgressStyle::with_template("receiving [{bar:30}] {bytes}/{total_bytes} ({eta})")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    self.progress.set_length(file.bytes);
                    self.progress.set_position(0);
                }
                Ok(Said::Error { error }) => bail!("the backup failed: {}", error.message),
                Err(e) => bail!("the running server's answer to the backup is unreadable: {e}"),
            }
        }
        Ok(())
    }

    /// Checks the whole file came, and makes it durable.
    async fn end(self) -> anyhow::Result<()> {
        let Some(file) = self.file else {
            bail!("the running server stopped before sending the backup: its log says why")
        };
        if self.left > 0 {
            bail!("the running server stopped sending the backup {} bytes short: its log says why", self.left);
        }
        file.sync_all().await?;
        Ok(())
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A running server's answer to a backup: progress, the file's header, its bytes.
    fn answer(file: &[u8]) -> Vec<u8> {
        let mut out = b"{\"copied\":256,\"total\":512}\n{\"copied\":512,\"total\":512}\n".to_vec();
        out.extend_from_slice(format!("{{\"file\":{{\"bytes\":{}}}}}\n", file.len()).as_bytes());
        out.extend_from_slice(file);
        out
    }

    async fn receive(stream: &[u8], chunk: usize, dest: &Path) -> anyhow::Result<()> {
        let progress = ProgressBar::hidden();
        let mut received = Received { lines: Lines::default(), file: None, left: 0, progress: &progress };
        for piece in stream.chunks(chunk) {
            received.feed(piece, dest).await?;
        }
        received.end().await
    }

    #[tokio::test]
    async fn a_backup_arrives_whole_however_its_bytes_are_cut() {
        // Newlines and braces inside the file must not be taken for lines.
        let file: Vec<u8> = (0..10_000u32).map(|i| [b'\n', b'{', b'x', 0][i as usize % 4]).collect();
        let stream = answer(&file);
        for chunk in [1, 2, 7, 64, 4096, stream.len()] {
            let dir = tempfile::tempdir().unwrap();
            receive(&stream, chunk, dir.path()).await.unwrap_or_else(|e| panic!("chunks of {chunk}: {e}"));
            assert_eq!(std::fs::read(dir.path().join(DATABASE_FILE)).unwrap(), file, "chunks of {chunk}");
        }
    }

    #[tokio::test]
    async fn a_backup_cut_short_or_refused_is_an_error() {
        let file = vec![7u8; 1000];
        let stream = answer(&file);
        let dir = tempfile::tempdir().unwrap();
        let short = receive(&stream[..stream.len() - 10], 64, dir.path()).await.unwrap_err();
        assert!(short.to_string().contains("10 bytes short"), "{short}");

        let dir = tempfile::tempdir().unwrap();
        let mut longer = stream.clone();
        longer.extend_from_slice(b"more");
        let long = receive(&longer, 64, dir.path()).await.unwrap_err();
        assert!(long.to_string().contains("more than"), "{long}");

        let dir = tempfile::tempdir().unwrap();
        let failed =
            b"{\"copied\":1,\"total\":2}\n{\"error\":{\"code\":50000,\"message\":\"disk full\",\"status\":500}}\n";
        let refused = receive(failed, 5, dir.path()).await.unwrap_err();
        assert!(refused.to_string().contains("disk full"), "{refused}");

        let dir = tempfile::tempdir().unwrap();
        let none = receive(b"{\"copied\":1,\"total\":2}\n", 5, dir.path()).await.unwrap_err();
        assert!(none.to_string().contains("before sending"), "{none}");
    }
}
