//! Handles on documents, lists, maps and streams.

use crate::cache::{Cache, CachedItem};
use crate::client::Client;
use crate::connection::{Cmd, DocCell, SUBSCRIBER_QUEUE};
use crate::error::{ClientError, Result};
use crate::events::{Item, ItemKey, SyncEvent, SyncEventKind};
use crate::http::segment;
use crate::local::WriteGuard;
use crate::paging::{Page, Pager};
use ferrosync_protocol::rest::{
    AddListItem, CreateMapItem, ItemView, MessageView, ObjectView, OpenObject, PageView, UpdateObject, WriteItem,
};
use ferrosync_protocol::sid::looks_like_sid;
use ferrosync_protocol::{ObjectKind, OpenMode, Order};
use futures_util::Stream;
use reqwest::Method;
use serde_json::Value;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A mutator gives up after this many revision conflicts in a row.
const MUTATE_ATTEMPTS: usize = 64;

/// Pauses between a mutator's attempts: contenders that retry at once keep colliding, so each
/// waits a jittered, growing moment (1 ms doubling to 100 ms) before reading again.
fn conflict_backoff() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(100))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Which object to open: a SID or unique name, or a new one with a random SID.
///
/// ```
/// use ferrosync_client::ObjectId;
/// assert_eq!(ObjectId::from("lobby"), ObjectId::Named("lobby".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectId {
    /// A SID (`ET…`, `ES…`, `MP…`, `TO…`) or a unique name.
    Named(String),
    /// Create an object with a random SID.
    New,
}

impl From<&str> for ObjectId {
    fn from(s: &str) -> Self {
        ObjectId::Named(s.to_owned())
    }
}

impl From<String> for ObjectId {
    fn from(s: String) -> Self {
        ObjectId::Named(s)
    }
}

impl From<&String> for ObjectId {
    fn from(s: &String) -> Self {
        ObjectId::Named(s.clone())
    }
}

/// How to open an object, as the Sync SDKs' `OpenOptions`.
///
/// ```
/// use ferrosync_client::{OpenMode, OpenOptions};
/// let opts = OpenOptions { mode: OpenMode::CreateNew, ttl: Some(3600), data: Some(serde_json::json!({"n": 0})) };
/// assert_eq!(opts.mode, OpenMode::CreateNew);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenOptions {
    /// `OpenOrCreate` (the default), `OpenExisting` or `CreateNew`.
    pub mode: OpenMode,
    /// Seconds until the object expires; applies when it is created.
    pub ttl: Option<u64>,
    /// A new document's data.
    pub data: Option<Value>,
}

/// What every handle holds.
struct Handle {
    client: Client,
    kind: ObjectKind,
    sid: String,
    unique_name: Option<String>,
    date_expires: std::sync::Mutex<Option<String>>,
}

fn collection(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Document => "documents",
        ObjectKind::List => "lists",
        ObjectKind::Map => "maps",
        ObjectKind::Stream => "streams",
    }
}

impl Handle {
    fn cache(&self) -> Option<&Cache> {
        self.client.shared.cache.as_deref()
    }

    fn service(&self) -> &str {
        self.client.shared.rest.service()
    }

    fn path(&self) -> String {
        format!("/{}/{}", collection(self.kind), self.sid)
    }

    fn items_path(&self) -> String {
        format!("{}/items", self.path())
    }

    async fn remove(&self) -> Result<()> {
        let guard = self.client.shared.begin_write(&self.sid);
        self.client.shared.rest.send_empty(Method::DELETE, &self.path(), None).await?;
        guard.finish("", None);
        Ok(())
    }

    async fn remove_cached(&self) -> Result<()> {
        self.remove().await?;
        if let Some(cache) = self.cache() {
            cache.forget_object(self.service(), &self.sid)?;
        }
        Ok(())
    }

    async fn set_ttl(&self, ttl: u64) -> Result<()> {
        let body = UpdateObject { data: None, ttl: Some(ttl) };
        let view: ObjectView = self.client.shared.rest.send(Method::PUT, &self.path(), Some(&body), None).await?;
        *self.date_expires.lock().unwrap_or_else(|e| e.into_inner()) = view.date_expires;
        Ok(())
    }

