//! The engine: the one core every facade calls. It authenticates, checks input against the
//! limits and the principal's reach, runs mutations through the store, and wakes readers.

use crate::auth::{self, Principal, RootCredentials, SecretBox};
use crate::error::{CoreError, NotFoundKind};
use crate::limits::Limits;
use crate::log::SinceToken;
use crate::model::{
    ApiKey, Item, ItemKey, ObjectKind, ObjectRef, OpenMode, Permission, Service, StreamMessage, SyncObject,
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
    notifier: ChangeNotifier,
    recent: RecentLog,
    service_cache: ServiceCache,
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
}

#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub unique_name: Option<Option<String>>,
    pub friendly_name: Option<Option<String>>,
    pub acl_enabled: Option<bool>,
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

impl Engine {
    pub fn new(store: Arc<dyn Store>, limits: Limits, root: RootCredentials, secrets: SecretBox) -> Self {
        Engine {
            store,
            limits,
            root,
            secrets,
            notifier: ChangeNotifier::default(),
            recent: RecentLog::new(4096),
            service_cache: ServiceCache::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn notifier(&self) -> &ChangeNotifier {
        &self.notifier
    }

    pub fn account_sid(&self) -> &Sid {
        &self.root.account_sid
    }

    // ----- authentication -------------------------------------------------------------------

    /// Basic auth: the root account or an API key.
    pub async fn authenticate_basic(&self, user: &str, password: &str) -> Result<Principal, CoreError> {
        if self.root.matches(user, password) {
            return Ok(Principal::Root);
        }
        if let Ok(sid) = Sid::parse_kind(user, SidKind::ApiKey)
            && let Some(record) = self.store.api_key(&sid).await?
        {
            let secret = self.secrets.open(&record.sealed_secret)?;
            if auth::constant_time_eq(password, &secret) {
                return Ok(Principal::ApiKey(sid));
            }
        }
        Err(CoreError::InvalidCredentials)
    }

    /// Bearer auth: an access token signed by one of our API keys.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, CoreError> {
        let key_sid = auth::access_token_issuer(token)?;
        let record = self
            .store
            .api_key(&key_sid)
            .await?
            .ok_or_else(|| CoreError::InvalidAccessToken("signing key is unknown or was deleted".into()))?;
        let secret = self.secrets.open(&record.sealed_secret)?;
        let claims = auth::verify_access_token(
            token,
            &self.root.account_sid,
            &secret,
            self.limits.max_token_ttl_secs,
            now_secs(),
        )?;
        let identity = claims
            .grants
            .identity
            .filter(|i| !i.is_empty())
            .ok_or_else(|| CoreError::InvalidAccessToken("token has no identity grant".into()))?;
        let service =
            claims.grants.data_sync.and_then(|g| g.service_sid).ok_or_else(|| {
                CoreError::InvalidAccessToken("token has no data_sync grant with a service_sid".into())
            })?;
        let service = self.resolve_service_ref(&service).await?;
        Ok(Principal::Identity { identity, service_sid: service.sid, expires_at: claims.exp })
    }

    /// Mints an access token for `identity` on `service`, signed by `key` (or the first key,
    /// created on demand when the root account asks and none exists).
    pub async fn mint_token(
        &self,
        principal: &Principal,
        service: &str,
        identity: &str,
        ttl: Option<u64>,
    ) -> Result<MintedToken, CoreError> {
        let signer = match principal {
            Principal::ApiKey(sid) => sid.clone(),
            Principal::Root => match self.store.api_keys().await?.into_iter().next() {
                Some(k) => k.sid,
                None => self.create_api_key(principal, Some("default signing key".into())).await?.sid,
            },
            Principal::Identity { .. } => {
                return Err(CoreError::Forbidden("identities cannot mint tokens".into()));
            }
        };
        self.mint_token_with_key(principal, &signer, service, identity, ttl).await
    }

    pub async fn mint_token_with_key(
        &self,
        principal: &Principal,
        key: &Sid,
        service: &str,
        identity: &str,
        ttl: Option<u64>,
    ) -> Result<MintedToken, CoreError> {
        require_admin(principal)?;
        validate_identity(identity)?;
        let ttl = ttl.unwrap_or(3600);
        if ttl == 0 || ttl > self.limits.max_token_ttl_secs {
            return Err(CoreError::invalid(
                "ttl",
                format!("must be between 1 and {} seconds, got {ttl}", self.limits.max_token_ttl_secs),
            ));
        }
        let service = self.resolve_service_ref(service).await?;
        let record = self
            .store
            .api_key(key)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ApiKey, key.to_string()))?;
        let secret = self.secrets.open(&record.sealed_secret)?;
        let now = now_secs();
        let token = auth::mint_access_token(&self.root.account_sid, key, &secret, identity, &service.sid, ttl, now)?;
        Ok(MintedToken { token, identity: identity.to_owned(), service_sid: service.sid, expires_at: now + ttl as i64 })
    }

    // ----- API keys -------------------------------------------------------------------------

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        friendly_name: Option<String>,
    ) -> Result<ApiKey, CoreError> {
        require_admin(principal)?;
        if let Some(name) = &friendly_name {
            check_len("friendly_name", name, 64)?;
        }
        let key = ApiKey {
            sid: Sid::random(SidKind::ApiKey),
            friendly_name,
            secret: auth::random_hex(16),
            date_created: Timestamp::now(),
        };
        let record = ApiKeyRecord {
            sid: key.sid.clone(),
            friendly_name: key.friendly_name.clone(),
            sealed_secret: self.secrets.seal(&key.secret),
            date_created: key.date_created,
        };
        self.store.execute(Actor::SYSTEM, Mutation::PutApiKey(record)).await?;
        Ok(key)
    }

    pub async fn api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>, CoreError> {
        require_admin(principal)?;
        Ok(self.store.api_keys().await?.into_iter().map(public_key).collect())
    }

    pub async fn api_key(&self, principal: &Principal, sid: &str) -> Result<ApiKey, CoreError> {
        require_admin(principal)?;
        let sid = Sid::parse_kind(sid, SidKind::ApiKey)?;
        self.store
            .api_key(&sid)
            .await?
            .map(public_key)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ApiKey, sid.to_string()))
    }

    pub async fn remove_api_key(&self, principal: &Principal, sid: &str) -> Result<(), CoreError> {
        require_admin(principal)?;
        let sid = Sid::parse_kind(sid, SidKind::ApiKey)?;
        self.store.execute(Actor::SYSTEM, Mutation::RemoveApiKey { sid }).await?;
        Ok(())
    }

    // ----- services -------------------------------------------------------------------------

    pub async fn create_service(&self, principal: &Principal, spec: ServiceSpec) -> Result<Service, CoreError> {
        require_admin(principal)?;
        if let Some(n) = &spec.unique_name {
            self.validate_unique_name(n)?;
        }
        if let Some(n) = &spec.friendly_name {
            check_len("friendly_name", n, 255)?;
        }
        let m = Mutation::CreateService {
            sid: Sid::new(SidKind::Service),
            unique_name: spec.unique_name,
            friendly_name: spec.friendly_name,
            acl_enabled: spec.acl_enabled,
        };
        let outcome = self.store.execute(Actor::SYSTEM, m).await?.outcome;
        self.service_cache.clear();
        match outcome {
            Outcome::Service(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn update_service(
        &self,
        principal: &Principal,
        service: &str,
        patch: ServicePatch,
    ) -> Result<Service, CoreError> {
        require_admin(principal)?;
        if let Some(Some(n)) = &patch.unique_name {
            self.validate_unique_name(n)?;
        }
        if let Some(Some(n)) = &patch.friendly_name {
            check_len("friendly_name", n, 255)?;
        }
        let svc = self.resolve_service_ref(service).await?;
        let m = Mutation::UpdateService {
            service: svc.sid,
            unique_name: patch.unique_name,
            friendly_name: patch.friendly_name,
            acl_enabled: patch.acl_enabled,
        };
        let outcome = self.store.execute(Actor::SYSTEM, m).await?.outcome;
        self.service_cache.clear();
        match outcome {
            Outcome::Service(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn remove_service(&self, principal: &Principal, service: &str) -> Result<(), CoreError> {
        require_admin(principal)?;
        let svc = self.resolve_service_ref(service).await?;
        self.store.execute(Actor::SYSTEM, Mutation::RemoveService { service: svc.sid.clone() }).await?;
        self.recent.forget(&svc.sid);
        self.service_cache.clear();
        Ok(())
    }

    pub async fn service(&self, principal: &Principal, service: &str) -> Result<Service, CoreError> {
        let svc = self.resolve_service_ref(service).await?;
        check_service_reach(principal, &svc)?;
        Ok(svc)
    }

    pub async fn services(&self, principal: &Principal, page: PageRequest) -> Result<Page<Service>, CoreError> {
        require_admin(principal)?;
        let rows = self.store.services(&page).await?;
        Ok(page.finish(rows, |s| Cursor::Key(s.sid.to_string())))
    }

    /// Finds a service by SID or unique name. Lookups are cached briefly: every request
    /// resolves its service, and services change rarely (local changes invalidate at once).
    pub async fn resolve_service_ref(&self, service: &str) -> Result<Service, CoreError> {
        if let Some(found) = self.service_cache.get(service) {
            return Ok(found);
        }
        let r = ObjectRef::parse(service, SidKind::Service)?;
        let found =
            self.store.service(&r).await?.ok_or_else(|| CoreError::not_found(NotFoundKind::Service, service))?;
        self.service_cache.put(service, &found);
        Ok(found)
    }

    // ----- objects ----------------------------------------------------------------------------

    pub async fn open(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        req: OpenRequest,
    ) -> Result<(SyncObject, bool), CoreError> {
        let svc = self.service(principal, service).await?;
        let target = match (&req.sid, &req.unique_name) {
            (Some(_), Some(_)) => {
                return Err(CoreError::invalid("sid", "give a sid or a unique_name, not both"));
            }
            (Some(sid), None) => Some(ObjectRef::Sid(Sid::parse_kind(sid, kind.sid_kind())?)),
            (None, Some(name)) => {
                self.validate_unique_name(name)?;
                Some(ObjectRef::UniqueName(name.clone()))
            }
            (None, None) => None,
        };
        self.validate_ttl("ttl", req.ttl)?;
        if let Some(data) = &req.data {
            if kind != ObjectKind::Document {
                return Err(CoreError::invalid("data", format!("a {} has no data of its own", kind.as_str())));
            }
            self.validate_document_data(data)?;
        }
        let m = Mutation::OpenObject {
            service: svc.sid.clone(),
            kind,
            target,
            mode: req.mode,
            ttl: req.ttl,
            data: req.data,
        };
        match self.run(&svc, principal, m).await? {
            Outcome::Object { object, created } => Ok((object, created)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn object(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
    ) -> Result<SyncObject, CoreError> {
        let svc = self.service(principal, service).await?;
        let object = self.find_object(&svc, kind, id).await?;
        self.check_read(principal, &svc, &object).await?;
        Ok(object)
    }

    pub async fn objects(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        page: PageRequest,
    ) -> Result<Page<SyncObject>, CoreError> {
        let svc = self.service(principal, service).await?;
        if !principal.is_admin() && svc.acl_enabled {
            return Err(CoreError::Forbidden("listing objects needs server credentials when ACLs are enabled".into()));
        }
        let rows = self.store.objects(&svc.sid, kind, &page).await?;
        Ok(page.finish(rows, |o| Cursor::Key(o.sid.to_string())))
    }

    pub async fn update_object(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        patch: ObjectPatch,
    ) -> Result<SyncObject, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.validate_ttl("ttl", patch.ttl)?;
        if let Some(data) = &patch.data {
            if kind != ObjectKind::Document {
                return Err(CoreError::invalid("data", format!("a {} has no data of its own", kind.as_str())));
            }
            self.validate_document_data(data)?;
        }
        let m = Mutation::UpdateObject {
            service: svc.sid.clone(),
            kind,
            target,
            data: patch.data,
            ttl: patch.ttl,
            if_match: patch.if_match,
        };
        match self.run(&svc, principal, m).await? {
            Outcome::Object { object, .. } => Ok(object),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces a document's data through `f`, retrying on revision conflicts.
    pub async fn mutate_document(
        &self,
        principal: &Principal,
        service: &str,
        id: &str,
        f: impl Fn(&Value) -> Value,
    ) -> Result<SyncObject, CoreError> {
        loop {
            let current = self.object(principal, service, ObjectKind::Document, id).await?;
            let data = f(current.data.as_ref().unwrap_or(&Value::Null));
            let patch = ObjectPatch { data: Some(data), ttl: None, if_match: Some(current.revision) };
            match self.update_object(principal, service, ObjectKind::Document, id, patch).await {
                Err(CoreError::RevisionMismatch { .. }) => continue,
                other => return other,
            }
        }
    }

    pub async fn remove_object(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.run(&svc, principal, Mutation::RemoveObject { service: svc.sid.clone(), kind, target, if_match }).await?;
        Ok(())
    }

    // ----- items ------------------------------------------------------------------------------

    pub async fn add_list_item(
        &self,
        principal: &Principal,
        service: &str,
        list: &str,
        data: Value,
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
    ) -> Result<Item, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(list, ObjectKind::List)?;
        self.validate_item_data(&data)?;
        self.validate_ttl("ttl", ttl)?;
        self.validate_ttl("collection_ttl", collection_ttl)?;
        let m = Mutation::AddListItem { service: svc.sid.clone(), target, data, ttl, collection_ttl };
        match self.run(&svc, principal, m).await? {
            Outcome::Item { item, .. } => Ok(item),
            other => Err(unexpected(other)),
        }
    }

    /// Writes a list item (update only) or map item (create, update or upsert).
    #[allow(clippy::too_many_arguments)]
    pub async fn write_item(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        key: ItemKey,
        patch: ItemPatch,
        mode: ItemWriteMode,
    ) -> Result<(Item, bool), CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.validate_item_key(kind, &key)?;
        if let Some(data) = &patch.data {
            self.validate_item_data(data)?;
        } else if mode == ItemWriteMode::Create {
            return Err(CoreError::invalid("data", "is required"));
        }
        self.validate_ttl("ttl", patch.ttl)?;
        self.validate_ttl("collection_ttl", patch.collection_ttl)?;
        let m = Mutation::WriteItem {
            service: svc.sid.clone(),
            kind,
            target,
            key,
            data: patch.data,
            ttl: patch.ttl,
            collection_ttl: patch.collection_ttl,
            if_match: patch.if_match,
            mode,
        };
        match self.run(&svc, principal, m).await? {
            Outcome::Item { item, created } => Ok((item, created)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn remove_item(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        key: ItemKey,
        if_match: Option<u64>,
    ) -> Result<(), CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.validate_item_key(kind, &key)?;
        self.run(&svc, principal, Mutation::RemoveItem { service: svc.sid.clone(), kind, target, key, if_match })
            .await?;
        Ok(())
    }

    pub async fn item(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        key: &ItemKey,
    ) -> Result<Item, CoreError> {
        let svc = self.service(principal, service).await?;
        let object = self.find_object(&svc, kind, id).await?;
        self.check_read(principal, &svc, &object).await?;
        self.store
            .item(&object.sid, key)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Item, key.to_string()))
    }

    pub async fn items(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        page: PageRequest,
    ) -> Result<Page<Item>, CoreError> {
        let svc = self.service(principal, service).await?;
        let object = self.find_object(&svc, kind, id).await?;
        self.check_read(principal, &svc, &object).await?;
        let rows = self.store.items(&object.sid, kind, &page).await?;
        Ok(page.finish(rows, |i| match i.item_key() {
            ItemKey::Index(n) => Cursor::Index(n),
            ItemKey::Key(k) => Cursor::Key(k),
        }))
    }

    // ----- streams ----------------------------------------------------------------------------

    pub async fn publish(
        &self,
        principal: &Principal,
        service: &str,
        stream: &str,
        data: Value,
    ) -> Result<StreamMessage, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(stream, ObjectKind::Stream)?;
        if !data.is_object() {
            return Err(CoreError::invalid("data", "must be a JSON object"));
        }
        let size = json_size(&data);
        if size > self.limits.max_message_bytes {
            return Err(CoreError::TooLarge { field: "data", size, limit: self.limits.max_message_bytes });
        }
        let m =
            Mutation::Publish { service: svc.sid.clone(), target, message_sid: Sid::new(SidKind::StreamMessage), data };
        match self.run(&svc, principal, m).await? {
            Outcome::Message(msg) => Ok(msg),
            other => Err(unexpected(other)),
        }
    }

    // ----- permissions ------------------------------------------------------------------------

    pub async fn permissions(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
    ) -> Result<Vec<Permission>, CoreError> {
        let svc = self.service(principal, service).await?;
        let object = self.find_object(&svc, kind, id).await?;
        self.check(principal, &svc, &object, Right::Manage).await?;
        Ok(self.store.permissions(&object.sid).await?)
    }

    pub async fn permission(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        identity: &str,
    ) -> Result<Permission, CoreError> {
        let svc = self.service(principal, service).await?;
        let object = self.find_object(&svc, kind, id).await?;
        let own = matches!(principal, Principal::Identity { identity: i, .. } if i == identity);
        if !own {
            self.check(principal, &svc, &object, Right::Manage).await?;
        }
        self.store
            .permission(&object.sid, identity)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Permission, identity))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn set_permission(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        identity: &str,
        read: bool,
        write: bool,
        manage: bool,
    ) -> Result<Permission, CoreError> {
        validate_identity(identity)?;
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        let m = Mutation::SetPermission {
            service: svc.sid.clone(),
            kind,
            target,
            identity: identity.to_owned(),
            read,
            write,
            manage,
        };
        match self.run(&svc, principal, m).await? {
            Outcome::Permission(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    pub async fn remove_permission(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        identity: &str,
    ) -> Result<(), CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        let m = Mutation::RemovePermission { service: svc.sid.clone(), kind, target, identity: identity.to_owned() };
        self.run(&svc, principal, m).await?;
        Ok(())
    }

    // ----- the change log ---------------------------------------------------------------------

    /// The token for "now": a reader starting here sees only later events.
    pub async fn head_token(&self, service: &Service) -> Result<String, CoreError> {
        let fresh = self.store.service(&ObjectRef::Sid(service.sid.clone())).await?.unwrap_or_else(|| service.clone());
        Ok(SinceToken { epoch: self.store.epoch().to_owned(), service_sid: service.sid.clone(), seq: fresh.head_seq }
            .encode())
    }

    /// Resolves a since-token to a sequence number, refusing foreign and expired tokens.
    pub async fn since_seq(&self, service: &Service, since: &str) -> Result<u64, CoreError> {
        let seq = SinceToken::decode(since)?.seq_for(self.store.epoch(), &service.sid)?;
        let fresh = self
            .store
            .service(&ObjectRef::Sid(service.sid.clone()))
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Service, service.sid.to_string()))?;
        if seq > fresh.head_seq {
            return Err(CoreError::ForeignSinceToken);
        }
        if seq < fresh.pruned_seq {
            return Err(CoreError::ResyncRequired);
        }
        Ok(seq)
    }

    fn token_at(&self, service: &Sid, seq: u64) -> String {
        SinceToken { epoch: self.store.epoch().to_owned(), service_sid: service.clone(), seq }.encode()
    }

    /// Events after `since`, waiting up to `timeout` for the first.
    pub async fn changes(
        &self,
        principal: &Principal,
        service: &str,
        since: Since<'_>,
        object: Option<&Sid>,
        limit: u32,
        timeout: Duration,
    ) -> Result<Changes, CoreError> {
        let svc = self.service(principal, service).await?;
        if !principal.is_admin() && svc.acl_enabled {
            return Err(CoreError::Forbidden(
                "reading the whole change log needs server credentials when ACLs are enabled".into(),
            ));
        }
        if limit == 0 || limit > self.limits.max_page_size {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {}, got {limit}", self.limits.max_page_size),
            ));
        }
        // Subscribe first, then read, then wait: a commit between the read and the wait still wakes us.
        let mut wake = self.notifier.subscribe(&svc.sid);
        let mut after = self.start_seq(&svc, since).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let events = self.read_events(&svc.sid, after, object, limit).await?;
            if let Some(last) = events.last() {
                let next = self.token_at(&svc.sid, last.seq);
                return Ok(Changes { events, next });
            }
            if object.is_some() {
                // Nothing for this object: move the cursor to the head read *before* a second
                // read, so later polls do not rescan the same stretch of log and nothing
                // committed in between is skipped.
                let head = self.current_head(&svc.sid).await?;
                let events = self.read_events(&svc.sid, after, object, limit).await?;
                if let Some(last) = events.last() {
                    let next = self.token_at(&svc.sid, last.seq);
                    return Ok(Changes { events, next });
                }
                after = after.max(head);
            }
            if tokio::time::timeout_at(deadline, wake.changed()).await.is_err() {
                return Ok(Changes { events, next: self.token_at(&svc.sid, after) });
            }
        }
    }

    /// The sequence number a reader starting at `since` continues after.
    pub async fn start_seq(&self, service: &Service, since: Since<'_>) -> Result<u64, CoreError> {
        match since {
            Since::Token(t) => self.since_seq(service, t).await,
            Since::Now => self.current_head(&service.sid).await,
            Since::Start => {
                Ok(self.store.service(&ObjectRef::Sid(service.sid.clone())).await?.map(|s| s.pruned_seq).unwrap_or(0))
            }
        }
    }

    /// Events with `seq > after`: from the in-memory run of recent commits when it provably
    /// holds the next one, otherwise from the store.
    pub async fn read_events(
        &self,
        service: &Sid,
        after: u64,
        object: Option<&Sid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, CoreError> {
        if let Some(events) = self.recent.read(service, after, object, limit) {
            return Ok(events);
        }
        Ok(self.store.events(service, after, object, limit).await?)
    }

    async fn current_head(&self, service: &Sid) -> Result<u64, CoreError> {
        Ok(self.store.service(&ObjectRef::Sid(service.clone())).await?.map(|s| s.head_seq).unwrap_or(0))
    }

    // ----- background work --------------------------------------------------------------------

    /// Removes what has expired; returns how many objects and items went.
    pub async fn expire_due(&self) -> Result<u64, CoreError> {
        let applied = self.store.execute(Actor::SYSTEM, Mutation::Expire { now: Timestamp::now(), limit: 500 }).await?;
        self.wake(&applied);
        Ok(match applied.outcome {
            Outcome::Expired { removed } => removed,
            _ => 0,
        })
    }

    /// Drops change-log events older than the retention window.
    pub async fn prune_log(&self) -> Result<u64, CoreError> {
        let before = Timestamp(Timestamp::now().millis() - (self.limits.retention_secs as i64) * 1000);
        let applied = self.store.execute(Actor::SYSTEM, Mutation::Prune { before }).await?;
        Ok(match applied.outcome {
            Outcome::Pruned { events } => events,
            _ => 0,
        })
    }

    // ----- helpers ----------------------------------------------------------------------------

    async fn run(&self, svc: &Service, principal: &Principal, m: Mutation) -> Result<Outcome, CoreError> {
        check_service_reach(principal, svc)?;
        let applied = self.store.execute(principal.actor(), m).await?;
        self.wake(&applied);
        Ok(applied.outcome)
    }

    /// Publishes committed events: into the recent-event cache, then a hint to waiters.
    fn wake(&self, applied: &crate::store::Applied) {
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

fn json_size(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
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
        _ => Ok(()),
    }
}

fn public_key(r: ApiKeyRecord) -> ApiKey {
    ApiKey { sid: r.sid, friendly_name: r.friendly_name, secret: String::new(), date_created: r.date_created }
}

fn unexpected(outcome: Outcome) -> CoreError {
    CoreError::Store(crate::store::StoreError::Backend(format!("unexpected outcome {outcome:?}")))
}

/// Short-lived service lookups by the string a request named them with.
#[derive(Default)]
struct ServiceCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Service)>>,
}

impl ServiceCache {
    /// Long enough to spare the store a read per request, short enough that a change made
    /// through another node is seen promptly.
    const TTL: Duration = Duration::from_secs(1);
    const MAX: usize = 10_000;

    fn get(&self, key: &str) -> Option<Service> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, s)| s.clone())
    }

    fn put(&self, key: &str, service: &Service) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if map.len() >= Self::MAX {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (std::time::Instant::now(), service.clone()));
    }

    fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
