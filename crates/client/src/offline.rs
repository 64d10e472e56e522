//! Writes made offline, sent when the server is back: each is a conditional write based on the
//! revision it was made against, so a change someone else made meanwhile is a [`Conflict`]
//! for the application's handler to settle instead of being overwritten unseen.

use crate::cache::{Cache, DirtyRow};
use crate::client::{Client, ClientEvent};
use crate::error::{ClientError, Result};
use crate::events::ItemKey;
use crate::http::segment;
use ferrosync_protocol::ObjectKind;
use ferrosync_protocol::rest::{CreateMapItem, ItemView, ObjectView, UpdateObject, WriteItem};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;

/// Rounds of conflict resolution for one change before it is given up.
const ATTEMPTS: usize = 16;

/// A change made here that meets a different change on the server.
///
/// ```
/// use ferrosync_client::{Conflict, Resolution};
/// use serde_json::json;
/// // Keep the larger of two counters.
/// let keep_max = |c: &Conflict| {
///     let local = c.local.as_ref().and_then(|v| v["n"].as_i64()).unwrap_or(0);
///     let remote = c.remote.as_ref().and_then(|v| v["n"].as_i64()).unwrap_or(0);
///     if local >= remote { Resolution::KeepLocal } else { Resolution::KeepRemote }
/// };
/// let c = Conflict {
///     object_sid: "ET00000000000000000000000000000001".into(),
///     kind: ferrosync_client::ObjectKind::Document,
///     key: None,
///     local: Some(json!({"n": 3})),
///     remote: Some(json!({"n": 5})),
///     remote_revision: Some(7),
/// };
/// assert_eq!(keep_max(&c), Resolution::KeepRemote);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub object_sid: String,
    pub kind: ObjectKind,
    /// The item, or `None` for a document.
    pub key: Option<ItemKey>,
    /// What this client wrote; `None` for a removal.
    pub local: Option<Value>,
    /// What the server holds now; `None` when it was removed there.
    pub remote: Option<Value>,
    /// The server's revision of it, when it exists.
    pub remote_revision: Option<u64>,
}

/// How a [`Conflict`] ends.
///
/// ```
/// use ferrosync_client::{Conflict, Resolution};
/// // Merge two JSON objects, the server's fields first.
/// fn merge(c: &Conflict) -> Resolution {
///     match (&c.local, &c.remote) {
///         (Some(serde_json::Value::Object(l)), Some(serde_json::Value::Object(r))) => {
///             let mut m = l.clone();
///             m.extend(r.clone());
///             Resolution::Use(m.into())
///         }
///         _ => Resolution::KeepRemote,
///     }
/// }
/// # let _ = merge;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Write the local change over the server's.
    KeepLocal,
    /// Drop the local change; the server's value stands.
    KeepRemote,
    /// Write this value instead (a merge of both, say).
    Use(Value),
    /// Remove the item (or, for a document, keep the server's value).
    Remove,
}

/// Decides conflicts; the default keeps the local change (the last writer wins).
///
/// ```
/// use ferrosync_client::{ConflictHandler, Resolution};
/// let server_wins: ConflictHandler = std::sync::Arc::new(|_| Resolution::KeepRemote);
/// # let _ = server_wins;
/// ```
pub type ConflictHandler = Arc<dyn Fn(&Conflict) -> Resolution + Send + Sync>;

pub(crate) fn keep_local() -> ConflictHandler {
    Arc::new(|_: &Conflict| Resolution::KeepLocal)
}

/// What one replay did.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// if client.pending_writes()? > 0 {
///     let report = client.flush_offline_writes().await?;
///     println!("{} sent, {} conflicts", report.sent, report.conflicts);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Changes the server accepted.
    pub sent: usize,
    /// Changes that met a conflict (each counted once, however it was resolved).
    pub conflicts: usize,
    /// Changes the server refused outright (a limit, a permission); they are dropped and the
    /// cache follows the server.
    pub rejected: usize,
}

/// The server's current value of what a row changes.
type Remote = Option<(Value, u64)>;

