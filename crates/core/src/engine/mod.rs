//! The engine: the one core every facade calls. It authenticates, checks input against the
//! limits and the principal's reach, runs mutations through the store, and wakes readers.

use crate::auth::{self, Principal, RootCredentials, SecretBox};
use crate::error::{CoreError, NotFoundKind};
use crate::limits::Limits;
use crate::log::SinceToken;
use crate::model::{
    ApiKey, Item, ItemKey, ObjectKind, ObjectRef, OpenMode, Permission, Service, ServiceSettings, ServiceSettingsPatch,
    StreamMessage, SyncObject,
};
use crate::notify::ChangeNotifier;
use crate::page::{Cursor, Page, PageRequest};
use crate::recent::RecentLog;
use crate::rules::{self, Right};
use crate::sid::{Sid, SidKind, looks_like_sid};
use crate::store::{Actor, ApiKeyRecord, ItemWriteMode, Mutation, Outcome, Store, StoredEvent};
use crate::timestamp::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct Engine {
    store: Arc<dyn Store>,
    limits: Limits,
    root: RootCredentials,
    secrets: SecretBox,
    /// Filled by the store's writer as each commit lands (see [`Published`]).
    published: Arc<Published>,
    service_cache: ServiceCache,
    /// The OpenID signing key, loaded (or created) on first use.
    openid: tokio::sync::OnceCell<Arc<crate::cognito::OpenIdSigner>>,
    /// Cognito sync sessions counted since the last [`Engine::flush_usage`], per pool.
    sync_sessions: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// When each Matrix device was last noted as seen (`user \t device` → ms), to write it at
    /// most once a minute.
    matrix_seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    lazy_members: matrix::LazyMembers,
    indexes: indexes::IndexCache,
}

/// What readers learn this node's commits from: the run of recent events and the wake-up
/// hints. The store's writer fills both as each commit lands, before the committing caller
/// resumes, so every write path publishes without having to remember to.
struct Published {
    notifier: ChangeNotifier,
    recent: RecentLog,
}

impl crate::store::CommitObserver for Published {
    /// Into the recent-event run first, then a hint to waiters, so a woken reader finds it.
    fn committed(&self, applied: &crate::store::Applied) {
        let Some(first) = applied.events.first() else { return };
        if applied.events.iter().all(|e| e.service_sid == first.service_sid) {
            self.recent.insert(&first.service_sid, &applied.stored);
        } else {
            for (e, stored) in applied.events.iter().zip(&applied.stored) {
                self.recent.insert(&e.service_sid, std::slice::from_ref(stored));
            }
        }
        for e in &applied.events {
            self.notifier.notify(&e.service_sid, e.seq);
        }
    }
}

/// What an open/create asks for (the Sync client's `OpenOptions`).
#[derive(Debug, Clone, Default)]
pub struct OpenRequest {
    /// Open (or create with) this SID.
    pub sid: Option<String>,
    /// Open (or create with) this unique name.
    pub unique_name: Option<String>,
    pub mode: OpenMode,
    pub ttl: Option<u64>,
    pub data: Option<Value>,
}

/// A change to an object's own fields.
#[derive(Debug, Clone, Default)]
pub struct ObjectPatch {
    pub data: Option<Value>,
    pub ttl: Option<u64>,
    pub if_match: Option<u64>,
}

/// A change to an item.
#[derive(Debug, Clone, Default)]
pub struct ItemPatch {
    pub data: Option<Value>,
    pub ttl: Option<u64>,
    pub collection_ttl: Option<u64>,
    pub if_match: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub acl_enabled: bool,
    pub settings: ServiceSettings,
}

#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub unique_name: Option<Option<String>>,
    pub friendly_name: Option<Option<String>>,
    pub acl_enabled: Option<bool>,
    pub settings: ServiceSettingsPatch,
}

/// A write's result and where its event sits in the change log, for clients that track
/// change-log positions per object (the twilsock face's event ids).
#[derive(Debug, Clone)]
pub struct Logged<T> {
    pub value: T,
    /// The sequence number of the last event the write appended; `None` when it appended none
    /// (opening an object that already exists).
    pub seq: Option<u64>,
}

impl<T> Logged<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Logged<U> {
        Logged { value: f(self.value), seq: self.seq }
    }
}

/// Where a change-log reader starts.
#[derive(Debug, Clone, Copy)]
pub enum Since<'a> {
    /// After the newest event: only what happens from now on.
    Now,
    /// From the oldest event still retained.
    Start,
    /// After the event a since-token names.
    Token(&'a str),
}

/// A batch of change-log events and the token to continue from.
#[derive(Debug, Clone)]
pub struct Changes {
    pub events: Vec<StoredEvent>,
    pub next: String,
}

