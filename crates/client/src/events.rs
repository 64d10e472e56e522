//! What subscribers receive: typed events made from the server's change-log events.

use ferrosync_protocol::rest::ItemView;
use ferrosync_protocol::{Event, EventKind};
use serde_json::Value;
use std::fmt;

/// Where an item sits: a list index or a map key.
///
/// ```
/// use ferrosync_client::ItemKey;
/// assert_eq!(ItemKey::from(3).to_string(), "3");
/// assert_eq!(ItemKey::from("alice"), ItemKey::Key("alice".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKey {
    Index(u64),
    Key(String),
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKey::Index(i) => write!(f, "{i}"),
            ItemKey::Key(k) => f.write_str(k),
        }
    }
}

impl From<u64> for ItemKey {
    fn from(i: u64) -> Self {
        ItemKey::Index(i)
    }
}

impl From<&str> for ItemKey {
    fn from(k: &str) -> Self {
        ItemKey::Key(k.to_owned())
    }
}

impl From<String> for ItemKey {
    fn from(k: String) -> Self {
        ItemKey::Key(k)
    }
}

/// An item of a list or a map.
///
/// ```
/// # use ferrosync_client::{Item, ItemKey};
/// let item = Item { key: ItemKey::Key("alice".into()), data: serde_json::json!({"online": true}), revision: 3, date_expires: None };
/// assert_eq!(item.key.to_string(), "alice");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: ItemKey,
    pub data: Value,
    pub revision: u64,
    /// RFC 3339, when the item has a TTL.
    pub date_expires: Option<String>,
}

impl From<ItemView> for Item {
    fn from(v: ItemView) -> Self {
        let key = match (v.index, v.key) {
            (Some(i), _) => ItemKey::Index(i),
            (None, Some(k)) => ItemKey::Key(k),
            (None, None) => ItemKey::Index(0),
        };
        Item { key, data: v.data, revision: v.revision, date_expires: v.date_expires }
    }
}

/// A change to a subscribed object.
///
/// ```no_run
/// # async fn demo(map: ferrosync_client::SyncMap) -> ferrosync_client::Result<()> {
/// use futures_util::StreamExt;
/// let mut events = map.subscribe().await?;
/// while let Some(e) = events.next().await {
///     if let ferrosync_client::SyncEventKind::ItemUpdated { item, previous } = &e.kind {
///         println!("{} changed from {previous:?} to {} (mine: {})", item.key, item.data, e.is_local);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SyncEvent {
    pub kind: SyncEventKind,
    /// True when this client made the change.
    pub is_local: bool,
    pub object_sid: String,
    /// The identity that made the change (`system` for expiries).
    pub identity: String,
    /// The change's position in the service's log.
    pub seq: u64,
    /// Resumes right after this change.
    pub token: String,
}

/// What changed.
///
/// ```no_run
/// # async fn demo(list: ferrosync_client::SyncList) -> ferrosync_client::Result<()> {
/// use ferrosync_client::SyncEventKind;
/// use futures_util::StreamExt;
/// let mut events = list.subscribe().await?;
/// while let Some(e) = events.next().await {
///     match e.kind {
///         SyncEventKind::ItemAdded { item } => println!("+ {} {}", item.key, item.data),
///         SyncEventKind::ItemUpdated { item, previous } => println!("~ {} {previous:?} -> {}", item.key, item.data),
///         SyncEventKind::ItemRemoved { key, reason, .. } => println!("- {key} ({reason:?})"),
///         SyncEventKind::Removed { .. } => break,
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEventKind {
    /// A document's data changed.
    Updated {
        data: Value,
        previous: Option<Value>,
        revision: u64,
    },
    ItemAdded {
        item: Item,
    },
    ItemUpdated {
        item: Item,
        previous: Option<Value>,
    },
    /// `reason` is `expired` when a TTL removed it.
    ItemRemoved {
        key: ItemKey,
        previous: Option<Value>,
        reason: Option<String>,
    },
    MessagePublished {
        message_sid: String,
        data: Value,
    },
    /// The object itself was removed; no event follows.
    Removed {
        reason: Option<String>,
    },
}

impl SyncEventKind {
    /// The typed form of a change-log event; `None` for changes subscribers are not told of
    /// (creation, TTL changes of a collection, permissions).
    pub(crate) fn from_event(e: &Event) -> Option<Self> {
        let key = || match (e.item_index, &e.item_key) {
            (Some(i), _) => ItemKey::Index(i),
            (None, Some(k)) => ItemKey::Key(k.clone()),
            (None, None) => ItemKey::Index(0),
        };
        let item = || Item {
            key: key(),
            data: e.data.as_deref().cloned().unwrap_or(Value::Null),
            revision: e.revision,
            date_expires: e.date_expires.map(|t| t.to_rfc3339()),
        };
        Some(match e.kind {
            EventKind::DocumentUpdated => SyncEventKind::Updated {
                data: e.data.as_deref().cloned().unwrap_or(Value::Null),
                previous: e.previous_data.as_deref().cloned(),
                revision: e.revision,
            },
            EventKind::ListItemAdded | EventKind::MapItemAdded => SyncEventKind::ItemAdded { item: item() },
            EventKind::ListItemUpdated | EventKind::MapItemUpdated => {
                SyncEventKind::ItemUpdated { item: item(), previous: e.previous_data.as_deref().cloned() }
            }
            EventKind::ListItemRemoved | EventKind::MapItemRemoved => SyncEventKind::ItemRemoved {
                key: key(),
                previous: e.previous_data.as_deref().cloned(),
                reason: e.reason.clone(),
            },
            EventKind::StreamMessagePublished => SyncEventKind::MessagePublished {
                message_sid: e.message_sid.as_ref().map(ToString::to_string).unwrap_or_default(),
                data: e.data.as_deref().cloned().unwrap_or(Value::Null),
            },
            EventKind::DocumentRemoved | EventKind::ListRemoved | EventKind::MapRemoved | EventKind::StreamRemoved => {
                SyncEventKind::Removed { reason: e.reason.clone() }
            }
            _ => return None,
        })
    }
}

/// Identifies a write of this client, to tell its own changes from others' (`is_local`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LocalMark {
    pub object_sid: String,
    /// `""` for a document, the item's key or index, or a message SID.
    pub slot: String,
    /// The revision written; `None` for a removal.
    pub revision: Option<u64>,
}

impl LocalMark {
    pub fn of_event(e: &Event) -> Self {
        let slot = match (e.item_index, &e.item_key, &e.message_sid) {
            (_, _, Some(m)) => m.to_string(),
            (Some(i), _, _) => i.to_string(),
            (None, Some(k), _) => k.clone(),
            _ => String::new(),
        };
        let removal = matches!(
            e.kind,
            EventKind::ListItemRemoved
                | EventKind::MapItemRemoved
                | EventKind::DocumentRemoved
                | EventKind::ListRemoved
                | EventKind::MapRemoved
                | EventKind::StreamRemoved
        );
        LocalMark {
            object_sid: e.object_sid.to_string(),
            slot,
            revision: (!removal && e.kind != EventKind::StreamMessagePublished).then_some(e.revision),
        }
    }
}
