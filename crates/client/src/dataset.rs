//! Datasets: a map used the way Cognito Sync's sync manager uses its datasets. Reads and
//! writes are local and never wait for the network; [`Dataset::synchronize`] pulls what
//! changed on the server since the last synchronisation, settles conflicts with local changes
//! through a handler, then pushes the local changes.

use crate::cache::{Cache, CachedItem, DirtyRow};
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::events::ItemKey;
use crate::offline::{Conflict, ConflictHandler, ReplayReport, Resolution};
use ferrosync_protocol::rest::{ChangesView, ItemView, ObjectView, OpenObject, PageView};
use ferrosync_protocol::{Event, EventKind, ObjectKind, OpenMode};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Events read per request while pulling.
const PULL_PAGE: u32 = 1000;

/// Rounds of pull-then-push when another writer keeps racing ours.
const SYNC_ROUNDS: usize = 3;

/// One record of a dataset.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// let prefs = client.dataset("prefs").await?;
/// let unsent = prefs.records()?.into_iter().filter(|r| r.modified).count();
/// println!("{unsent} records wait for the next synchronize()");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    /// `None` for a record removed here and not yet synchronised.
    pub value: Option<Value>,
    /// The server's revision of it when last synchronised (revisions start at 0; a record made
    /// here and not yet synchronised shows 0 too, and `modified`).
    pub sync_count: u64,
    /// Changed here since the last synchronisation.
    pub modified: bool,
}

/// What one [`Dataset::synchronize`] did.
///
/// ```
/// let r = ferrosync_client::SyncReport { pulled: 3, pushed: 1, conflicts: 0, rejected: 0 };
/// assert_eq!(r.pulled + r.pushed, 4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Records changed on the server and applied here.
    pub pulled: usize,
    /// Local changes the server accepted.
    pub pushed: usize,
    /// Records changed on both sides, settled by the handler.
    pub conflicts: usize,
    /// Local changes the server refused (dropped; the record follows the server).
    pub rejected: usize,
}

/// A local-first map: see the module's introduction.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// use ferrosync_client::Resolution;
/// let settings = client.dataset("settings").await?;
/// settings.put("theme", serde_json::json!("dark"))?; // local, at once
/// let report = settings.synchronize_with(|_conflict| Resolution::KeepRemote).await?;
/// println!("pulled {} pushed {}", report.pulled, report.pushed);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dataset {
    client: Client,
    cache: Arc<Cache>,
    sid: String,
    name: String,
}

/// What the server holds of one record now: `None` when removed.
type Remote = Option<(Value, u64)>;

