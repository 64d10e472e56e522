//! Lists, maps and streams.

use super::*;

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
    pub(super) h: Arc<Handle>,
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
    pub(super) h: Arc<Handle>,
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
    pub(super) h: Arc<Handle>,
}

impl SyncStream {
    common_handle_methods!();

    /// Publishes a message (a JSON object of at most 4 KiB); returns its SID.
    pub async fn publish(&self, data: Value) -> Result<String> {
        let guard = self.h.client.shared.begin_write(&self.h.sid);
        let path = format!("{}/messages", self.h.path());
        let body = ferrosync_protocol::rest::PublishMessage { data };
        let published: Published = self.h.client.shared.rest.create_minimal(&path, &body).await?;
        guard.finish(published.sid.clone(), None);
        Ok(published.sid)
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
