//! The objects a service holds and the values that describe them.

use crate::sid::{Sid, SidKind, looks_like_sid};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use ferrosync_protocol::kinds::{ObjectKind, OpenMode};

/// A service: the unit of isolation that owns objects and one change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub sid: Sid,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub acl_enabled: bool,
    pub settings: ServiceSettings,
    pub revision: u64,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// Sequence number of the newest event in this service's change log.
    #[serde(skip)]
    pub head_seq: u64,
    /// Events up to and including this sequence number have been pruned by retention.
    #[serde(skip)]
    pub pruned_seq: u64,
}

/// A service's webhook and reachability settings (Twilio Sync's service fields), kept as one
/// JSON value so new settings need no schema change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceSettings {
    pub webhook_url: Option<String>,
    pub webhooks_from_rest_enabled: bool,
    pub reachability_webhooks_enabled: bool,
    pub reachability_debouncing_enabled: bool,
    /// Milliseconds, 1,000–30,000.
    pub reachability_debouncing_window: u32,
    /// Named indexes over the service's Maps, for queries.
    pub indexes: Vec<crate::index::IndexDef>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            webhook_url: None,
            webhooks_from_rest_enabled: false,
            reachability_webhooks_enabled: false,
            reachability_debouncing_enabled: false,
            reachability_debouncing_window: 5000,
            indexes: Vec::new(),
        }
    }
}

/// A change to some of a service's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSettingsPatch {
    /// `Some(None)` clears the URL.
    pub webhook_url: Option<Option<String>>,
    pub webhooks_from_rest_enabled: Option<bool>,
    pub reachability_webhooks_enabled: Option<bool>,
    pub reachability_debouncing_enabled: Option<bool>,
    pub reachability_debouncing_window: Option<u32>,
    pub index: Option<IndexChange>,
}

/// Declares (or redeclares) one index, or removes one, leaving the others as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    Put(crate::index::IndexDef),
    Remove(String),
}

impl ServiceSettingsPatch {
    pub fn apply(self, s: &mut ServiceSettings) {
        if let Some(v) = self.webhook_url {
            s.webhook_url = v;
        }
        if let Some(v) = self.webhooks_from_rest_enabled {
            s.webhooks_from_rest_enabled = v;
        }
        if let Some(v) = self.reachability_webhooks_enabled {
            s.reachability_webhooks_enabled = v;
        }
        if let Some(v) = self.reachability_debouncing_enabled {
            s.reachability_debouncing_enabled = v;
        }
        if let Some(v) = self.reachability_debouncing_window {
            s.reachability_debouncing_window = v;
        }
        match self.index {
            Some(IndexChange::Put(def)) => match s.indexes.iter_mut().find(|d| d.name == def.name) {
                Some(slot) => *slot = def,
                None => s.indexes.push(def),
            },
            Some(IndexChange::Remove(name)) => s.indexes.retain(|d| d.name != name),
            None => {}
        }
    }
}

/// A document, list, map or stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncObject {
    pub sid: Sid,
    pub service_sid: Sid,
    pub kind: ObjectKind,
    pub unique_name: Option<String>,
    /// The document's JSON object; `None` for lists, maps and streams.
    pub data: Option<std::sync::Arc<Value>>,
    pub revision: u64,
    /// The index the next appended list item receives; list indexes are never reused.
    #[serde(skip)]
    pub next_index: u64,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub date_expires: Option<Timestamp>,
    pub created_by: String,
}

/// Where an item sits in its list or map.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemKey {
    Index(u64),
    Key(String),
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemKey::Index(i) => write!(f, "{i}"),
            ItemKey::Key(k) => f.write_str(k),
        }
    }
}

/// An item of a list or a map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub object_sid: Sid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub data: std::sync::Arc<Value>,
    pub revision: u64,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub date_expires: Option<Timestamp>,
    pub created_by: String,
}

impl Item {
    pub fn item_key(&self) -> ItemKey {
        match (&self.index, &self.key) {
            (Some(i), _) => ItemKey::Index(*i),
            (None, Some(k)) => ItemKey::Key(k.clone()),
            (None, None) => ItemKey::Index(0),
        }
    }
}

/// An identity's rights on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub object_sid: Sid,
    pub identity: String,
    pub read: bool,
    pub write: bool,
    pub manage: bool,
}

/// A reference to a service or object by SID or unique name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectRef {
    Sid(Sid),
    UniqueName(String),
}

impl ObjectRef {
    /// Reads a path segment: SID-shaped strings are SIDs (and must have the kind's prefix),
    /// anything else is a unique name.
    pub fn parse(s: &str, kind: SidKind) -> Result<Self, crate::sid::InvalidSid> {
        if looks_like_sid(s) {
            Sid::parse_kind(s, kind).map(ObjectRef::Sid)
        } else {
            Ok(ObjectRef::UniqueName(s.to_owned()))
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectRef::Sid(s) => write!(f, "{s}"),
            ObjectRef::UniqueName(n) => f.write_str(n),
        }
    }
}

/// A stored API key; the secret is kept encrypted at rest (see [`crate::auth::SecretBox`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub sid: Sid,
    pub friendly_name: Option<String>,
    #[serde(skip)]
    pub secret: String,
    pub date_created: Timestamp,
}

/// A message published to a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMessage {
    pub sid: Sid,
    pub stream_sid: Sid,
    pub data: Value,
}
