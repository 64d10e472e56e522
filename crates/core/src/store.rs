//! The storage boundary. A store persists services, objects, items, permissions, API keys and
//! the change log; the rules of every mutation live in [`crate::rules`] and run inside the
//! store's transaction through [`TxState`], so each backend only supplies rows.

use crate::cognito::{
    CognitoIdentity, Dataset, DatasetLimits, Device, IdentityPool, IdentityPoolSpec, IdentityPoolUsage, Login,
    Platform, PoolSyncConfigChange, Record, RecordPatch,
};
use crate::error::CoreError;
use crate::log::Event;
use crate::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use crate::page::PageRequest;
use crate::sid::Sid;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use serde_json::Value;

mod tx;
pub use tx::TxState;

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

/// One write of a [`Mutation::Batch`], to a Map or List of the service by unique name (made
/// when missing).
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectWrite {
    /// Creates or replaces an entry.
    Put { map: String, key: String, data: Value },
    /// Creates an entry; AlreadyExists when the key is taken (unique names, claims).
    Create { map: String, key: String, data: Value },
    /// Replaces an entry read at `revision`; RevisionMismatch when it changed since, NotFound
    /// when it is gone.
    Replace { map: String, key: String, data: Value, revision: u64 },
    /// Removes an entry; NotFound when it is gone.
    Remove { map: String, key: String },
    Append {
        list: String,
        data: Value,
        /// Seconds until the item expires (records kept for a while, such as queued work).
        ttl: Option<u64>,
    },
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
    /// An exported object put back as it was (SID, revision, dates, a list's next index).
    /// Already there at that revision: nothing changes (an import may be run again).
    RestoreObject {
        object: SyncObject,
    },
    /// Exported items of an object put back at their revisions; those already there at that
    /// revision are left alone.
    RestoreItems {
        service: Sid,
        object: Sid,
        items: Vec<Item>,
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
    /// Registers a Matrix user with its first device (AlreadyExists when the id is taken).
    CreateMatrixUser {
        user: crate::matrix::MatrixUser,
        device: crate::matrix::MatrixDevice,
    },
    /// Logs a Matrix user's device in: created, or given a new token (the old one stops
    /// working). NotFound when the user does not exist or was deactivated.
    PutMatrixDevice(crate::matrix::MatrixDevice),
    /// Stores a filter a user uploaded (already validated).
    PutMatrixFilter {
        user_id: String,
        filter_id: String,
        filter: String,
    },
    /// Changes a user's profile: `Some(v)` sets a field to `v` (`None` inside clears it).
    SetMatrixProfile {
        user_id: String,
        display_name: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    },
    /// Renames a device; NotFound when the user has no such device.
    RenameMatrixDevice {
        user_id: String,
        device_id: String,
        display_name: String,
    },
    /// Events entering a Matrix room (created with the first of them when `create`), each
    /// checked against the room's state as it stands; with `txn`, a replay of the same
    /// transaction id answers the event it made the first time and writes nothing.
    MatrixRoomEvents {
        service: Sid,
        room_id: String,
        create: bool,
        events: Vec<crate::matrix::room::RoomEventDraft>,
        txn: Option<crate::matrix::room::Txn>,
        /// An alias claimed for the room in the same transaction (createRoom's
        /// `room_alias_name`): AlreadyExists when taken.
        alias: Option<String>,
    },
    /// Points an alias at a room (`Some`), or removes it; only its creator or a member who may
    /// set the room's canonical alias removes one.
    MatrixAlias {
        service: Sid,
        alias: String,
        room_id: Option<String>,
        user_id: String,
    },
    /// Several writes to a service's Maps and Lists in one transaction, all or none: the faces
    /// that keep their records as objects (Matrix keys and to-device messages, Proxy) use it.
    /// A failed condition (a taken key, a changed revision, a missing entry) fails the whole
    /// batch, so two claims cannot take the same one-time key. With `txn` (a Map and key), a
    /// batch whose transaction is recorded already writes nothing.
    Batch {
        service: Sid,
        writes: Vec<ObjectWrite>,
        txn: Option<(String, String)>,
    },
    /// Stores an uploaded file.
    PutMatrixMedia(Box<crate::matrix::MatrixMedia>),
    /// Exported Matrix accounts put back with their devices and filters; what is already there
    /// as exported is left alone.
    RestoreMatrixAccounts {
        accounts: Vec<crate::matrix::MatrixAccountDump>,
    },
    /// An exported upload put back under its id (already there: left alone).
    RestoreMatrixMedia(Box<crate::matrix::MatrixMedia>),
    /// Logs out one device of a user (`Some`) or all of them.
    RemoveMatrixDevices {
        user_id: String,
        device_id: Option<String>,
    },
    /// Creates a pool and the service that holds its datasets (`pool.service_sid`, unique
    /// name = the pool id).
    CreateIdentityPool {
        pool: Box<IdentityPool>,
    },
    /// Replaces a pool's Cognito Identity settings; the developer provider name, once set,
    /// cannot change.
    UpdateIdentityPool {
        service: Sid,
        pool_id: String,
        spec: IdentityPoolSpec,
    },
    ChangePoolSyncConfig {
        service: Sid,
        pool_id: String,
        change: PoolSyncConfigChange,
    },
    /// Moves the pool's bulk publish to IN_PROGRESS, unless one is running or one succeeded
    /// less than `min_interval_secs` ago, or streams are not enabled.
    StartBulkPublish {
        service: Sid,
        pool_id: String,
        min_interval_secs: u64,
    },
    /// Ends the running bulk publish: SUCCEEDED, or FAILED with `failure`.
    FinishBulkPublish {
        service: Sid,
        pool_id: String,
        failure: Option<String>,
    },
    /// An exported pool put back into its service (already restored, unique name = the pool
    /// id). Already there for that service: nothing changes.
    RestoreIdentityPool {
        service: Sid,
        pool: Box<IdentityPool>,
    },
    /// Exported identities of a pool put back with their logins, dataset rows (sync counts,
    /// deletion points) and push devices; what is already there as exported is left alone.
    RestoreCognitoIdentities {
        service: Sid,
        pool_id: String,
        identities: Vec<crate::cognito::IdentityDump>,
    },
    /// Removes a pool with its service, identities, datasets and devices.
    RemoveIdentityPool {
        service: Sid,
        pool_id: String,
    },
    ResolveIdentity(ResolveIdentity),
    /// Merges the identity of `source_user` into the identity of `destination_user` (both
    /// developer user identifiers of `provider`).
    MergeDeveloperIdentities {
        service: Sid,
        pool_id: String,
        provider: String,
        source_user: String,
        destination_user: String,
        max_logins: usize,
    },
    UnlinkDeveloperIdentity {
        service: Sid,
        pool_id: String,
        identity_id: String,
        provider: String,
        user: String,
    },
    /// Removes an identity, its logins, devices and datasets (their Maps, with events).
    RemoveCognitoIdentity {
        service: Sid,
        pool_id: String,
        identity_id: String,
    },
    UpdateRecords(UpdateRecords),
    RemoveDataset {
        service: Sid,
        pool_id: String,
        identity_id: String,
        dataset: String,
    },
    /// Registers a push device, or finds the one this identity registered with the same
    /// platform and token.
    RegisterDevice {
        service: Sid,
        pool_id: String,
        identity_id: String,
        device_id: String,
        platform: Platform,
        token: String,
    },
    SetDatasetSubscription {
        service: Sid,
        pool_id: String,
        identity_id: String,
        dataset: String,
        device_id: String,
        subscribed: bool,
    },
}

impl Mutation {
    /// The service whose row the mutation locks first, when it works inside an existing one.
    pub fn service(&self) -> Option<&Sid> {
        match self {
            Mutation::UpdateService { service, .. }
            | Mutation::RemoveService { service }
            | Mutation::OpenObject { service, .. }
            | Mutation::UpdateObject { service, .. }
            | Mutation::RemoveObject { service, .. }
            | Mutation::AddListItem { service, .. }
            | Mutation::WriteItem { service, .. }
            | Mutation::RemoveItem { service, .. }
            | Mutation::Publish { service, .. }
            | Mutation::SetPermission { service, .. }
            | Mutation::RemovePermission { service, .. }
            | Mutation::UpdateIdentityPool { service, .. }
            | Mutation::ChangePoolSyncConfig { service, .. }
            | Mutation::StartBulkPublish { service, .. }
            | Mutation::FinishBulkPublish { service, .. }
            | Mutation::RemoveIdentityPool { service, .. }
            | Mutation::RestoreIdentityPool { service, .. }
            | Mutation::RestoreCognitoIdentities { service, .. }
            | Mutation::MergeDeveloperIdentities { service, .. }
            | Mutation::UnlinkDeveloperIdentity { service, .. }
            | Mutation::RemoveCognitoIdentity { service, .. }
            | Mutation::RemoveDataset { service, .. }
            | Mutation::RegisterDevice { service, .. }
            | Mutation::SetDatasetSubscription { service, .. }
            | Mutation::MatrixRoomEvents { service, .. }
            | Mutation::MatrixAlias { service, .. }
            | Mutation::RestoreItems { service, .. }
            | Mutation::Batch { service, .. } => Some(service),
            Mutation::RestoreObject { object } => Some(&object.service_sid),
            Mutation::ResolveIdentity(r) => Some(&r.service),
            Mutation::UpdateRecords(u) => Some(&u.service),
            Mutation::CreateService { .. }
            | Mutation::Expire { .. }
            | Mutation::Prune { .. }
            | Mutation::PutApiKey(_)
            | Mutation::RenameApiKey { .. }
            | Mutation::RemoveApiKey { .. }
            | Mutation::CreateIdentityPool { .. }
            | Mutation::CreateMatrixUser { .. }
            | Mutation::PutMatrixDevice(_)
            | Mutation::PutMatrixFilter { .. }
            | Mutation::PutMatrixMedia(_)
            | Mutation::SetMatrixProfile { .. }
            | Mutation::RenameMatrixDevice { .. }
            | Mutation::RemoveMatrixDevices { .. }
            | Mutation::RestoreMatrixAccounts { .. }
            | Mutation::RestoreMatrixMedia(_) => None,
        }
    }
}

/// Finds (or creates) the identity that a set of logins and an optional identity id name,
/// linking the logins to it and merging the identities they belonged to (GetId, GetOpenIdToken,
/// GetCredentialsForIdentity, GetOpenIdTokenForDeveloperIdentity).
#[derive(Debug, Clone)]
pub struct ResolveIdentity {
    pub service: Sid,
    pub pool_id: String,
    /// The identity the caller names.
    pub identity_id: Option<String>,
    /// Provider → the user's identifier at it.
    pub logins: std::collections::BTreeMap<String, String>,
    /// The id a new identity gets when one is needed; `None` when none may be created.
    pub new_identity_id: Option<String>,
    /// The caller has shown it holds `identity_id` (developer credentials, or a Cognito OpenID
    /// token for it): the identity's own logins need not be presented again.
    pub proven: bool,
    /// Developer credentials are calling: a developer user identifier that belongs to another
    /// identity is refused (DeveloperUserAlreadyRegistered) rather than merged.
    pub developer: bool,
    /// Most logins one identity may hold.
    pub max_logins: usize,
}

/// Applies record patches to a dataset, all or nothing (Cognito Sync's UpdateRecords).
#[derive(Debug, Clone)]
pub struct UpdateRecords {
    pub service: Sid,
    pub pool_id: String,
    pub identity_id: String,
    pub dataset: String,
    pub patches: Vec<RecordPatch>,
    /// Recorded as the records' and the dataset's LastModifiedBy.
    pub modified_by: String,
    pub limits: DatasetLimits,
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
    Object {
        object: SyncObject,
        created: bool,
    },
    Item {
        item: Item,
        created: bool,
    },
    Message(crate::model::StreamMessage),
    Permission(Permission),
    Removed,
    Expired {
        removed: u64,
    },
    Pruned {
        events: u64,
    },
    ApiKey,
    MatrixDevice(crate::matrix::MatrixDevice),
    MatrixUser(crate::matrix::MatrixUser),
    /// The ids of the events a room write made (or, replayed, had made).
    MatrixEvents(Vec<String>),
    /// Written, with nothing to hand back.
    Stored,
    /// How many restored rows were new.
    Restored {
        written: u64,
    },
    /// How many devices were logged out.
    MatrixDevicesRemoved(u64),
    IdentityPool(Box<IdentityPool>),
    CognitoIdentity {
        identity: CognitoIdentity,
        created: bool,
        merged: Vec<String>,
    },
    /// The records an UpdateRecords wrote, as stored, and the dataset after it.
    Records {
        dataset: Dataset,
        records: Vec<Record>,
    },
    Dataset(Dataset),
    Device(Device),
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
    pub json: EventJson,
}

/// An event's JSON text, written once and then sent as it is by every reader. It is never
/// parsed again to be checked: it is either [`Event::to_json`]'s output or a `serde_json`
/// serialisation, or read back from the log, where only those are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJson(Box<str>);

impl EventJson {
    pub fn of(event: &Event) -> Self {
        EventJson(event.to_json().into_boxed_str())
    }

    /// [`EventJson::of`], and where in the text the event's `data` is, when it has data.
    pub fn of_marking_data(event: &Event) -> (Self, Option<std::ops::Range<usize>>) {
        let (text, data) = event.to_json_marking_data();
        (EventJson(text.into_boxed_str()), data)
    }

    /// Another event-shaped value (a live query's event), serialised by `serde_json`.
    pub fn serialized<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|s| EventJson(s.into_boxed_str()))
    }

    /// An event's text as the log stored it.
    pub fn stored(text: String) -> Self {
        EventJson(text.into_boxed_str())
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

/// "Service S reached sequence number N": a wake-up from another node. Only a hint: readers
/// re-read the log from their cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeHint {
    pub service: Sid,
    pub seq: u64,
}