enum Write {
    Done(Remote),
    Conflict,
}

impl Client {
    fn cache_or_err(&self) -> Result<&Arc<Cache>> {
        self.shared
            .cache
            .as_ref()
            .ok_or(ClientError::InvalidArgument { field: "cache", message: "this client has no offline cache".into() })
    }

    /// Sends every change made offline now, settling conflicts with the client's handler.
    /// The client also does this by itself each time its connection comes up.
    pub async fn flush_offline_writes(&self) -> Result<ReplayReport> {
        let cache = self.cache_or_err()?.clone();
        let _one_at_a_time = self.shared.replaying.lock().await;
        let rows = cache.dirty(self.shared.rest.service(), None)?;
        let report = self.replay(&cache, rows, &self.shared.on_conflict).await?;
        if report != ReplayReport::default() {
            self.shared.emit(ClientEvent::OfflineWritesReplayed(report));
        }
        Ok(report)
    }

    /// How many changes made offline wait to be sent.
    pub fn pending_writes(&self) -> Result<usize> {
        self.cache_or_err()?.dirty_count(self.shared.rest.service())
    }

    /// Sends `rows` in order; stops (leaving the rest pending) when the server is out of reach.
    pub(crate) async fn replay(
        &self,
        cache: &Cache,
        rows: Vec<DirtyRow>,
        handler: &ConflictHandler,
    ) -> Result<ReplayReport> {
        let service = self.shared.rest.service().to_owned();
        let mut report = ReplayReport::default();
        for row in rows {
            let (mut data, mut base) = (row.data.clone(), row.base);
            let mut conflicted = false;
            let mut settled = false;
            for _ in 0..ATTEMPTS {
                let guard = self.shared.begin_write(&row.sid);
                let outcome = self.send_row(&row, data.as_ref(), base).await;
                let written = match &outcome {
                    Ok(Write::Done(r)) => r.as_ref().map(|(_, rev)| *rev),
                    _ => None,
                };
                guard.finish(row.key.as_ref().map(ToString::to_string).unwrap_or_default(), written);
                match outcome {
                    Ok(Write::Done(now)) => {
                        // Settled against what was sent, which a resolution may have changed.
                        let sent = DirtyRow { data: data.clone(), ..row.clone() };
                        cache.settle(&service, &sent, now.as_ref().map(|n| &n.0), now.as_ref().map(|n| n.1))?;
                        report.sent += 1;
                        settled = true;
                        break;
                    }
                    Ok(Write::Conflict) => {
                        let remote = self.read_row(&row).await?;
                        conflicted = true;
                        let conflict = Conflict {
                            object_sid: row.sid.clone(),
                            kind: row.kind,
                            key: row.key.clone(),
                            local: data.clone(),
                            remote: remote.as_ref().map(|r| r.0.clone()),
                            remote_revision: remote.as_ref().map(|r| r.1),
                        };
                        let mut resolution = if data.is_none() && remote.is_none() {
                            Resolution::KeepRemote
                        } else {
                            handler(&conflict)
                        };
                        // Only a map item can be created again under its name; a document or
                        // a list item removed on the server stays removed.
                        if remote.is_none() && row.kind != ObjectKind::Map {
                            resolution = Resolution::KeepRemote;
                        }
                        match resolution {
                            Resolution::KeepLocal => {}
                            Resolution::Use(v) => data = Some(v),
                            Resolution::Remove if row.key.is_some() => data = None,
                            Resolution::KeepRemote | Resolution::Remove => {
                                self.settle_remote(cache, &row, remote)?;
                                settled = true;
                                break;
                            }
                        }
                        base = remote.as_ref().map(|r| r.1);
                        cache.rebase(&service, &row, data.as_ref(), base)?;
                    }
                    Err(e) if e.is_transport() => return Err(e),
                    Err(e) => {
                        tracing::warn!(object = %row.sid, key = ?row.key, error = %e, "offline write refused");
                        let remote = self.read_row(&row).await?;
                        self.settle_remote(cache, &row, remote)?;
                        report.rejected += 1;
                        settled = true;
                        break;
                    }
                }
            }
            if conflicted {
                report.conflicts += 1;
            }
            if !settled {
                tracing::warn!(object = %row.sid, key = ?row.key, "offline write still conflicting; kept for later");
            }
        }
        Ok(report)
    }

