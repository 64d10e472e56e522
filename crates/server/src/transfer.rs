//! A service's dump: its objects, items and grants as newline-delimited JSON, written from and
//! read into an engine with their SIDs, revisions and dates kept. `ferrosync export` and
//! `import` run these on the store directly, or through a running server's local socket.
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

use ferrosync_core::CoreError;
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{IdentityDump, PoolDump};
use ferrosync_core::engine::{Engine, MATRIX_SERVICE};
use ferrosync_core::matrix::{MatrixAccountDump, MatrixMedia};
use ferrosync_core::model::{Item, ObjectKind, Permission, Service, SyncObject};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::Sid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

const FORMAT: &str = "ferrosync-export";
const VERSION: u32 = 1;
/// Objects and items read per page, and items per dump line.
const PAGE: u32 = 500;
/// Identity ids per dump line (each carries its datasets and devices).
const IDENTITIES_PER_LINE: u32 = 100;
/// Matrix uploads per read: each carries its content.
const MEDIA_PER_READ: u32 = 8;
const KINDS: [ObjectKind; 4] = [ObjectKind::Document, ObjectKind::List, ObjectKind::Map, ObjectKind::Stream];

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{context}: {source}")]
    Core {
        context: String,
        #[source]
        source: CoreError,
    },
    #[error("line {line}: {message}")]
    Dump { line: u64, message: String },
    #[error("the dump is empty")]
    Empty,
    #[error(
        "the dump ends early (no end line): {objects} objects and {items} items of service {service} were \
         imported; import a complete dump again to finish"
    )]
    CutShort { service: Sid, objects: u64, items: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl TransferError {
    /// The engine's error for a request about `context` ("object IS…").
    fn core(context: impl Into<String>) -> impl FnOnce(CoreError) -> TransferError {
        move |source| TransferError::Core { context: context.into(), source }
    }

    fn dump(line: u64, message: impl Into<String>) -> TransferError {
        TransferError::Dump { line, message: message.into() }
    }
}

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

#[derive(Serialize, Deserialize, Default)]
struct EndLine {
    objects: u64,
    items: u64,
    #[serde(default)]
    identities: u64,
    #[serde(default)]
    accounts: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    pub service: Option<Sid>,
    pub objects: u64,
    pub items: u64,
    /// Cognito identities, when the service holds a pool.
    pub identities: Option<u64>,
    /// Matrix accounts, when the service is the Matrix face's.
    pub accounts: Option<u64>,
    /// Whether the dump has its end line: without one it was cut short.
    pub complete: bool,
}

impl std::fmt::Display for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let service = self.service.as_ref().map_or("?", Sid::as_str);
        write!(f, "exported service {service}: {} objects, {} items", self.objects, self.items)?;
        if let Some(n) = self.identities {
            write!(f, ", {n} Cognito identities")?;
        }
        if let Some(n) = self.accounts {
            write!(f, ", {n} Matrix accounts")?;
        }
        Ok(())
    }
}

impl Exported {
    /// Takes note of one line of a dump passing by, as a client reading an export from a
    /// server sees it; only the header, the pool and the end line are parsed.
    pub fn observe(&mut self, line: &[u8]) {
        // Each line is written with its first field first: the prefix tells which it is.
        if line.starts_with(b"{\"format\"") {
            if let Ok(Line::Header { service, .. }) = serde_json::from_slice(line) {
                self.service = Some(service.sid);
                if service.unique_name.as_deref() == Some(MATRIX_SERVICE) {
                    self.accounts = Some(0);
                }
            }
        } else if line.starts_with(b"{\"cognito_pool\"") {
            self.identities = Some(0);
        } else if line.starts_with(b"{\"end\"")
            && let Ok(Line::End { end }) = serde_json::from_slice(line)
        {
            self.objects = end.objects;
            self.items = end.items;
            self.identities = self.identities.map(|_| end.identities);
            self.accounts = self.accounts.map(|_| end.accounts);
            self.complete = true;
        }
    }
}

/// What an import added (what was already there as exported is left alone and not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub service: Sid,
    pub new_objects: u64,
    pub new_items: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_identities: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_accounts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_uploads: Option<u64>,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "imported service {}: {} new objects, {} new items", self.service, self.new_objects, self.new_items)?;
        if let Some(n) = self.new_identities {
            write!(f, ", {n} new Cognito identities")?;
        }
        if let (Some(accounts), Some(uploads)) = (self.new_accounts, self.new_uploads) {
            write!(f, ", {accounts} new Matrix accounts, {uploads} new uploads")?;
        }
        Ok(())
    }
}

