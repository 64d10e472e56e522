//! `ferrosync export SERVICE` and `ferrosync import`: a service's objects, items and grants as
//! newline-delimited JSON, read from and written to the store the data directory (or
//! `--store`) names, with their SIDs, revisions and dates kept.
//!
//! The dump, one JSON object a line:
//! `{"format": "ferrosync-export", "version": 1, "service": …}`, then for each object
//! `{"object": …, "next_index": n}` followed by its `{"items": {"object", "items": […]}}`
//! (up to 500 a line) and `{"grants": {"object", "grants": […]}}`, and last
//! `{"end": {"objects": n, "items": m, "identities": k}}`, whose absence marks a dump cut short.
//! A service that holds a Cognito identity pool also has `{"cognito_pool": {"pool", "sync_sessions"}}`
//! after its header and, after its objects, `{"cognito_identities": […]}` lines (up to 100
//! identity ids a line, each with its identity and logins, dataset rows with their sync counts,
//! and push devices with their subscriptions). The Matrix service also carries its accounts,
//! `{"matrix_accounts": […]}` (users with their devices and filters, 100 a line), and its
//! uploads, `{"matrix_media": {…}}` (one a line, content in base64).
//!
//! Both stream: memory stays flat whatever the service's size. An import can be run again
//! after an interruption: what is already there as exported is left alone.

use anyhow::{Context, bail};
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{IdentityDump, PoolDump};
use ferrosync_core::engine::{Engine, MATRIX_SERVICE};
use ferrosync_core::matrix::{MatrixAccountDump, MatrixMedia};
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
/// Identity ids per dump line (each carries its datasets and devices).
const IDENTITIES_PER_LINE: u32 = 100;
const KINDS: [ObjectKind; 4] = [ObjectKind::Document, ObjectKind::List, ObjectKind::Map, ObjectKind::Stream];

/// One line of a dump, told apart by its fields.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Header { format: String, version: u32, service: Service },
    Object { object: SyncObject, next_index: u64 },
    Items { items: ItemsLine },
    Grants { grants: GrantsLine },
    CognitoPool { cognito_pool: Box<PoolDump> },
    CognitoIdentities { cognito_identities: Vec<IdentityDump> },
    MatrixAccounts { matrix_accounts: Vec<MatrixAccountDump> },
    MatrixMedia { matrix_media: Box<MatrixMedia> },
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
    #[serde(default)]
    identities: u64,
    #[serde(default)]
    accounts: u64,
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
    let pool = engine.pool_dump(&root, &svc).await?;
    if let Some(pool) = &pool {
        put(&Line::CognitoPool { cognito_pool: Box::new(pool.clone()) })?;
    }
    let (mut objects, mut items, mut identities) = (0u64, 0u64, 0u64);
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
    // Identities last: their datasets name Maps exported above.
    if let Some(pool) = &pool {
        let mut after: Option<String> = None;
        loop {
            let batch = engine.identity_dumps(&root, &pool.pool.id, after.as_deref(), IDENTITIES_PER_LINE).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.identity_id.clone());
            identities += batch.len() as u64;
            progress.inc(batch.len() as u64);
            put(&Line::CognitoIdentities { cognito_identities: batch })?;
        }
    }
    let mut accounts = 0u64;
    if svc.unique_name.as_deref() == Some(MATRIX_SERVICE) {
        let mut after: Option<String> = None;
        loop {
            let batch = engine.matrix_account_dumps(&root, after.as_deref(), IDENTITIES_PER_LINE).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.user.user_id.clone());
            accounts += batch.len() as u64;
            progress.inc(batch.len() as u64);
            put(&Line::MatrixAccounts { matrix_accounts: batch })?;
        }
        // A few uploads a read: each carries its content.
        let mut after: Option<String> = None;
        loop {
            let batch = engine.matrix_media_dumps(&root, after.as_deref(), 8).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.media_id.clone());
            for media in batch {
                progress.inc(1);
                put(&Line::MatrixMedia { matrix_media: Box::new(media) })?;
            }
        }
    }
    put(&Line::End { end: EndLine { objects, items, identities, accounts } })?;
    w.flush()?;
    progress.finish_and_clear();
    let mut note = String::new();
    if pool.is_some() {
        note += &format!(", {identities} Cognito identities");
    }
    if svc.unique_name.as_deref() == Some(MATRIX_SERVICE) {
        note += &format!(", {accounts} Matrix accounts");
    }
    eprintln!("exported service {}: {objects} objects, {items} items{note}", svc.sid);
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
    let (mut new_objects, mut new_items, mut new_identities, mut ended) = (0u64, 0u64, 0u64, false);
    let mut pool_id: Option<String> = None;
    let (mut new_accounts, mut new_media, mut matrix) = (0u64, 0u64, false);
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
            (Line::CognitoPool { cognito_pool }, Some(_)) => {
                let id = cognito_pool.pool.id.clone();
                engine
                    .restore_identity_pool(&root, *cognito_pool)
                    .await
                    .with_context(|| format!("identity pool {id}"))?;
                pool_id = Some(id);
            }
            (Line::CognitoIdentities { cognito_identities }, Some(svc)) => {
                let pool = pool_id.as_deref().with_context(|| format!("line {}: identities of no pool", n + 1))?;
                new_identities += engine
                    .restore_identities(&root, &svc.sid, pool, cognito_identities)
                    .await
                    .with_context(|| format!("line {}: Cognito identities", n + 1))?;
            }
            (Line::MatrixAccounts { matrix_accounts }, Some(_)) => {
                matrix = true;
                new_accounts += engine
                    .restore_matrix_accounts(&root, matrix_accounts)
                    .await
                    .with_context(|| format!("line {}: Matrix accounts", n + 1))?;
            }
            (Line::MatrixMedia { matrix_media }, Some(_)) => {
                matrix = true;
                let id = matrix_media.media_id.clone();
                if engine.restore_matrix_media(&root, *matrix_media).await.with_context(|| format!("media {id}"))? {
                    new_media += 1;
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
    let mut note = String::new();
    if pool_id.is_some() {
        note += &format!(", {new_identities} new Cognito identities");
    }
    if matrix {
        note += &format!(", {new_accounts} new Matrix accounts, {new_media} new uploads");
    }
    eprintln!("imported service {}: {new_objects} new objects, {new_items} new items{note}", svc.sid);
    Ok(())
}
