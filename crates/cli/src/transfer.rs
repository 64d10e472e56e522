//! `ferrosync export SERVICE` and `ferrosync import`: a service's objects, items and grants as
//! newline-delimited JSON, read from and written to the store the data directory (or
//! `--store`) names, with their SIDs, revisions and dates kept.
//!
//! The dump, one JSON object a line:
//! `{"format": "ferrosync-export", "version": 1, "service": …}`, then for each object
//! `{"object": …, "next_index": n}` followed by its `{"items": {"object", "items": […]}}`
//! (up to 500 a line) and `{"grants": {"object", "grants": […]}}`, and last
//! `{"end": {"objects": n, "items": m}}`, whose absence marks a dump cut short.
//!
//! Both stream: memory stays flat whatever the service's size. An import can be run again
//! after an interruption: what is already there as exported is left alone.

use anyhow::{Context, bail};
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::Engine;
use ferrosync_core::model::{Item, ObjectKind, Permission, Service, SyncObject};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::Sid;
use ferrosync_server::ServerConfig;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FORMAT: &str = "ferrosync-export";
const VERSION: u32 = 1;
/// Objects and items read per page, and items per dump line.
const PAGE: u32 = 500;
const KINDS: [ObjectKind; 4] = [ObjectKind::Document, ObjectKind::List, ObjectKind::Map, ObjectKind::Stream];

/// One line of a dump, told apart by its fields.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Header { format: String, version: u32, service: Service },
    Object { object: SyncObject, next_index: u64 },
    Items { items: ItemsLine },
    Grants { grants: GrantsLine },
    End { end: EndLine },
}

#[derive(Serialize, Deserialize)]
struct ItemsLine {
    object: Sid,
    items: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
struct GrantsLine {
    object: Sid,
    grants: Vec<Permission>,
}

#[derive(Serialize, Deserialize)]
struct EndLine {
    objects: u64,
    items: u64,
}

async fn engine(config: &ServerConfig) -> anyhow::Result<Arc<Engine>> {
    if config.store == ferrosync_server::StoreLocation::Embedded
        && !config.data_dir.join(ferrosync_server::bootstrap::DATABASE_FILE).exists()
    {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    Ok(ferrosync_server::open_engine(config).await?.0)
}

fn page(after: Option<Cursor>) -> PageRequest {
    PageRequest { order: Order::Asc, from: None, after, limit: PAGE }
}

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Writes the dump of `service` to `out` (standard output when `None`).
pub async fn export(config: &ServerConfig, service: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let engine = engine(config).await?;
    let root = Principal::Root;
    let svc = engine.service(&root, service).await.with_context(|| format!("service {service}"))?;
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::new(sink);
    let mut put = |line: &Line| -> anyhow::Result<()> {
        serde_json::to_writer(&mut w, line)?;
        w.write_all(b"\n")?;
        Ok(())
    };
    let progress = spinner(&format!("exporting {}", svc.sid));
    put(&Line::Header { format: FORMAT.into(), version: VERSION, service: svc.clone() })?;
    let (mut objects, mut items) = (0u64, 0u64);
    let sid = svc.sid.to_string();
    for kind in KINDS {
        let mut after = None;
        loop {
            let listed = engine.objects(&root, &sid, kind, page(after.take())).await?;
            for object in listed.items {
                let object_sid = object.sid.clone();
                put(&Line::Object { next_index: object.next_index, object })?;
                objects += 1;
                progress.inc(1);
                if matches!(kind, ObjectKind::List | ObjectKind::Map) {
                    let mut item_after = None;
                    loop {
                        let batch =
                            engine.items(&root, &sid, kind, object_sid.as_str(), page(item_after.take())).await?;
                        if !batch.items.is_empty() {
                            items += batch.items.len() as u64;
                            progress.inc(batch.items.len() as u64);
                            put(&Line::Items { items: ItemsLine { object: object_sid.clone(), items: batch.items } })?;
                        }
                        match batch.next {
                            Some(t) => item_after = Some(t.after),
                            None => break,
                        }
                    }
                }
                let grants = engine.permissions(&root, &sid, kind, object_sid.as_str()).await?;
                if !grants.is_empty() {
                    put(&Line::Grants { grants: GrantsLine { object: object_sid, grants } })?;
                }
            }
            match listed.next {
                Some(t) => after = Some(t.after),
                None => break,
            }
        }
    }
    put(&Line::End { end: EndLine { objects, items } })?;
    w.flush()?;
    progress.finish_and_clear();
    eprintln!("exported service {}: {objects} objects, {items} items", svc.sid);
    Ok(())
}

/// Reads a dump from `from` (standard input when `None`) into the store.
pub async fn import(config: &ServerConfig, from: Option<PathBuf>) -> anyhow::Result<()> {
    let engine = engine(config).await?;
    let root = Principal::Root;
    let (source, len): (Box<dyn Read>, Option<u64>) = match &from {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
        None => (Box::new(std::io::stdin().lock()), None),
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
        None => spinner("importing"),
    };
    let reader = BufReader::new(progress.wrap_read(source));
    let mut service: Option<Service> = None;
    // Each object's kind, for its grants.
    let mut kinds: std::collections::HashMap<Sid, ObjectKind> = std::collections::HashMap::new();
    let (mut new_objects, mut new_items, mut ended) = (0u64, 0u64, false);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(&line).with_context(|| format!("line {}: not a line of a Ferrosync dump", n + 1))?;
        match (parsed, &service) {
            (Line::Header { format, version, service: svc }, None) => {
                if format != FORMAT || version != VERSION {
                    bail!("line 1: a {format} version {version} dump; this reads {FORMAT} version {VERSION}");
                }
                engine.restore_service(&root, &svc).await.with_context(|| format!("service {}", svc.sid))?;
                service = Some(svc);
            }
            (Line::Header { .. }, Some(_)) => bail!("line {}: a second header", n + 1),
            (_, None) => bail!("line {}: the dump does not start with its header", n + 1),
            (Line::Object { mut object, next_index }, Some(svc)) => {
                if object.service_sid != svc.sid {
                    bail!("line {}: object {} belongs to another service", n + 1, object.sid);
                }
                object.next_index = next_index;
                kinds.insert(object.sid.clone(), object.kind);
                let sid = object.sid.clone();
                if engine.restore_object(&root, object).await.with_context(|| format!("object {sid}"))? {
                    new_objects += 1;
                }
            }
            (Line::Items { items: ItemsLine { object, items } }, Some(svc)) => {
                new_items += engine
                    .restore_items(&root, &svc.sid, &object, items)
                    .await
                    .with_context(|| format!("items of {object}"))?;
            }
            (Line::Grants { grants: GrantsLine { object, grants } }, Some(svc)) => {
                let kind =
                    *kinds.get(&object).with_context(|| format!("line {}: grants of an unknown object", n + 1))?;
                for g in grants {
                    engine
                        .set_permission(
                            &root,
                            svc.sid.as_str(),
                            kind,
                            object.as_str(),
                            &g.identity,
                            g.read,
                            g.write,
                            g.manage,
                        )
                        .await?;
                }
            }
            (Line::End { .. }, Some(_)) => ended = true,
        }
    }
    progress.finish_and_clear();
    let Some(svc) = service else { bail!("the dump is empty") };
    if !ended {
        bail!(
            "the dump ends early (no end line): {new_objects} objects and {new_items} items of service {} were \
             imported; import a complete dump again to finish",
            svc.sid
        );
    }
    eprintln!("imported service {}: {new_objects} new objects, {new_items} new items", svc.sid);
    Ok(())
}