pub struct MintedToken {
    pub token: String,
    pub identity: String,
    pub service_sid: Sid,
    pub expires_at: i64,
}

fn now_secs() -> i64 {
    Timestamp::now().millis() / 1000
}

mod changes;
mod cognito_identities;
mod cognito_pools;
mod cognito_sync;
mod credentials;
mod indexes;
mod matrix;
mod objects;
mod proxy;
mod restore;
mod services;
mod system;

pub use cognito_identities::{
    AwsSecret, DeveloperIdentityLookup, IdentityCredentials, OpenIdToken, UnprocessedIdentity,
};
pub use cognito_sync::{ListRecordsRequest, RecordsPage, UpdateRecordsRequest, UpdatedRecords};
pub use indexes::{QueryItem, QueryResult, parse_query};
pub use matrix::{
    CreateRoom, MatrixCaller, MatrixPresence, MatrixProfile, MatrixRegistration, MatrixSession, MessagesRequest,
    SyncParams,
};
pub use proxy::{
    InboundMessage, InboundOutcome, MODES as PROXY_MODES, OUTBOX as PROXY_OUTBOX, PROXY_SERVICE, ParticipantSpec, Pool,
    ProxyAlert, ProxyInteraction, ProxyJob, ProxyNumber, ProxyParticipant, ProxyService, ProxyServicePatch,
    ProxySession, SERVICES as PROXY_SERVICES, SessionCreate, SessionStatus, SessionUpdate, proxy_alerts_list,
};
pub use services::{DEFAULT_SERVICE, MATRIX_SERVICE};

use services::ServiceCache;

impl Engine {
    pub fn new(store: Arc<dyn Store>, limits: Limits, root: RootCredentials, secrets: SecretBox) -> Self {
        let shared = store.change_hints().is_some();
        let published = Arc::new(Published {
            notifier: ChangeNotifier::default(),
            recent: if shared { RecentLog::shared(4096) } else { RecentLog::new(4096) },
        });
        let observer: std::sync::Weak<dyn crate::store::CommitObserver> = Arc::downgrade(&published) as _;
        store.observe_commits(observer);
        Engine {
            store,
            limits,
            root,
            secrets,
            published,
            service_cache: ServiceCache::default(),
            openid: tokio::sync::OnceCell::new(),
            sync_sessions: Default::default(),
            matrix_seen: Default::default(),
            lazy_members: Default::default(),
            indexes: Default::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn notifier(&self) -> &ChangeNotifier {
        &self.published.notifier
    }

    pub fn account_sid(&self) -> &Sid {
        &self.root.account_sid
    }

    // ----- helpers ----------------------------------------------------------------------------

    async fn run(&self, svc: &Service, principal: &Principal, m: Mutation) -> Result<Outcome, CoreError> {
        Ok(self.run_logged(svc, principal, m).await?.value)
    }

    async fn run_logged(
        &self,
        svc: &Service,
        principal: &Principal,
        m: Mutation,
    ) -> Result<Logged<Outcome>, CoreError> {
        check_service_reach(principal, svc)?;
        let applied = self.store.execute(principal.actor(), m).await?;
        let last = applied.events.last();
        // When live subscriptions follow the object, the caller steps aside once before it
        // answers: the fan-out the commit woke runs first, so the change goes out to the other
        // clients before the writer's own reply (a loopback write of some µs) does.
        if last.is_some_and(|e| self.published.notifier.is_awaited(e)) {
            tokio::task::yield_now().await;
        }
        let seq = last.map(|e| e.seq);
        Ok(Logged { value: applied.outcome, seq })
    }

    async fn find_object(&self, svc: &Service, kind: ObjectKind, id: &str) -> Result<SyncObject, CoreError> {
        let r = self.parse_object_ref(id, kind)?;
        self.store.object(&svc.sid, kind, &r).await?.ok_or_else(|| CoreError::not_found(NotFoundKind::Object(kind), id))
    }

    /// Resolves and authorises read access to an object, for subscriptions.
    pub async fn readable_object(
        &self,
        principal: &Principal,
        service: &Service,
        kind: ObjectKind,
        id: &str,
    ) -> Result<SyncObject, CoreError> {
        check_service_reach(principal, service)?;
        let object = self.find_object(service, kind, id).await?;
        self.check_read(principal, service, &object).await?;
        Ok(object)
    }

    async fn check_read(&self, principal: &Principal, svc: &Service, object: &SyncObject) -> Result<(), CoreError> {
        self.check(principal, svc, object, Right::Read).await
    }

    async fn check(
        &self,
        principal: &Principal,
        svc: &Service,
        object: &SyncObject,
        right: Right,
    ) -> Result<(), CoreError> {
        let actor = principal.actor();
        let Some(identity) = &actor.identity else {
            return Ok(());
        };
        if !svc.acl_enabled {
            return Ok(());
        }
        let permission = self.store.permission(&object.sid, identity).await?;
        if rules::allowed(svc, &actor, permission.as_ref(), right) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!(
                "identity '{identity}' has no {right:?} permission on {} {}",
                object.kind.as_str(),
                object.sid
            )))
        }
    }

    fn parse_object_ref(&self, id: &str, kind: ObjectKind) -> Result<ObjectRef, CoreError> {
        let r = ObjectRef::parse(id, kind.sid_kind())?;
        if let ObjectRef::UniqueName(n) = &r {
            self.validate_unique_name(n)?;
        }
        Ok(r)
    }

    fn validate_unique_name(&self, name: &str) -> Result<(), CoreError> {
        if name.is_empty() {
            return Err(CoreError::invalid("unique_name", "must not be empty"));
        }
        let chars = name.chars().count();
        if chars > self.limits.max_name_chars {
            return Err(CoreError::invalid(
                "unique_name",
                format!("is {chars} characters long, the limit is {}", self.limits.max_name_chars),
            ));
        }
        if looks_like_sid(name) {
            return Err(CoreError::invalid("unique_name", "must not have the shape of a SID"));
        }
        Ok(())
    }

    fn validate_item_key(&self, kind: ObjectKind, key: &ItemKey) -> Result<(), CoreError> {
        match (kind, key) {
            (ObjectKind::List, ItemKey::Index(_)) => Ok(()),
            (ObjectKind::Map, ItemKey::Key(k)) => {
                let chars = k.chars().count();
                if chars == 0 || chars > self.limits.max_name_chars {
                    Err(CoreError::invalid(
                        "key",
                        format!("must be 1 to {} characters long, got {chars}", self.limits.max_name_chars),
                    ))
                } else {
                    Ok(())
                }
            }
            (ObjectKind::List, ItemKey::Key(k)) => {
                Err(CoreError::invalid("index", format!("'{k}' is not a list index")))
            }
            _ => Err(CoreError::invalid("key", format!("a {} has no items", kind.as_str()))),
        }
    }

    fn validate_document_data(&self, data: &Value) -> Result<(), CoreError> {
        if !data.is_object() {
            return Err(CoreError::invalid("data", "must be a JSON object"));
        }
        self.validate_item_data(data)
    }

    fn validate_item_data(&self, data: &Value) -> Result<(), CoreError> {
        if !data.is_object() {
            return Err(CoreError::invalid("data", "must be a JSON object"));
        }
        let size = json_size(data);
        if size > self.limits.max_data_bytes {
            return Err(CoreError::TooLarge { field: "data", size, limit: self.limits.max_data_bytes });
        }
        Ok(())
    }

    fn validate_ttl(&self, field: &'static str, ttl: Option<u64>) -> Result<(), CoreError> {
        match ttl {
            Some(t) if t > self.limits.max_ttl_secs => Err(CoreError::invalid(
                field,
                format!("must be between 0 and {} seconds, got {t}", self.limits.max_ttl_secs),
            )),
            _ => Ok(()),
        }
    }
}

