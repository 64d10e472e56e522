//! The storage boundary. A store persists services, objects, items, permissions, API keys and
//! the change log; the rules of every mutation live in [`crate::rules`] and run inside the
//! store's transaction through [`TxState`], so each backend only supplies rows.

use crate::error::CoreError;
use crate::log::Event;
use crate::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use crate::page::PageRequest;
use crate::sid::Sid;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store backend error: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Who asks for a mutation: an identity from an access token, or the system / an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub identity: Option<String>,
}

impl Actor {
    pub const SYSTEM: Actor = Actor { identity: None };

    pub fn identity(identity: impl Into<String>) -> Self {
        Actor { identity: Some(identity.into()) }
    }

    /// The name recorded as `created_by` and in events.
    pub fn name(&self) -> &str {
        self.identity.as_deref().unwrap_or("system")
    }
}

/// How an item write treats an existing or missing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemWriteMode {
    /// Fails with 409 when the item exists.
    Create,
    /// Fails with 404 when the item is missing.
    Update,
    /// Creates or replaces.
    Upsert,
}

/// A change to apply atomically: precondition checks, new state and one event per change.
#[derive(Debug, Clone)]
pub enum Mutation {
    CreateService {
        sid: Sid,
        unique_name: Option<String>,
        friendly_name: Option<String>,
        acl_enabled: bool,
        settings: crate::model::ServiceSettings,
    },
    UpdateService {
        service: Sid,
        unique_name: Option<Option<String>>,
        friendly_name: Option<Option<String>>,
        acl_enabled: Option<bool>,
        settings: crate::model::ServiceSettingsPatch,
    },
    RemoveService {
        service: Sid,
    },
    OpenObject {
        service: Sid,
        kind: ObjectKind,
        target: Option<ObjectRef>,
        mode: crate::model::OpenMode,
        ttl: Option<u64>,
        data: Option<Value>,
    },
    UpdateObject {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        data: Option<Value>,
        ttl: Option<u64>,
        if_match: Option<u64>,
    },
    RemoveObject {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        if_match: Option<u64>,
    },
    AddListItem {
        service: Sid,
        target: ObjectRef,
        data: Value,
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
    },
    WriteItem {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        key: ItemKey,
        data: Option<Value>,
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
        if_match: Option<u64>,
        mode: ItemWriteMode,
    },
    RemoveItem {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        key: ItemKey,
        if_match: Option<u64>,
    },
    Publish {
        service: Sid,
        target: ObjectRef,
        message_sid: Sid,
        data: Value,
    },
    SetPermission {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        identity: String,
        read: bool,
        write: bool,
        manage: bool,
    },
    RemovePermission {
        service: Sid,
        kind: ObjectKind,
        target: ObjectRef,
        identity: String,
    },
    /// Removes objects and items whose `date_expires` has passed, emitting their removed events.
    Expire {
        now: Timestamp,
        limit: u32,
    },
    /// Drops change-log events older than `before` (retention).
    Prune {
        before: Timestamp,
    },
    PutApiKey(ApiKeyRecord),
    RenameApiKey {
        sid: Sid,
        friendly_name: Option<String>,
    },
    RemoveApiKey {
        sid: Sid,
    },
}

/// An API key as stored: the secret sealed by [`crate::auth::SecretBox`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub sid: Sid,
    pub friendly_name: Option<String>,
    pub sealed_secret: String,
    pub date_created: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Service(Service),
    Object { object: SyncObject, created: bool },
    Item { item: Item, created: bool },
    Message(crate::model::StreamMessage),
    Permission(Permission),
    Removed,
    Expired { removed: u64 },
    Pruned { events: u64 },
    ApiKey,
}

/// The result of a committed mutation: what it produced and the events it appended.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub events: Vec<Event>,
    /// The same events as stored: serialised once, shared by every reader.
    pub stored: Vec<StoredEvent>,
}

/// A change-log entry as stored: its JSON is kept verbatim so fan-out never re-serialises it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub object_sid: Sid,
    pub json: Box<RawValue>,
}

