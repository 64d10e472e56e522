//! Handles on documents, lists, maps and streams.

mod collections;
mod document;
mod items;
mod subscription;

pub use collections::{SyncList, SyncMap, SyncStream};
pub use document::Document;
pub use items::ItemsQuery;
pub use subscription::Subscription;

use crate::cache::{Cache, CachedItem};
use crate::client::Client;
use crate::connection::{Cmd, DocCell, SUBSCRIBER_QUEUE};
use crate::error::{ClientError, Result};
use crate::events::{Item, ItemKey, SyncEvent, SyncEventKind};
use crate::http::segment;
use crate::local::WriteGuard;
use crate::paging::{Page, Pager};
use ferrosync_protocol::rest::{
    AddListItem, CreateMapItem, ItemView, ObjectView, OpenObject, PageView, Published, UpdateObject, WriteItem,
};
use ferrosync_protocol::sid::looks_like_sid;
use ferrosync_protocol::{ObjectKind, OpenMode, Order};
use futures_util::Stream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A mutator gives up after this many revision conflicts in a row.
///
/// A conflict's answer carries the object or item as it is now, and the retry goes from it at
/// once: it then races the winner's next write on equal terms, both leaving with the same
/// batch's answers. Pausing there (or reading again first) let a client that kept winning
/// keep winning, since the winner never paused: sixteen clients on one counter saw an
/// increment wait five seconds, and any pause left the carried state stale, so the retry after
/// it was lost before it was sent. Each attempt of a fair race among `n` contenders loses with
/// probability `1 - 1/n`: a thousand in a row, about 1e-7 at 64 contenders.
const MUTATE_ATTEMPTS: usize = 1000;

/// Pauses between a mutator's attempts when a conflict carries no state (a write made offline,
/// an identity that may write but not read): contenders that read and retry at once keep
/// colliding, so each waits a jittered, growing moment (1 ms doubling to 100 ms) first.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_merges_top_level_fields() {
        assert_eq!(merge(&json!({"a": 1, "b": {"c": 2}}), &json!({"b": 3, "d": 4})), json!({"a": 1, "b": 3, "d": 4}));
        assert_eq!(merge(&json!(null), &json!({"a": 1})), json!({"a": 1}));
    }
}