fn page(after: Option<Cursor>) -> PageRequest {
    PageRequest { order: Order::Asc, from: None, after, limit: PAGE }
}

/// Writes lines to the dump, one buffer reused for each.
struct Writer<'a, W> {
    out: &'a mut W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    async fn put(&mut self, line: &Line) -> Result<(), TransferError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, line).map_err(std::io::Error::other)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf).await?;
        Ok(())
    }
}

/// Writes the dump of `service` to `out`, calling `progress` with each batch of rows written.
/// `out` is flushed at the end; buffering it is the caller's choice.
pub async fn export<W: AsyncWrite + Unpin>(
    engine: &Engine,
    principal: &Principal,
    service: &str,
    out: &mut W,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Exported, TransferError> {
    let svc = engine.service(principal, service).await.map_err(TransferError::core(format!("service {service}")))?;
    let core = |what: &str| TransferError::core(format!("service {}: {what}", svc.sid));
    let mut w = Writer { out, buf: Vec::with_capacity(4096) };
    w.put(&Line::Header { format: FORMAT.into(), version: VERSION, service: svc.clone() }).await?;
    let pool = engine.pool_dump(principal, &svc).await.map_err(core("its identity pool"))?;
    if let Some(pool) = &pool {
        w.put(&Line::CognitoPool { cognito_pool: Box::new(pool.clone()) }).await?;
    }
    let mut end = EndLine::default();
    let sid = svc.sid.to_string();
    for kind in KINDS {
        let mut after = None;
        loop {
            let listed = engine.objects(principal, &sid, kind, page(after.take())).await.map_err(core("objects"))?;
            for object in listed.items {
                let object_sid = object.sid.clone();
                w.put(&Line::Object { next_index: object.next_index, object }).await?;
                end.objects += 1;
                progress(1);
                if matches!(kind, ObjectKind::List | ObjectKind::Map) {
                    let mut item_after = None;
                    loop {
                        let batch = engine
                            .items(principal, &sid, kind, object_sid.as_str(), page(item_after.take()))
                            .await
                            .map_err(core("items"))?;
                        if !batch.items.is_empty() {
                            end.items += batch.items.len() as u64;
                            progress(batch.items.len() as u64);
                            let items = ItemsLine { object: object_sid.clone(), items: batch.items };
                            w.put(&Line::Items { items }).await?;
                        }
                        match batch.next {
                            Some(t) => item_after = Some(t.after),
                            None => break,
                        }
                    }
                }
                let grants =
                    engine.permissions(principal, &sid, kind, object_sid.as_str()).await.map_err(core("grants"))?;
                if !grants.is_empty() {
                    w.put(&Line::Grants { grants: GrantsLine { object: object_sid, grants } }).await?;
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
            let batch = engine
                .identity_dumps(principal, &pool.pool.id, after.as_deref(), IDENTITIES_PER_LINE)
                .await
                .map_err(core("Cognito identities"))?;
            let Some(last) = batch.last() else { break };
            after = Some(last.identity_id.clone());
            end.identities += batch.len() as u64;
            progress(batch.len() as u64);
            w.put(&Line::CognitoIdentities { cognito_identities: batch }).await?;
        }
    }
    let matrix = svc.unique_name.as_deref() == Some(MATRIX_SERVICE);
    if matrix {
        let mut after: Option<String> = None;
        loop {
            let batch = engine
                .matrix_account_dumps(principal, after.as_deref(), IDENTITIES_PER_LINE)
                .await
                .map_err(core("Matrix accounts"))?;
            let Some(last) = batch.last() else { break };
            after = Some(last.user.user_id.clone());
            end.accounts += batch.len() as u64;
            progress(batch.len() as u64);
            w.put(&Line::MatrixAccounts { matrix_accounts: batch }).await?;
        }
        let mut after: Option<String> = None;
        loop {
            let batch = engine
                .matrix_media_dumps(principal, after.as_deref(), MEDIA_PER_READ)
                .await
                .map_err(core("Matrix uploads"))?;
            let Some(last) = batch.last() else { break };
            after = Some(last.media_id.clone());
            for media in batch {
                progress(1);
                w.put(&Line::MatrixMedia { matrix_media: Box::new(media) }).await?;
            }
        }
    }
    let exported = Exported {
        service: Some(svc.sid.clone()),
        objects: end.objects,
        items: end.items,
        identities: pool.is_some().then_some(end.identities),
        accounts: matrix.then_some(end.accounts),
        complete: true,
    };
    w.put(&Line::End { end }).await?;
    w.out.flush().await?;
    Ok(exported)
}

/// Reads a dump from `input` into the engine, line by line.
pub async fn import<R: AsyncBufRead + Unpin>(
    engine: &Engine,
    principal: &Principal,
    input: R,
) -> Result<Imported, TransferError> {
    let mut service: Option<Service> = None;
    // Each object's kind, for its grants.
    let mut kinds: HashMap<Sid, ObjectKind> = HashMap::new();
    let (mut new_objects, mut new_items, mut new_identities, mut ended) = (0u64, 0u64, 0u64, false);
    let mut pool_id: Option<String> = None;
    let (mut new_accounts, mut new_media, mut matrix) = (0u64, 0u64, false);
    let mut lines = input.lines();
    let mut n = 0u64;
    while let Some(line) = lines.next_line().await? {
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .map_err(|e| TransferError::dump(n, format!("not a line of a Ferrosync dump ({e})")))?;
        match (parsed, &service) {
            (Line::Header { format, version, service: svc }, None) => {
                if format != FORMAT || version != VERSION {
                    return Err(TransferError::dump(
                        n,
                        format!("a {format} version {version} dump; this reads {FORMAT} version {VERSION}"),
                    ));
                }
                engine
                    .restore_service(principal, &svc)
                    .await
                    .map_err(TransferError::core(format!("service {}", svc.sid)))?;
                service = Some(svc);
            }
            (Line::Header { .. }, Some(_)) => return Err(TransferError::dump(n, "a second header")),
            (_, None) => return Err(TransferError::dump(n, "the dump does not start with its header")),
            (Line::Object { mut object, next_index }, Some(svc)) => {
                if object.service_sid != svc.sid {
                    return Err(TransferError::dump(n, format!("object {} belongs to another service", object.sid)));
                }
                object.next_index = next_index;
                kinds.insert(object.sid.clone(), object.kind);
                let sid = object.sid.clone();
                if engine
                    .restore_object(principal, object)
                    .await
                    .map_err(TransferError::core(format!("object {sid}")))?
                {
                    new_objects += 1;
                }
            }
            (Line::Items { items: ItemsLine { object, items } }, Some(svc)) => {
                new_items += engine
                    .restore_items(principal, &svc.sid, &object, items)
                    .await
                    .map_err(TransferError::core(format!("items of {object}")))?;
            }
            (Line::Grants { grants: GrantsLine { object, grants } }, Some(svc)) => {
                let kind = *kinds.get(&object).ok_or_else(|| TransferError::dump(n, "grants of an unknown object"))?;
                for g in grants {
                    engine
                        .set_permission(
                            principal,
                            svc.sid.as_str(),
                            kind,
                            object.as_str(),
                            &g.identity,
                            g.read,
                            g.write,
                            g.manage,
                        )
                        .await
                        .map_err(TransferError::core(format!("grants of {object}")))?;
                }
            }
            (Line::CognitoPool { cognito_pool }, Some(_)) => {
                let id = cognito_pool.pool.id.clone();
                engine
                    .restore_identity_pool(principal, *cognito_pool)
                    .await
                    .map_err(TransferError::core(format!("identity pool {id}")))?;
                pool_id = Some(id);
            }
            (Line::CognitoIdentities { cognito_identities }, Some(svc)) => {
                let pool = pool_id.as_deref().ok_or_else(|| TransferError::dump(n, "identities of no pool"))?;
                new_identities += engine
                    .restore_identities(principal, &svc.sid, pool, cognito_identities)
                    .await
                    .map_err(TransferError::core(format!("line {n}: Cognito identities")))?;
            }
            (Line::MatrixAccounts { matrix_accounts }, Some(_)) => {
                matrix = true;
                new_accounts += engine
                    .restore_matrix_accounts(principal, matrix_accounts)
                    .await
                    .map_err(TransferError::core(format!("line {n}: Matrix accounts")))?;
            }
            (Line::MatrixMedia { matrix_media }, Some(_)) => {
                matrix = true;
                let id = matrix_media.media_id.clone();
                if engine
                    .restore_matrix_media(principal, *matrix_media)
                    .await
                    .map_err(TransferError::core(format!("media {id}")))?
                {
                    new_media += 1;
                }
            }
            (Line::End { .. }, Some(_)) => ended = true,
        }
    }
    let Some(svc) = service else { return Err(TransferError::Empty) };
    if !ended {
        return Err(TransferError::CutShort { service: svc.sid, objects: new_objects, items: new_items });
    }
    Ok(Imported {
        service: svc.sid,
        new_objects,
        new_items,
        new_identities: pool_id.is_some().then_some(new_identities),
        new_accounts: matrix.then_some(new_accounts),
        new_uploads: matrix.then_some(new_media),
    })
}