    async fn subscribe(&self, doc: Option<DocCell>) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let (done, ready) = oneshot::channel();
        self.client.shared.send(Cmd::Subscribe { kind: self.kind, sid: self.sid.clone(), listener: tx, doc, done })?;
        ready.await.map_err(|_| ClientError::Closed)??;
        let cache = self.client.shared.cache.clone().map(|c| (c, self.service().to_owned()));
        Ok(Subscription { rx, sid: self.sid.clone(), cmds: self.client.shared.cmds.clone(), cache })
    }

    fn items(&self) -> ItemsQuery {
        ItemsQuery {
            client: self.client.clone(),
            path: self.items_path(),
            kind: self.kind,
            sid: self.sid.clone(),
            order: Order::Asc,
            from: None,
        }
    }
}

impl Client {
    async fn open(&self, kind: ObjectKind, id: ObjectId, opts: OpenOptions) -> Result<(Arc<Handle>, ObjectView)> {
        let (sid, unique_name) = match id {
            ObjectId::Named(n) if looks_like_sid(&n) => (Some(n), None),
            ObjectId::Named(n) => (None, Some(n)),
            ObjectId::New => (None, None),
        };
        let cached_id = sid.clone().or_else(|| unique_name.clone());
        let body = OpenObject { sid, unique_name, mode: opts.mode, ttl: opts.ttl, data: opts.data };
        let path = format!("/{}", collection(kind));
        let service = self.shared.rest.service();
        let view = match self.shared.rest.send::<_, ObjectView>(Method::POST, &path, Some(&body), None).await {
            Ok(view) => {
                if let Some(cache) = &self.shared.cache {
                    let data = (kind == ObjectKind::Document).then(|| view.data.clone().unwrap_or(Value::Null));
                    cache.put_object(
                        service,
                        kind,
                        &view.sid,
                        view.unique_name.as_deref(),
                        data.as_ref(),
                        view.revision,
                        view.date_expires.as_deref(),
                    )?;
                }
                view
            }
            // Offline: what the cache holds of it, if it was opened here before.
            Err(e) if e.is_unreachable() && opts.mode != OpenMode::CreateNew => {
                let cached = match (&self.shared.cache, &cached_id) {
                    (Some(cache), Some(id)) => cache.object(service, kind, id)?,
                    _ => None,
                };
                let Some(c) = cached else { return Err(e) };
                ObjectView {
                    sid: c.sid,
                    unique_name: c.unique_name,
                    data: Some(c.data),
                    revision: c.revision,
                    date_expires: c.date_expires,
                    service_sid: service.to_owned(),
                    kind,
                    date_created: String::new(),
                    date_updated: String::new(),
                    created_by: String::new(),
                }
            }
            Err(e) => return Err(e),
        };
        let handle = Arc::new(Handle {
            client: self.clone(),
            kind,
            sid: view.sid.clone(),
            unique_name: view.unique_name.clone(),
            date_expires: std::sync::Mutex::new(view.date_expires.clone()),
        });
        Ok((handle, view))
    }

    /// Opens (or creates) a document.
    pub async fn document(&self, id: impl Into<ObjectId>) -> Result<Document> {
        self.open_document(id, OpenOptions::default()).await
    }

    pub async fn open_document(&self, id: impl Into<ObjectId>, opts: OpenOptions) -> Result<Document> {
        let (h, view) = self.open(ObjectKind::Document, id.into(), opts).await?;
        let state = Client::doc_cell(view.data.unwrap_or(Value::Null), view.revision);
        Ok(Document { h, state })
    }

    /// Opens (or creates) a list.
    pub async fn list(&self, id: impl Into<ObjectId>) -> Result<SyncList> {
        self.open_list(id, OpenOptions::default()).await
    }

    pub async fn open_list(&self, id: impl Into<ObjectId>, opts: OpenOptions) -> Result<SyncList> {
        Ok(SyncList { h: self.open(ObjectKind::List, id.into(), opts).await?.0 })
    }

    /// Opens (or creates) a map.
    pub async fn map(&self, id: impl Into<ObjectId>) -> Result<SyncMap> {
        self.open_map(id, OpenOptions::default()).await
    }

    pub async fn open_map(&self, id: impl Into<ObjectId>, opts: OpenOptions) -> Result<SyncMap> {
        Ok(SyncMap { h: self.open(ObjectKind::Map, id.into(), opts).await?.0 })
    }

