//! Documents.

use super::*;

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
    pub(super) h: Arc<Handle>,
    pub(super) state: DocCell,
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
        self.keep_at(view.revision, || view.data.clone().unwrap_or(Value::Null));
    }

    /// Keeps `data` as the document at `revision`, unless a later revision is already kept.
    fn keep_at(&self, revision: u64, data: impl FnOnce() -> Value) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if revision >= s.revision {
            s.revision = revision;
            s.data = data();
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
        let revision = match self.h.client.shared.rest.send_minimal(Method::PUT, &self.h.path(), &body, if_match).await
        {
            Ok(revision) => revision,
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
        guard.finish("", Some(revision));
        // The server keeps the data as sent, so it is not sent back.
        let data = body.data.unwrap_or(Value::Null);
        self.keep_at(revision, || data.clone());
        Ok(data)
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
    /// re-applies it at once to the document as the conflict's answer carries it (or, when the
    /// answer carries none, after a short pause and a read). `f` returning `None` leaves the
    /// document as it is.
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
                    match e.current().and_then(|c| ObjectView::deserialize(c).ok()) {
                        Some(now) => self.keep(&now),
                        None => {
                            tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(100))).await;
                            self.get().await?;
                        }
                    }
                    let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    (data, revision) = (s.data.clone(), s.revision);
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::refused(412, 41200, format!("mutate: still conflicting after {MUTATE_ATTEMPTS} attempts")))
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