impl Client {
    /// Opens (or creates) the dataset `name`, a map of that unique name. Its records live in
    /// the client's cache (see [`crate::ClientBuilder::cache`]), or in memory without one.
    /// Opening one this client has never seen needs the server; after that it opens offline.
    pub async fn dataset(&self, name: &str) -> Result<Dataset> {
        let cache = self.shared.local_store()?;
        let service = self.shared.rest.service();
        let body = OpenObject {
            sid: None,
            unique_name: Some(name.to_owned()),
            mode: OpenMode::OpenOrCreate,
            ttl: None,
            data: None,
        };
        let sid = match self.shared.rest.send::<_, ObjectView>(Method::POST, "/maps", Some(&body), None).await {
            Ok(view) => {
                cache.put_object(service, ObjectKind::Map, &view.sid, Some(name), None, view.revision, None)?;
                cache.mark_dataset(service, &view.sid)?;
                view.sid
            }
            Err(e) if e.is_unreachable() => match cache.object(service, ObjectKind::Map, name)? {
                Some(c) => c.sid,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        Ok(Dataset { client: self.clone(), cache, sid, name: name.to_owned() })
    }
}

impl Dataset {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SID of the map that holds it.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    fn service(&self) -> &str {
        self.client.shared.rest.service()
    }

    /// A record's value, as known here.
    pub fn get(&self, key: &str) -> Result<Option<Value>> {
        Ok(match self.cache.item(self.service(), ObjectKind::Map, &self.sid, &ItemKey::Key(key.to_owned()))? {
            Some(CachedItem::Present { item, .. }) => Some(item.data),
            _ => None,
        })
    }

    /// Sets a record (a JSON object) here; [`Dataset::synchronize`] sends it.
    pub fn put(&self, key: &str, value: Value) -> Result<()> {
        check_key(key)?;
        if !value.is_object() {
            return Err(ClientError::InvalidArgument { field: "value", message: "must be a JSON object".into() });
        }
        self.cache.write_item(self.service(), &self.sid, &ItemKey::Key(key.to_owned()), Some(&value))
    }

    /// Removes a record here; [`Dataset::synchronize`] sends the removal.
    pub fn remove(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.cache.write_item(self.service(), &self.sid, &ItemKey::Key(key.to_owned()), None)
    }

    /// Every record, removals made here included, in key order.
    pub fn records(&self) -> Result<Vec<Record>> {
        self.cache.records(self.service(), &self.sid)
    }

    /// The change-log position the last synchronisation reached.
    pub fn last_sync_token(&self) -> Result<Option<String>> {
        self.cache.sync_point(self.service(), &self.sid)
    }

    /// Synchronises, settling conflicts with the client's handler
    /// ([`crate::ClientBuilder::on_conflict`]).
    pub async fn synchronize(&self) -> Result<SyncReport> {
        let handler = self.client.shared.on_conflict.clone();
        self.sync(&handler).await
    }

    /// Synchronises, settling conflicts with `handler`.
    pub async fn synchronize_with(
        &self,
        handler: impl Fn(&Conflict) -> Resolution + Send + Sync + 'static,
    ) -> Result<SyncReport> {
        let handler: ConflictHandler = Arc::new(handler);
        self.sync(&handler).await
    }

    async fn sync(&self, handler: &ConflictHandler) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        for _ in 0..SYNC_ROUNDS {
            let (changes, next) = self.pull().await?;
            for (key, remote) in changes {
                self.apply(&key, remote, handler, &mut report)?;
            }
            self.cache.set_sync_point(self.service(), &self.sid, Some(&next))?;
            let rows = self.cache.dirty(self.service(), Some(&self.sid))?;
            if rows.is_empty() {
                break;
            }
            let ReplayReport { sent, conflicts, rejected } = self.client.replay(&self.cache, rows, handler).await?;
            report.pushed += sent;
            report.conflicts += conflicts;
            report.rejected += rejected;
            if self.cache.dirty(self.service(), Some(&self.sid))?.is_empty() {
                break;
            }
        }
        Ok(report)
    }

    /// The records changed on the server since the last synchronisation, and the position
    /// reached. The first time, and when the log no longer reaches back that far, it is every
    /// record (and those no longer there are removed).
    async fn pull(&self) -> Result<(BTreeMap<String, Remote>, String)> {
        if let Some(since) = self.last_sync_token()? {
            match self.changes_since(&since).await {
                Ok(pulled) => return Ok(pulled),
                // 410: the log was trimmed past the last sync point.
                Err(e) if e.status() == Some(410) => {}
                Err(e) => return Err(e),
            }
        }
        self.everything().await
    }

    async fn changes(&self, since: Option<&str>) -> Result<ChangesView> {
        let mut q = format!("/changes?object={}&limit={PULL_PAGE}", self.sid);
        if let Some(s) = since {
            q.push_str("&since=");
            q.push_str(&crate::http::segment(s));
        }
        self.client.shared.rest.send::<(), ChangesView>(Method::GET, &q, None, None).await
    }

    async fn changes_since(&self, since: &str) -> Result<(BTreeMap<String, Remote>, String)> {
        let mut out = BTreeMap::new();
        let mut since = since.to_owned();
        loop {
            let view = self.changes(Some(&since)).await?;
            let n = view.events.len();
            for raw in &view.events {
                let e: Event = serde_json::from_str(raw.get()).map_err(|e| ClientError::Decode(e.to_string()))?;
                let Some(key) = e.item_key.clone() else {
                    if e.kind == EventKind::MapRemoved {
                        self.cache.forget_object(self.service(), &self.sid)?;
                        return Err(ClientError::refused(
                            404,
                            0,
                            format!("dataset {} was removed on the server", self.name),
                        ));
                    }
                    continue;
                };
                let remote = match e.kind {
                    EventKind::MapItemAdded | EventKind::MapItemUpdated => {
                        Some((e.data.map(std::sync::Arc::unwrap_or_clone).unwrap_or(Value::Null), e.revision))
                    }
                    EventKind::MapItemRemoved => None,
                    _ => continue,
                };
                out.insert(key, remote);
            }
            since = view.next;
            if n < PULL_PAGE as usize {
                return Ok((out, since));
            }
        }
    }

    async fn everything(&self) -> Result<(BTreeMap<String, Remote>, String)> {
        // The position first: a change made while listing is then pulled again next time
        // (harmlessly) rather than missed.
        let start = self.changes(None).await?.next;
        let rest = &self.client.shared.rest;
        let mut out = BTreeMap::new();
        let mut url = Some(rest.url(&format!("/maps/{}/items?page_size=1000", self.sid)));
        while let Some(u) = url.take() {
            let page: PageView<ItemView> = rest.send_url::<(), _>(Method::GET, &u, None, None).await?;
            for item in page.items {
                if let Some(key) = item.key {
                    out.insert(key, Some((item.data, item.revision)));
                }
            }
            url = page.meta.next_page_url;
        }
        for r in self.records()? {
            if !out.contains_key(&r.key) && (r.sync_count > 0 || !r.modified) {
                out.insert(r.key, None);
            }
        }
        Ok((out, start))
    }

    /// Applies one record's server value, settling a conflict with a local change.
    fn apply(&self, key: &str, remote: Remote, handler: &ConflictHandler, report: &mut SyncReport) -> Result<()> {
        let service = self.service();
        let item_key = ItemKey::Key(key.to_owned());
        let (local, base) = match self.cache.item(service, ObjectKind::Map, &self.sid, &item_key)? {
            Some(CachedItem::Present { item, dirty: true, base }) => (Some(item.data), base),
            Some(CachedItem::Removed { base }) => (None, base),
            Some(CachedItem::Present { item, dirty: false, .. }) => {
                if remote.as_ref().map(|r| r.1) != Some(item.revision)
                    || remote.as_ref().map(|r| &r.0) != Some(&item.data)
                {
                    report.pulled += 1;
                }
                return self.take_remote(&item_key, remote);
            }
            None => {
                if remote.is_some() {
                    report.pulled += 1;
                }
                return self.take_remote(&item_key, remote);
            }
        };
        let remote_revision = remote.as_ref().map(|r| r.1);
        if remote_revision == base {
            // Nothing new there since our change was made: it is not a conflict.
            return Ok(());
        }
        if local.is_none() && remote.is_none() {
            return self.take_remote(&item_key, None);
        }
        report.conflicts += 1;
        let conflict = Conflict {
            object_sid: self.sid.clone(),
            kind: ObjectKind::Map,
            key: Some(item_key.clone()),
            local: local.clone(),
            remote: remote.as_ref().map(|r| r.0.clone()),
            remote_revision,
        };
        let row = DirtyRow {
            sid: self.sid.clone(),
            kind: ObjectKind::Map,
            key: Some(item_key.clone()),
            data: local.clone(),
            base,
        };
        match handler(&conflict) {
            Resolution::KeepLocal => self.cache.rebase(service, &row, local.as_ref(), remote_revision),
            Resolution::Use(v) => self.cache.rebase(service, &row, Some(&v), remote_revision),
            Resolution::Remove => self.cache.rebase(service, &row, None, remote_revision),
            Resolution::KeepRemote => {
                report.pulled += 1;
                self.cache.drop_any(service, &self.sid, &item_key)?;
                self.take_remote(&item_key, remote)
            }
        }
    }

    fn take_remote(&self, key: &ItemKey, remote: Remote) -> Result<()> {
        let service = self.service();
        match remote {
            Some((data, revision)) => {
                let item = crate::events::Item { key: key.clone(), data, revision, date_expires: None };
                self.cache.put_item(service, &self.sid, &item)
            }
            None => self.cache.drop_item(service, &self.sid, key),
        }
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 320 {
        return Err(ClientError::InvalidArgument {
            field: "key",
            message: format!("must be 1 to 320 bytes, got {}", key.len()),
        });
    }
    Ok(())
}