    /// Opens (or creates) a message stream.
    pub async fn stream(&self, id: impl Into<ObjectId>) -> Result<SyncStream> {
        self.open_stream(id, OpenOptions::default()).await
    }

    pub async fn open_stream(&self, id: impl Into<ObjectId>, opts: OpenOptions) -> Result<SyncStream> {
        Ok(SyncStream { h: self.open(ObjectKind::Stream, id.into(), opts).await?.0 })
    }
}

/// The events of one subscribed object, in log order, each once: the connection resumes from
/// the last one delivered after every reconnect. Dropping it unsubscribes (when it was the
/// object's last subscriber).
///
/// ```no_run
/// # async fn demo(doc: ferrosync_client::Document) -> ferrosync_client::Result<()> {
/// let mut changes = doc.subscribe().await?;
/// while let Some(e) = changes.recv().await {
///     if !e.is_local {
///         println!("someone else changed it: {:?}", e.kind);
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    rx: mpsc::Receiver<SyncEvent>,
    sid: String,
    cmds: mpsc::UnboundedSender<Cmd>,
    /// The offline cache and service, which follow the events delivered.
    cache: Option<(Arc<Cache>, String)>,
}

impl Subscription {
    /// The next event; `None` once the client is shut down.
    pub async fn recv(&mut self) -> Option<SyncEvent> {
        let e = self.rx.recv().await;
        self.remember(e.as_ref());
        e
    }

    fn remember(&self, event: Option<&SyncEvent>) {
        let (Some((cache, service)), Some(e)) = (&self.cache, event) else { return };
        let kept = match &e.kind {
            SyncEventKind::Updated { data, revision, .. } => cache.update_document(service, &self.sid, data, *revision),
            SyncEventKind::ItemAdded { item } | SyncEventKind::ItemUpdated { item, .. } => {
                cache.put_item(service, &self.sid, item)
            }
            SyncEventKind::ItemRemoved { key, .. } => cache.drop_item(service, &self.sid, key),
            SyncEventKind::Removed { .. } => cache.forget_object(service, &self.sid),
            SyncEventKind::MessagePublished { .. } => Ok(()),
        };
        if let Err(err) = kept {
            tracing::warn!(error = %err, "offline cache not updated");
        }
    }
}

impl Stream for Subscription {
    type Item = SyncEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SyncEvent>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(e) = &polled {
            self.remember(e.as_ref());
        }
        polled
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx.close();
        let _ = self.cmds.send(Cmd::Dropped { sid: self.sid.clone() });
    }
}