    /// Makes the cache hold the server's value instead of the local change.
    pub(crate) fn settle_remote(&self, cache: &Cache, row: &DirtyRow, remote: Remote) -> Result<()> {
        let service = self.shared.rest.service();
        let rebased = DirtyRow { data: None, ..row.clone() };
        match (&row.key, remote) {
            (None, None) => cache.forget_object(service, &row.sid),
            (None, Some((v, rev))) => {
                cache.rebase(service, row, Some(&v), Some(rev))?;
                cache.settle(service, &DirtyRow { data: Some(v.clone()), ..row.clone() }, Some(&v), Some(rev))
            }
            (Some(_), None) => {
                cache.rebase(service, row, None, None)?;
                cache.settle(service, &rebased, None, None)
            }
            (Some(_), Some((v, rev))) => {
                cache.rebase(service, row, Some(&v), Some(rev))?;
                cache.settle(service, &DirtyRow { data: Some(v.clone()), ..row.clone() }, Some(&v), Some(rev))
            }
        }
    }

    fn row_path(row: &DirtyRow) -> String {
        let collection = match row.kind {
            ObjectKind::Document => "documents",
            ObjectKind::List => "lists",
            ObjectKind::Map => "maps",
            ObjectKind::Stream => "streams",
        };
        match &row.key {
            None => format!("/{collection}/{}", row.sid),
            Some(k) => format!("/{collection}/{}/items/{}", row.sid, segment(&k.to_string())),
        }
    }

    async fn send_row(&self, row: &DirtyRow, data: Option<&Value>, base: Option<u64>) -> Result<Write> {
        let rest = &self.shared.rest;
        let path = Self::row_path(row);
        let result = match (&row.key, data, base) {
            (None, Some(d), _) => {
                let body = UpdateObject { data: Some(d.clone()), ttl: None };
                rest.send::<_, ObjectView>(Method::PUT, &path, Some(&body), base)
                    .await
                    .map(|v| Some((v.data.unwrap_or(Value::Null), v.revision)))
            }
            (None, None, _) => return Ok(Write::Done(None)),
            (Some(key), Some(d), None) => {
                // Created here: a map item is created only if the key is still free.
                let body = CreateMapItem { key: key.to_string(), data: d.clone(), ttl: None, collection_ttl: None };
                let items = format!("/maps/{}/items", row.sid);
                match rest.send::<_, ItemView>(Method::POST, &items, Some(&body), None).await {
                    Err(e) if e.status() == Some(409) => return Ok(Write::Conflict),
                    other => other.map(|v| Some((v.data, v.revision))),
                }
            }
            (Some(_), Some(d), Some(b)) => {
                let body = WriteItem { data: Some(d.clone()), ttl: None, collection_ttl: None };
                rest.send::<_, ItemView>(Method::PUT, &path, Some(&body), Some(b))
                    .await
                    .map(|v| Some((v.data, v.revision)))
            }
            (Some(_), None, b) => match rest.send_empty(Method::DELETE, &path, b).await {
                Err(e) if e.is_not_found() => Ok(None),
                other => other.map(|()| None),
            },
        };
        match result {
            Ok(now) => Ok(Write::Done(now)),
            Err(e) if e.is_conflict() || e.is_not_found() => Ok(Write::Conflict),
            Err(e) => Err(e),
        }
    }

    async fn read_row(&self, row: &DirtyRow) -> Result<Remote> {
        let rest = &self.shared.rest;
        let path = Self::row_path(row);
        let read = match row.key {
            None => rest
                .send::<(), ObjectView>(Method::GET, &path, None, None)
                .await
                .map(|v| (v.data.unwrap_or(Value::Null), v.revision)),
            Some(_) => rest.send::<(), ItemView>(Method::GET, &path, None, None).await.map(|v| (v.data, v.revision)),
        };
        match read {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