/// "Service S reached sequence number N": a wake-up from another node. Only a hint: readers
/// re-read the log from their cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeHint {
    pub service: Sid,
    pub seq: u64,
}

/// Row access inside one write transaction. Implemented by each store; driven by
/// [`crate::rules::apply`].
pub trait TxState {
    fn epoch(&self) -> &str;
    fn service(&mut self, r: &ObjectRef) -> Result<Option<Service>, StoreError>;
    fn put_service(&mut self, service: &Service) -> Result<(), StoreError>;
    fn delete_service(&mut self, sid: &Sid) -> Result<(), StoreError>;
    fn object(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError>;
    fn object_by_sid(&mut self, sid: &Sid) -> Result<Option<SyncObject>, StoreError>;
    fn put_object(&mut self, object: &SyncObject) -> Result<(), StoreError>;
    fn delete_object(&mut self, sid: &Sid) -> Result<(), StoreError>;
    fn item(&mut self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError>;
    fn put_item(&mut self, item: &Item) -> Result<(), StoreError>;
    fn delete_item(&mut self, object: &Sid, key: &ItemKey) -> Result<(), StoreError>;
    fn permission(&mut self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError>;
    fn put_permission(&mut self, permission: &Permission) -> Result<(), StoreError>;
    fn delete_permission(&mut self, object: &Sid, identity: &str) -> Result<bool, StoreError>;
    /// Allocates the service's next sequence number inside the transaction, so commit order
    /// is sequence order.
    fn next_seq(&mut self, service: &Sid) -> Result<u64, StoreError>;
    /// Stores an event under the sequence number `next_seq` gave; `json` is its one
    /// serialisation, shared with every reader.
    fn insert_event(
        &mut self,
        service: &Sid,
        seq: u64,
        object: &Sid,
        date: Timestamp,
        json: &str,
    ) -> Result<(), StoreError>;
    fn expired_objects(&mut self, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError>;
    fn expired_items(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError>;
    /// Deletes events dated before `before`, recording per service the highest pruned seq.
    fn prune_events(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    fn api_key(&mut self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError>;
    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    fn delete_api_key(&mut self, sid: &Sid) -> Result<bool, StoreError>;
}

/// A durable home for everything. `execute` returns only once the change is durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Identifies this store's data; since-tokens carry it.
    fn epoch(&self) -> &str;

    async fn execute(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError>;

    async fn service(&self, r: &ObjectRef) -> Result<Option<Service>, StoreError>;
    /// Up to `page.limit + 1` services, ordered by SID.
    async fn services(&self, page: &PageRequest) -> Result<Vec<Service>, StoreError>;
    async fn object(&self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError>;
    /// Up to `page.limit + 1` objects of a kind, ordered by SID.
    async fn objects(&self, service: &Sid, kind: ObjectKind, page: &PageRequest)
    -> Result<Vec<SyncObject>, StoreError>;
    async fn item(&self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError>;
    /// Up to `page.limit + 1` items, ordered by index (lists) or key (maps).
    async fn items(&self, object: &Sid, kind: ObjectKind, page: &PageRequest) -> Result<Vec<Item>, StoreError>;
    async fn permission(&self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError>;
    async fn permissions(&self, object: &Sid) -> Result<Vec<Permission>, StoreError>;
    /// Events with `seq > after`, oldest first, optionally of one object.
    async fn events(
        &self,
        service: &Sid,
        after: u64,
        object: Option<&Sid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn api_key(&self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Cheap liveness check of the backend, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores `proposed` under `key` unless a value is there already (settings every node of a
    /// cluster must share); returns the stored value and whether this call stored it.
    async fn claim_meta(&self, key: &str, proposed: &str) -> Result<(String, bool), StoreError>;
    /// Commits made by other nodes sharing this store, for stores that can have several;
    /// `None` when this node is the only writer.
    fn change_hints(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeHint>> {
        None
    }
}