/// Merges `patch`'s top-level fields into `data` (an object; anything else is replaced).
fn merge(data: &Value, patch: &Value) -> Value {
    match (data, patch) {
        (Value::Object(base), Value::Object(p)) => {
            let mut out = base.clone();
            for (k, v) in p {
                out.insert(k.clone(), v.clone());
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

/// A JSON document.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// let counter = client.document("counter").await?;
/// counter.mutate(|d| Some(serde_json::json!({"n": d["n"].as_i64().unwrap_or(0) + 1}))).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Document {
    h: Arc<Handle>,
    state: DocCell,
}

impl Document {
    pub fn sid(&self) -> &str {
        &self.h.sid
    }

    pub fn unique_name(&self) -> Option<&str> {
        self.h.unique_name.as_deref()
    }

    /// The data as last seen: on open, after a write, or from a subscription's events.
    pub fn data(&self) -> Value {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).data.clone()
    }

    pub fn revision(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).revision
    }

    /// RFC 3339, when the document has a TTL.
    pub fn date_expires(&self) -> Option<String> {
        self.h.date_expires.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keep(&self, view: &ObjectView) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if view.revision >= s.revision {
            s.revision = view.revision;
            s.data = view.data.clone().unwrap_or(Value::Null);
        }
        if let Some(cache) = self.h.cache()
            && let Err(e) = cache.update_document(self.h.service(), &self.h.sid, &s.data, s.revision)
        {
            tracing::warn!(error = %e, "offline cache not updated");
        }
    }

    /// Reads the document from the server.
    ///
    /// Offline, with a cache, it is the cached data (with this client's pending changes).
    pub async fn get(&self) -> Result<Value> {
        let view: ObjectView =
            match self.h.client.shared.rest.send::<(), _>(Method::GET, &self.h.path(), None, None).await {
                Ok(view) => view,
                Err(e) if e.is_unreachable() => {
                    let cached = match self.h.cache() {
                        Some(cache) => cache.object(self.h.service(), ObjectKind::Document, &self.h.sid)?,
                        None => None,
                    };
                    return cached.map(|c| c.data).ok_or(e);
                }
                Err(e) => return Err(e),
            };
        self.keep(&view);
        Ok(view.data.unwrap_or(Value::Null))
    }

    async fn write(&self, data: Value, if_match: Option<u64>) -> Result<Value> {
        let guard = self.h.client.shared.begin_write(&self.h.sid);
        let body = UpdateObject { data: Some(data), ttl: None };
        let view: ObjectView =
            match self.h.client.shared.rest.send(Method::PUT, &self.h.path(), Some(&body), if_match).await {
                Ok(view) => view,
                Err(e) if e.is_unreachable() => {
                    let Some(data) = body.data else { return Err(e) };
                    // Kept in the cache and sent when the server is back (see `offline`).
                    match self.h.cache() {
                        Some(cache) if cache.write_document(self.h.service(), &self.h.sid, &data, if_match)? => {
                            self.state.lock().unwrap_or_else(|e| e.into_inner()).data = data.clone();
                            return Ok(data);
                        }
                        _ => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
        guard.finish("", Some(view.revision));
        self.keep(&view);
        Ok(view.data.unwrap_or(Value::Null))
    }

    /// Replaces the data, whatever the current revision.
    pub async fn set(&self, data: Value) -> Result<Value> {
        self.write(data, None).await
    }

    /// Sets the data only if the document is still at `revision`.
    pub async fn set_if(&self, data: Value, revision: u64) -> Result<Value> {
        self.write(data, Some(revision)).await
    }

    /// Merges `patch`'s top-level fields into the data, retrying on concurrent changes.
    pub async fn update(&self, patch: Value) -> Result<Value> {
        self.mutate(|d| Some(merge(d, &patch))).await
    }

    /// Applies `f` to the current data and writes the result with `If-Match`; on a conflict,
    /// reads again and re-applies. `f` returning `None` leaves the document as it is.
    pub async fn mutate(&self, mut f: impl FnMut(&Value) -> Option<Value>) -> Result<Value> {
        let (mut data, mut revision) = {
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (s.data.clone(), s.revision)
        };
        let mut pauses = conflict_backoff();
        for _ in 0..MUTATE_ATTEMPTS {
            let Some(next) = f(&data) else { return Ok(data) };
            match self.write(next, Some(revision)).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_conflict() => {
                    tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(100))).await;
                    data = self.get().await?;
                    revision = self.revision();
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Api {
            status: 412,
            code: 41200,
            message: format!("mutate: still conflicting after {MUTATE_ATTEMPTS} attempts"),
        })
    }

    /// Removes the document.
    pub async fn remove(&self) -> Result<()> {
        self.h.remove_cached().await
    }

    /// Sets the TTL in seconds from now (0 removes it).
    pub async fn set_ttl(&self, ttl: u64) -> Result<()> {
        self.h.set_ttl(ttl).await
    }

    /// Subscribes to its changes; the cached [`Document::data`] follows them.
    pub async fn subscribe(&self) -> Result<Subscription> {
        self.h.subscribe(Some(self.state.clone())).await
    }
}

/// A listing of a list's or map's items: set its order and start, then read it with
/// [`Pager`]'s methods.
///
/// ```no_run
/// # async fn demo(map: ferrosync_client::SyncMap) -> ferrosync_client::Result<()> {
/// use ferrosync_client::Order;
/// let page = map.items().order(Order::Desc).from("m").page(None, Some(100)).await?;
/// if let Some(token) = page.next_page_token.as_deref() {
///     let next = map.items().order(Order::Desc).from("m").page(Some(token), Some(100)).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ItemsQuery {
    client: Client,
    path: String,
    kind: ObjectKind,
    sid: String,
    order: Order,
    from: Option<ItemKey>,
}

impl ItemsQuery {
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Start at this index or key (inclusive).
    pub fn from(mut self, from: impl Into<ItemKey>) -> Self {
        self.from = Some(from.into());
        self
    }

    fn pager(&self) -> Pager<Item> {
        let q = self.clone();
        Pager::new(move |token, url, size| {
            let q = q.clone();
            Box::pin(async move {
                let rest = &q.client.shared.rest;
                let first = token.is_none() && url.is_none();
                let url = match url {
                    Some(u) => u,
                    None => {
                        let mut params = form_params(q.order, q.from.as_ref(), size, token.as_deref());
                        params.insert(0, '?');
                        format!("{}{params}", rest.url(&q.path))
                    }
                };
                let cache = q.client.shared.cache.as_deref();
                let view: PageView<ItemView> = match rest.send_url::<(), _>(Method::GET, &url, None, None).await {
                    Ok(view) => view,
                    // Offline: the whole cached listing as one page.
                    Err(e) if e.is_unreachable() && first && cache.is_some() => {
                        let Some(cache) = cache else { return Err(e) };
                        let items = cache.items(rest.service(), q.kind, &q.sid, q.order, q.from.as_ref())?;
                        return Ok(Page { items, next_page_token: None, next_page_url: None });
                    }
                    Err(e) => return Err(e),
                };
                let items: Vec<Item> = view.items.into_iter().map(Item::from).collect();
                if let Some(cache) = cache {
                    for item in &items {
                        cache.put_item(rest.service(), &q.sid, item)?;
                    }
                }
                Ok(Page { items, next_page_token: view.meta.next_page_token, next_page_url: view.meta.next_page_url })
            })
        })
    }

    /// See [`Pager::list`].
    pub async fn list(&self, limit: Option<usize>, page_size: Option<u32>) -> Result<Vec<Item>> {
        self.pager().list(limit, page_size).await
    }

    /// See [`Pager::stream`].
    pub fn stream(
        &self,
        limit: Option<usize>,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<Item>> + Send + use<> {
        self.pager().stream(limit, page_size)
    }

    /// See [`Pager::page`].
    pub async fn page(&self, token: Option<&str>, page_size: Option<u32>) -> Result<Page<Item>> {
        self.pager().page(token, page_size).await
    }

    /// See [`Pager::get_page`].
    pub async fn get_page(&self, url: &str) -> Result<Page<Item>> {
        self.pager().get_page(url).await
    }
}

fn form_params(order: Order, from: Option<&ItemKey>, size: u32, token: Option<&str>) -> String {
    let mut q: Vec<(&str, String)> = Vec::with_capacity(4);
    q.push(("order", if order == Order::Desc { "desc".into() } else { "asc".into() }));
    q.push(("page_size", size.to_string()));
    if let Some(f) = from {
        q.push(("from", f.to_string()));
    }
    if let Some(t) = token {
        q.push(("page_token", t.to_owned()));
    }
    q.iter().map(|(k, v)| format!("{k}={}", segment(v))).collect::<Vec<_>>().join("&")
}

/// Shared by lists and maps.
impl Handle {
    async fn get_item(&self, key: &ItemKey) -> Result<Item> {
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        match self.client.shared.rest.send::<(), ItemView>(Method::GET, &path, None, None).await {
            Ok(view) => {
                let item = Item::from(view);
                if let Some(cache) = self.cache() {
                    cache.put_item(self.service(), &self.sid, &item)?;
                }
                Ok(item)
            }
            Err(e) if e.is_not_found() => {
                if let Some(cache) = self.cache() {
                    cache.drop_item(self.service(), &self.sid, key)?;
                }
                Err(e)
            }
            Err(e) if e.is_unreachable() => match self.cached_item(key)? {
                Some(CachedItem::Present { item, .. }) => Ok(item),
                Some(CachedItem::Removed { .. }) => {
                    Err(ClientError::Api { status: 404, code: 0, message: format!("{key}: removed (offline)") })
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn set_item_ttl(&self, key: &ItemKey, ttl: u64) -> Result<Item> {
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        let body = WriteItem { data: None, ttl: Some(ttl), collection_ttl: None };
        let view: ItemView = self.client.shared.rest.send(Method::PUT, &path, Some(&body), None).await?;
        Ok(view.into())
    }

    fn cached_item(&self, key: &ItemKey) -> Result<Option<CachedItem>> {
        match self.cache() {
            Some(cache) => cache.item(self.service(), self.kind, &self.sid, key),
            None => Ok(None),
        }
    }

    /// Keeps a write (`Some`) or removal (`None`) made offline in the cache, to be sent later;
    /// `false` when it cannot be: no cache, or a list item the cache does not hold (only a
    /// map item can be created under its name).
    fn write_offline(&self, key: &ItemKey, data: Option<&Value>) -> Result<bool> {
        let Some(cache) = self.cache() else { return Ok(false) };
        if self.kind == ObjectKind::List && !matches!(self.cached_item(key)?, Some(CachedItem::Present { .. })) {
            return Ok(false);
        }
        cache.write_item(self.service(), &self.sid, key, data)?;
        Ok(true)
    }

    /// What an offline write returns: the item as the cache now holds it.
    fn offline_item(&self, key: &ItemKey, data: Value) -> Result<Item> {
        let revision = match self.cached_item(key)? {
            Some(CachedItem::Present { item, .. }) => item.revision,
            _ => 0,
        };
        Ok(Item { key: key.clone(), data, revision, date_expires: None })
    }

    async fn put_item(&self, key: &ItemKey, data: Value, ttl: Option<u64>, if_match: Option<u64>) -> Result<Item> {
        let guard = self.client.shared.begin_write(&self.sid);
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        let body = WriteItem { data: Some(data), ttl, collection_ttl: None };
        let view: ItemView = match self.client.shared.rest.send(Method::PUT, &path, Some(&body), if_match).await {
            Ok(view) => view,
            // A TTL is not kept offline: such a write fails rather than lose it.
            Err(e) if e.is_unreachable() && ttl.is_none() => {
                // A conditional write is checked against the cache's revision, its best knowledge.
                if let (Some(expected), Some(CachedItem::Present { item, .. })) = (if_match, self.cached_item(key)?)
                    && item.revision != expected
                {
                    return Err(ClientError::Api {
                        status: 412,
                        code: 0,
                        message: format!("{key}: revision is {}, not {expected} (offline)", item.revision),
                    });
                }
                return self.keep_offline(key, body.data.unwrap_or(Value::Null), e);
            }
            Err(e) => return Err(e),
        };
        self.written(guard, key, view)
    }

    /// A write the server took: marked as this client's, and remembered by the cache.
    fn written(&self, guard: WriteGuard, key: &ItemKey, view: ItemView) -> Result<Item> {
        guard.finish(key.to_string(), Some(view.revision));
        let item = Item::from(view);
        if let Some(cache) = self.cache() {
            cache.put_item(self.service(), &self.sid, &item)?;
        }
        Ok(item)
    }

    /// A write that could not reach the server: kept for later if it can be, else `e`.
    fn keep_offline(&self, key: &ItemKey, data: Value, e: ClientError) -> Result<Item> {
        if self.write_offline(key, Some(&data))? { self.offline_item(key, data) } else { Err(e) }
    }

    async fn remove_item(&self, key: &ItemKey, if_match: Option<u64>) -> Result<()> {
        let guard = self.client.shared.begin_write(&self.sid);
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        match self.client.shared.rest.send_empty(Method::DELETE, &path, if_match).await {
            Ok(()) => {}
            Err(e) if e.is_unreachable() => return if self.write_offline(key, None)? { Ok(()) } else { Err(e) },
            Err(e) => return Err(e),
        }
        guard.finish(key.to_string(), None);
        if let Some(cache) = self.cache() {
            cache.drop_item(self.service(), &self.sid, key)?;
        }
        Ok(())
    }

    /// Read–modify–write of one item with `If-Match`; a missing item is given to `f` as `{}`
    /// and created (maps only).
    async fn mutate_item(&self, key: &ItemKey, mut f: impl FnMut(&Value) -> Option<Value>) -> Result<Item> {
        let mut pauses = conflict_backoff();
        for _ in 0..MUTATE_ATTEMPTS {
            let current = match self.get_item(key).await {
                Ok(item) => Some(item),
                Err(e) if e.is_not_found() && self.kind == ObjectKind::Map => None,
                Err(e) => return Err(e),
            };
            let base = current.as_ref().map_or_else(|| Value::Object(Default::default()), |i| i.data.clone());
            let Some(next) = f(&base) else {
                return current.ok_or_else(|| ClientError::Api {
                    status: 404,
                    code: 0,
                    message: format!("{key}: no such item"),
                });
            };
            let written = match &current {
                Some(item) => self.put_item(key, next, None, Some(item.revision)).await,
                None => self.create_map_item(key, next, None).await,
            };
            match written {
                Ok(item) => return Ok(item),
                Err(e) if e.is_conflict() || e.status() == Some(409) => {
                    tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(100))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Api {
            status: 412,
            code: 41200,
            message: format!("mutate: still conflicting after {MUTATE_ATTEMPTS} attempts"),
        })
    }

    async fn create_map_item(&self, key: &ItemKey, data: Value, ttl: Option<u64>) -> Result<Item> {
        let guard = self.client.shared.begin_write(&self.sid);
        let body = CreateMapItem { key: key.to_string(), data, ttl, collection_ttl: None };
        let view: ItemView =
            match self.client.shared.rest.send(Method::POST, &self.items_path(), Some(&body), None).await {
                Ok(view) => view,
                Err(e) if e.is_unreachable() && ttl.is_none() => return self.keep_offline(key, body.data, e),
                Err(e) => return Err(e),
            };
        self.written(guard, key, view)
    }
}

macro_rules! common_handle_methods {
    () => {
        pub fn sid(&self) -> &str {
            &self.h.sid
        }

        pub fn unique_name(&self) -> Option<&str> {
            self.h.unique_name.as_deref()
        }

        /// RFC 3339, when the object has a TTL.
        pub fn date_expires(&self) -> Option<String> {
            self.h.date_expires.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// Removes the object with everything in it.
        pub async fn remove(&self) -> Result<()> {
            self.h.remove_cached().await
        }

        /// Sets the TTL in seconds from now (0 removes it).
        pub async fn set_ttl(&self, ttl: u64) -> Result<()> {
            self.h.set_ttl(ttl).await
        }

        /// Subscribes to its changes.
        pub async fn subscribe(&self) -> Result<Subscription> {
            self.h.subscribe(None).await
        }
    };
}

/// An ordered list of JSON items, indexed by the order they were added.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// let chat = client.list("chat").await?;
/// chat.push(serde_json::json!({"from": "alice", "text": "hi"})).await?;
/// let latest = chat.items().order(ferrosync_client::Order::Desc).list(Some(20), None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncList {
    h: Arc<Handle>,
}

impl SyncList {
    common_handle_methods!();

    /// Appends an item.
    pub async fn push(&self, data: Value) -> Result<Item> {
        self.push_item(data, None).await
    }

    /// Appends an item that expires after `ttl` seconds.
    pub async fn push_with_ttl(&self, data: Value, ttl: u64) -> Result<Item> {
        self.push_item(data, Some(ttl)).await
    }

    async fn push_item(&self, data: Value, ttl: Option<u64>) -> Result<Item> {
        let guard = self.h.client.shared.begin_write(&self.h.sid);
        let body = AddListItem { data, ttl, collection_ttl: None };
        let view: ItemView =
            self.h.client.shared.rest.send(Method::POST, &self.h.items_path(), Some(&body), None).await?;
        guard.finish(view.index.unwrap_or_default().to_string(), Some(view.revision));
        Ok(view.into())
    }

    pub async fn get(&self, index: u64) -> Result<Item> {
        self.h.get_item(&ItemKey::Index(index)).await
    }

    /// Replaces an existing item's data.
    pub async fn set(&self, index: u64, data: Value) -> Result<Item> {
        self.h.put_item(&ItemKey::Index(index), data, None, None).await
    }

    /// Replaces an item's data only if it is still at `revision`.
    pub async fn set_if(&self, index: u64, data: Value, revision: u64) -> Result<Item> {
        self.h.put_item(&ItemKey::Index(index), data, None, Some(revision)).await
    }

    /// Merges `patch`'s top-level fields into the item, retrying on concurrent changes.
    pub async fn update(&self, index: u64, patch: Value) -> Result<Item> {
        self.h.mutate_item(&ItemKey::Index(index), |d| Some(merge(d, &patch))).await
    }

    /// Read–modify–write with automatic retry on conflicts (see [`Document::mutate`]).
    pub async fn mutate(&self, index: u64, f: impl FnMut(&Value) -> Option<Value>) -> Result<Item> {
        self.h.mutate_item(&ItemKey::Index(index), f).await
    }

    /// Sets an item's TTL in seconds from now (0 removes it), leaving its data.
    pub async fn set_item_ttl(&self, index: u64, ttl: u64) -> Result<Item> {
        self.h.set_item_ttl(&ItemKey::Index(index), ttl).await
    }

    pub async fn remove_item(&self, index: u64) -> Result<()> {
        self.h.remove_item(&ItemKey::Index(index), None).await
    }

    /// The items, ascending by index unless ordered otherwise.
    pub fn items(&self) -> ItemsQuery {
        self.h.items()
    }
}

/// A map of string keys to JSON items.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// let presence = client.map("presence").await?;
/// presence.set("alice", serde_json::json!({"online": true})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncMap {
    h: Arc<Handle>,
}

impl SyncMap {
    common_handle_methods!();

    /// Creates or replaces an item.
    pub async fn set(&self, key: &str, data: Value) -> Result<Item> {
        self.h.put_item(&ItemKey::Key(key.to_owned()), data, None, None).await
    }

    /// Creates or replaces an item that expires after `ttl` seconds.
    pub async fn set_with_ttl(&self, key: &str, data: Value, ttl: u64) -> Result<Item> {
        self.h.put_item(&ItemKey::Key(key.to_owned()), data, Some(ttl), None).await
    }

    pub async fn get(&self, key: &str) -> Result<Item> {
        self.h.get_item(&ItemKey::Key(key.to_owned())).await
    }

    /// Replaces an item's data only if it is still at `revision`.
    pub async fn set_if(&self, key: &str, data: Value, revision: u64) -> Result<Item> {
        self.h.put_item(&ItemKey::Key(key.to_owned()), data, None, Some(revision)).await
    }

    /// Merges `patch`'s top-level fields into the item (created when missing).
    pub async fn update(&self, key: &str, patch: Value) -> Result<Item> {
        self.h.mutate_item(&ItemKey::Key(key.to_owned()), |d| Some(merge(d, &patch))).await
    }

    /// Read–modify–write with automatic retry on conflicts; a missing item is given as `{}`.
    pub async fn mutate(&self, key: &str, f: impl FnMut(&Value) -> Option<Value>) -> Result<Item> {
        self.h.mutate_item(&ItemKey::Key(key.to_owned()), f).await
    }

    /// Sets an item's TTL in seconds from now (0 removes it), leaving its data.
    pub async fn set_item_ttl(&self, key: &str, ttl: u64) -> Result<Item> {
        self.h.set_item_ttl(&ItemKey::Key(key.to_owned()), ttl).await
    }

    pub async fn remove_item(&self, key: &str) -> Result<()> {
        self.h.remove_item(&ItemKey::Key(key.to_owned()), None).await
    }

    /// The items, ascending by key unless ordered otherwise.
    pub fn items(&self) -> ItemsQuery {
        self.h.items()
    }
}

/// A stream of messages: published, delivered to subscribers, not stored.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// let typing = client.stream("typing").await?;
/// typing.publish(serde_json::json!({"who": "alice"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncStream {
    h: Arc<Handle>,
}

impl SyncStream {
    common_handle_methods!();

    /// Publishes a message (a JSON object of at most 4 KiB); returns its SID.
    pub async fn publish(&self, data: Value) -> Result<String> {
        let guard = self.h.client.shared.begin_write(&self.h.sid);
        let path = format!("{}/messages", self.h.path());
        let body = ferrosync_protocol::rest::PublishMessage { data };
        let view: MessageView = self.h.client.shared.rest.send(Method::POST, &path, Some(&body), None).await?;
        guard.finish(view.sid.clone(), None);
        Ok(view.sid)
    }
}

/// Handles print as their kind, SID and unique name.
macro_rules! handle_debug {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("sid", &self.h.sid).field("unique_name", &self.h.unique_name).finish()
            }
        }
    )*};
}

handle_debug!(Document, SyncList, SyncMap, SyncStream);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_merges_top_level_fields() {
        assert_eq!(merge(&json!({"a": 1, "b": {"c": 2}}), &json!({"b": 3, "d": 4})), json!({"a": 1, "b": 3, "d": 4}));
        assert_eq!(merge(&json!(null), &json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn listing_parameters_are_escaped() {
        let p = form_params(Order::Desc, Some(&ItemKey::Key("a b&c".into())), 20, Some("t/1"));
        assert_eq!(p, "order=desc&page_size=20&from=a%20b%26c&page_token=t%2F1");
    }
}
