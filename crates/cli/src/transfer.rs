//! `ferrosync export SERVICE` and `ferrosync import`: a service's dump (its format is in
//! `ferrosync_server::transfer`), written from and read into the store the data directory (or
//! `--store`) names: through the server running on it, or by opening the store when none does.

use crate::local::{Lines, LocalServer, path_segment};
use anyhow::{Context, bail};
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::Engine;
use ferrosync_server::ServerConfig;
use ferrosync_server::transfer::{self, Exported, Imported};
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

async fn engine(config: &ServerConfig) -> anyhow::Result<Arc<Engine>> {
    if config.store == ferrosync_server::StoreLocation::Embedded
        && !config.data_dir.join(ferrosync_server::bootstrap::DATABASE_FILE).exists()
    {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    Ok(ferrosync_server::open_engine(config).await?.0)
}

fn spinner(what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {{msg}} {{pos}} {unit} ({{per_sec}})"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Where a dump goes: the file `out`, or standard output.
async fn sink(out: Option<&Path>) -> anyhow::Result<tokio::io::BufWriter<Box<dyn AsyncWrite + Unpin + Send>>> {
    let sink: Box<dyn AsyncWrite + Unpin + Send> = match out {
        Some(p) => Box::new(tokio::fs::File::create(p).await.with_context(|| format!("cannot write {}", p.display()))?),
        None => Box::new(tokio::io::stdout()),
    };
    Ok(tokio::io::BufWriter::new(sink))
}

/// Writes the dump of `service` to `out` (standard output when `None`). The file is created
/// once the service is known to exist.
pub async fn export(config: &ServerConfig, service: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let (exported, mut w) = match LocalServer::find(config).await? {
        Some(server) => {
            let path = format!("/local/v1/services/{}/export", path_segment(service));
            let response = server.send(server.request(reqwest::Method::GET, &path)).await?;
            let mut w = sink(out).await?;
            let progress = spinner(&format!("exporting {service}"), "lines");
            let mut exported = Exported::default();
            let mut lines = Lines::default();
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.context("the running server stopped sending the dump")?;
                w.write_all(&chunk).await?;
                let mut rest = &chunk[..];
                while let Some(line) = lines.next(&mut rest) {
                    exported.observe(line);
                    progress.inc(1);
                }
            }
            progress.finish_and_clear();
            (exported, w)
        }
        None => {
            let engine = engine(config).await?;
            engine.service(&Principal::Root, service).await.with_context(|| format!("service {service}"))?;
            let mut w = sink(out).await?;
            let progress = spinner(&format!("exporting {service}"), "rows");
            let exported = transfer::export(&engine, &Principal::Root, service, &mut w, &|n| progress.inc(n)).await?;
            progress.finish_and_clear();
            (exported, w)
        }
    };
    w.flush().await?;
    if !exported.complete {
        bail!("the dump of service {service} was cut short (no end line): the server's log says why");
    }
    eprintln!("{exported}");
    Ok(())
}

/// Reads a dump from `from` (standard input when `None`) into the store.
pub async fn import(config: &ServerConfig, from: Option<PathBuf>) -> anyhow::Result<()> {
    let (source, len): (Box<dyn AsyncRead + Unpin + Send + Sync>, Option<u64>) = match &from {
        Some(p) => {
            let f = tokio::fs::File::open(p).await.with_context(|| format!("cannot read {}", p.display()))?;
            let len = f.metadata().await.ok().map(|m| m.len());
            (Box::new(f), len)
        }
        None => (Box::new(tokio::io::stdin()), None),
    };
    let progress = match len {
        Some(n) => {
            let bar = ProgressBar::new(n);
            bar.set_style(
                ProgressStyle::with_template("importing [{bar:30}] {bytes}/{total_bytes} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        }
        None => spinner("importing", "bytes"),
    };
    let counted = progress.clone();
    let bytes = tokio_util::io::ReaderStream::new(source).inspect_ok(move |chunk| counted.inc(chunk.len() as u64));
    let imported: Imported = match LocalServer::find(config).await? {
        Some(server) => {
            let request = server
                .request(reqwest::Method::POST, "/local/v1/import")
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(reqwest::Body::wrap_stream(bytes));
            let response = server.send(request).await;
            progress.finish_and_clear();
            response?.json().await.context("the running server's answer to the import")?
        }
        None => {
            let engine = engine(config).await?;
            let input = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(bytes));
            let imported = transfer::import(&engine, &Principal::Root, input).await;
            progress.finish_and_clear();
            imported?
        }
    };
    eprintln!("{imported}");
    Ok(())
}