/// The names of the change log's background consumers, as their cursors are stored.
pub mod consumers {
    /// Twilio Sync service webhooks.
    pub const WEBHOOKS: &str = "webhooks";
    /// Cognito Streams: one record per dataset synchronization.
    pub const COGNITO_STREAMS: &str = "cognito-streams";
    /// Cognito push sync: silent pushes to an identity's other devices.
    pub const COGNITO_PUSH: &str = "cognito-push";
    /// A running Cognito bulk publish (a lease only; it reads datasets, not the log).
    pub const COGNITO_BULK_PUBLISH: &str = "cognito-bulk-publish";
    /// Twilio Proxy: relaying messages, interaction status and alert callbacks.
    pub const PROXY_RELAY: &str = "proxy-relay";
}

/// Where one background consumer of a service's change log stands (webhooks, Cognito streams
/// or push), and which node reads it. Created when the consumer is turned on for the service,
/// usually at the log's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    pub service: Sid,
    /// Every event up to and including this sequence number was delivered (or given up on).
    pub delivered_seq: u64,
    /// The node reading this service's log for the consumer while its lease runs.
    pub lease_owner: Option<String>,
    pub lease_expires: Timestamp,
}

/// Told of every mutation this node commits, on the store's writer, as soon as its commit is
/// durable and before its caller hears back: readers learn of commits in commit order, without
/// waiting for the committing task to be scheduled again. It runs on the one thread every write
/// goes through, so it must be quick and must not block.
pub trait CommitObserver: Send + Sync {
    fn committed(&self, applied: &Applied);
}