/// The size of `v` as JSON, counted without writing it out.
fn json_size(v: &Value) -> usize {
    ferrosync_protocol::json::encoded_len(v)
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    let n = value.chars().count();
    if n > max {
        return Err(CoreError::invalid(field, format!("is {n} characters long, the limit is {max}")));
    }
    Ok(())
}

fn validate_identity(identity: &str) -> Result<(), CoreError> {
    if identity.is_empty() {
        return Err(CoreError::invalid("identity", "must not be empty"));
    }
    check_len("identity", identity, 320)
}

fn require_admin(principal: &Principal) -> Result<(), CoreError> {
    if principal.is_admin() {
        Ok(())
    } else {
        Err(CoreError::Forbidden("this needs server credentials (the account or an API key)".into()))
    }
}

fn check_service_reach(principal: &Principal, svc: &Service) -> Result<(), CoreError> {
    match principal {
        Principal::Identity { service_sid, .. } if service_sid != &svc.sid => {
            Err(CoreError::Forbidden("the access token is for another service".into()))
        }
        // A pool's service holds every identity's datasets: its objects are reached only
        // through the Cognito operations, which confine an identity to its own.
        Principal::CognitoIdentity { .. } => {
            Err(CoreError::Forbidden("Cognito identity credentials reach only the Cognito Sync operations".into()))
        }
        _ => Ok(()),
    }
}

fn public_key(r: ApiKeyRecord) -> ApiKey {
    ApiKey { sid: r.sid, friendly_name: r.friendly_name, secret: String::new(), date_created: r.date_created }
}

fn unexpected(outcome: Outcome) -> CoreError {
    CoreError::Store(crate::store::StoreError::Backend(format!("unexpected outcome {outcome:?}")))
}