/// A durable home for everything. `execute` returns only once the change is durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Identifies this store's data; since-tokens carry it.
    fn epoch(&self) -> &str;

    async fn execute(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError>;

    /// Adds an observer of this node's commits. It is held weakly: once its owner drops it, the
    /// store forgets it.
    fn observe_commits(&self, observer: std::sync::Weak<dyn CommitObserver>);

    async fn service(&self, r: &ObjectRef) -> Result<Option<Service>, StoreError>;
    /// Up to `page.limit + 1` services, ordered by SID.
    async fn services(&self, page: &PageRequest) -> Result<Vec<Service>, StoreError>;
    async fn object(&self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError>;
    /// Up to `page.limit + 1` objects of a kind, ordered by SID.
    async fn objects(&self, service: &Sid, kind: ObjectKind, page: &PageRequest)
    -> Result<Vec<SyncObject>, StoreError>;
    async fn item(&self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError>;
    /// The item `key` of the object `r` names, in one read: for records kept in named Maps,
    /// where the object itself is not wanted.
    async fn named_item(
        &self,
        service: &Sid,
        kind: ObjectKind,
        r: &ObjectRef,
        key: &ItemKey,
    ) -> Result<Option<Item>, StoreError>;
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
    /// Every cursor of one consumer.
    async fn log_cursors(&self, consumer: &str) -> Result<Vec<LogCursor>, StoreError>;
    /// Takes `consumer`'s lease on `service` for `owner` until `until`, when no one holds it,
    /// its holder's lease ran out before `now`, or `owner` holds it already. Returns the cursor
    /// when taken; `None` when another node holds it or there is no cursor.
    async fn take_log_lease(
        &self,
        consumer: &str,
        service: &Sid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
    /// Moves the cursor up to `seq` (never back) and extends the lease to `until`, only while
    /// `owner` holds it: false when the lease was lost (taken over, or the cursor removed).
    async fn advance_log_cursor(
        &self,
        consumer: &str,
        service: &Sid,
        owner: &str,
        seq: u64,
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up, so another node can take over at once.
    async fn release_log_lease(&self, consumer: &str, service: &Sid, owner: &str) -> Result<(), StoreError>;
    /// When the next object or item expires, so a sweep with nothing due needs no write.
    async fn next_expiry(&self) -> Result<Option<Timestamp>, StoreError>;
    /// A value stored by [`Store::claim_meta`].
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    // Matrix reads.
    async fn matrix_user(&self, user_id: &str) -> Result<Option<crate::matrix::MatrixUser>, StoreError>;
    /// Up to `page.limit + 1` users, ordered by user id.
    async fn matrix_users(&self, page: &PageRequest) -> Result<Vec<crate::matrix::MatrixUser>, StoreError>;
    async fn matrix_device(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<crate::matrix::MatrixDevice>, StoreError>;
    /// A user's devices, by device id.
    async fn matrix_devices(&self, user_id: &str) -> Result<Vec<crate::matrix::MatrixDevice>, StoreError>;
    async fn matrix_media(&self, media_id: &str) -> Result<Option<crate::matrix::MatrixMedia>, StoreError>;
    /// A filter as uploaded (JSON).
    async fn matrix_filter(&self, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError>;
    /// A user's filters, by id.
    async fn matrix_filters(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Up to `limit` uploads after `after`, by media id.
    async fn matrix_media_after(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::matrix::MatrixMedia>, StoreError>;

    // Cognito reads.
    async fn identity_pool(&self, pool_id: &str) -> Result<Option<IdentityPool>, StoreError>;
    /// Up to `page.limit + 1` pools, ordered by id.
    async fn identity_pools(&self, page: &PageRequest) -> Result<Vec<IdentityPool>, StoreError>;
    async fn cognito_identity(&self, identity_id: &str) -> Result<Option<CognitoIdentity>, StoreError>;
    /// Up to `page.limit + 1` identities of a pool with their logins, ordered by id.
    async fn cognito_identities(
        &self,
        pool_id: &str,
        hide_disabled: bool,
        page: &PageRequest,
    ) -> Result<Vec<CognitoIdentity>, StoreError>;
    async fn login_owner(&self, pool_id: &str, login: &Login) -> Result<Option<String>, StoreError>;
    async fn dataset(&self, identity_id: &str, name: &str) -> Result<Option<Dataset>, StoreError>;
    /// Every dataset row of an identity, deleted ones included, by name.
    async fn datasets(&self, identity_id: &str) -> Result<Vec<Dataset>, StoreError>;
    /// The pool's sync sessions, and the storage and last change of its live datasets.
    async fn identity_pool_usage(&self, pool_id: &str) -> Result<IdentityPoolUsage, StoreError>;
    /// Adds sync sessions (ListRecords calls) to pools' usage; pools that no longer exist are
    /// passed over. Usage bookkeeping beside the change log: it takes no turn of the writer.
    async fn count_sync_sessions(&self, counts: &[(String, u64)]) -> Result<(), StoreError>;
    async fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError>;
    /// The devices subscribed to an identity's dataset.
    async fn dataset_subscribers(&self, identity_id: &str, dataset: &str) -> Result<Vec<Device>, StoreError>;
    /// Up to `limit` identity ids of a pool after `after`, in order: those with an identity,
    /// a dataset row or a device (developer credentials may write under ids never issued).
    async fn cognito_identity_ids(
        &self,
        pool_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// An identity's push devices with the datasets each is subscribed to.
    async fn identity_devices(&self, identity_id: &str) -> Result<Vec<crate::cognito::DeviceDump>, StoreError>;

    /// Commits made by other nodes sharing this store, for stores that can have several;
    /// `None` when this node is the only writer.
    fn change_hints(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeHint>> {
        None
    }
}
