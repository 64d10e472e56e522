//! The rules of the Cognito mutations: identity pools, identity resolution and merges, datasets
//! and their records, push devices. Each runs inside one store transaction that first locks the
//! pool's service row, so one pool's mutations run one after another on every node.

use super::Cx;
use crate::cognito::{
    BulkPublishStatus, CognitoIdentity, Dataset, Device, IdentityPool, IdentityPoolSpec, Login, PatchOp, Platform,
    PoolSyncConfigChange, Record, RecordData, StreamingStatus, dataset_map_name, merged_dataset_name, record_storage,
};
use crate::error::{CoreError, NotFoundKind};
use crate::log::EventKind;
use crate::model::{ItemKey, ObjectKind, ObjectRef, Service, ServiceSettings, SyncObject};
use crate::sid::{Sid, SidKind};
use crate::store::{Outcome, ResolveIdentity, StoreError, UpdateRecords, consumers};

/// AWS's wording for the refusals clients are known to match on.
const LOGINS_DO_NOT_MATCH: &str =
    "Logins don't match. Please include at least one valid login for this identity or identity pool.";
const UNAUTHENTICATED_NOT_SUPPORTED: &str = "Unauthenticated access is not supported for this identity pool.";
const UNSUPPORTED_PROVIDER: &str = "Token is not from a supported provider of this identity pool.";
const DEVELOPER_USER_REGISTERED: &str =
    "The provided developer user identifier is already registered with Cognito under a different identity ID.";

fn forbidden_identity(identity_id: &str) -> CoreError {
    CoreError::NotAuthorized(format!("Access to Identity '{identity_id}' is forbidden."))
}

impl Cx<'_> {
    // ----- pools ---------------------------------------------------------------------------

    pub(super) fn create_identity_pool(&mut self, mut pool: Box<IdentityPool>) -> Result<Outcome, CoreError> {
        if self.tx.identity_pool(&pool.id)?.is_some()
            || self.tx.service(&ObjectRef::UniqueName(pool.id.clone()))?.is_some()
        {
            return Err(CoreError::AlreadyExists { what: "identity pool", name: pool.id });
        }
        // ACLs on: identities from native access tokens get nothing of the pool's datasets
        // unless granted; Cognito identities reach them only through the Cognito operations.
        let service = Service {
            sid: pool.service_sid.clone(),
            unique_name: Some(pool.id.clone()),
            friendly_name: Some(pool.spec.name.clone()),
            acl_enabled: true,
            settings: ServiceSettings::default(),
            revision: 0,
            date_created: self.now,
            date_updated: self.now,
            head_seq: 0,
            pruned_seq: 0,
        };
        self.tx.put_service(&service)?;
        pool.date_created = self.now;
        pool.date_updated = self.now;
        self.tx.put_identity_pool(&pool)?;
        Ok(Outcome::IdentityPool(pool))
    }

    /// The pool, after locking its service's row.
    fn pool(&mut self, service: &Sid, pool_id: &str) -> Result<IdentityPool, CoreError> {
        let not_found = || CoreError::not_found(NotFoundKind::IdentityPool, pool_id);
        self.tx.service(&ObjectRef::Sid(service.clone()))?.ok_or_else(not_found)?;
        self.tx.identity_pool(pool_id)?.filter(|p| &p.service_sid == service).ok_or_else(not_found)
    }

    pub(super) fn update_identity_pool(
        &mut self,
        service: &Sid,
        pool_id: &str,
        mut spec: IdentityPoolSpec,
    ) -> Result<Outcome, CoreError> {
        let mut pool = self.pool(service, pool_id)?;
        if let Some(current) = &pool.spec.developer_provider_name {
            match &spec.developer_provider_name {
                Some(asked) if asked != current => {
                    return Err(CoreError::InvalidParameter(format!(
                        "DeveloperProviderName cannot be changed once set: it is '{current}'"
                    )));
                }
                // Left out of an update, it stays: it can never be cleared.
                _ => spec.developer_provider_name = Some(current.clone()),
            }
        }
        pool.spec = spec;
        pool.date_updated = self.now;
        self.tx.put_identity_pool(&pool)?;
        Ok(Outcome::IdentityPool(Box::new(pool)))
    }

    pub(super) fn change_pool_sync_config(
        &mut self,
        service: &Sid,
        pool_id: &str,
        change: PoolSyncConfigChange,
    ) -> Result<Outcome, CoreError> {
        let mut pool = self.pool(service, pool_id)?;
        let (streams_before, push_before) = (pool.sync.streams_enabled(), pool.sync.push_enabled());
        if let Some(push) = change.push_sync {
            let empty = push.application_arns.is_empty() && push.role_arn.is_none();
            pool.sync.push_sync = (!empty).then_some(push);
        }
        if let Some(streams) = change.cognito_streams {
            pool.sync.cognito_streams = Some(streams);
        }
        if let Some(events) = change.events {
            pool.sync.events = events;
        }
        pool.date_updated = self.now;
        self.tx.put_identity_pool(&pool)?;
        // Publishing starts at the log's head when turned on (history is what a bulk publish
        // is for) and stops when turned off; a changed stream name keeps its place.
        for (consumer, before, after) in [
            (consumers::COGNITO_STREAMS, streams_before, pool.sync.streams_enabled()),
            (consumers::COGNITO_PUSH, push_before, pool.sync.push_enabled()),
        ] {
            match (before, after) {
                (false, true) => {
                    let head = self.tx.service(&ObjectRef::Sid(service.clone()))?.map_or(0, |s| s.head_seq);
                    self.tx.set_log_cursor(consumer, service, Some(head))?;
                }
                (true, false) => self.tx.set_log_cursor(consumer, service, None)?,
                _ => {}
            }
        }
        Ok(Outcome::IdentityPool(Box::new(pool)))
    }

    pub(super) fn start_bulk_publish(
        &mut self,
        service: &Sid,
        pool_id: &str,
        min_interval_secs: u64,
    ) -> Result<Outcome, CoreError> {
        let mut pool = self.pool(service, pool_id)?;
        let current = &pool.sync.bulk_publish;
        if current.status == BulkPublishStatus::InProgress {
            return Err(CoreError::DuplicateRequest(format!(
                "A bulk publish is already in progress for identity pool {pool_id}"
            )));
        }
        if current.status == BulkPublishStatus::Succeeded
            && let Some(done) = current.complete_time
            && done.plus_seconds(min_interval_secs) > self.now
        {
            return Err(CoreError::AlreadyStreamed(format!(
                "Identity pool {pool_id} was bulk published less than {min_interval_secs} seconds ago"
            )));
        }
        let enabled =
            pool.sync.cognito_streams.as_ref().is_some_and(|s| s.streaming_status == StreamingStatus::Enabled);
        if !enabled {
            return Err(CoreError::InvalidConfiguration(format!(
                "Cognito streams are not enabled for identity pool {pool_id}: a bulk publish needs them"
            )));
        }
        let bulk = &mut pool.sync.bulk_publish;
        bulk.status = BulkPublishStatus::InProgress;
        bulk.start_time = Some(self.now);
        bulk.complete_time = None;
        bulk.failure_message = None;
        self.tx.put_identity_pool(&pool)?;
        // The publisher finds the running bulk publish by its cursor (a lease, so one node runs it).
        self.tx.set_log_cursor(consumers::COGNITO_BULK_PUBLISH, service, Some(0))?;
        Ok(Outcome::IdentityPool(Box::new(pool)))
    }

    pub(super) fn finish_bulk_publish(
        &mut self,
        service: &Sid,
        pool_id: &str,
        failure: Option<String>,
    ) -> Result<Outcome, CoreError> {
        let mut pool = self.pool(service, pool_id)?;
        let bulk = &mut pool.sync.bulk_publish;
        if bulk.status != BulkPublishStatus::InProgress {
            return Err(CoreError::InvalidParameter(format!(
                "No bulk publish is in progress for identity pool {pool_id}"
            )));
        }
        bulk.status = if failure.is_some() { BulkPublishStatus::Failed } else { BulkPublishStatus::Succeeded };
        bulk.complete_time = Some(self.now);
        bulk.failure_message = failure;
        self.tx.put_identity_pool(&pool)?;
        self.tx.set_log_cursor(consumers::COGNITO_BULK_PUBLISH, service, None)?;
        Ok(Outcome::IdentityPool(Box::new(pool)))
    }

    pub(super) fn remove_identity_pool(&mut self, service: &Sid, pool_id: &str) -> Result<Outcome, CoreError> {
        self.pool(service, pool_id)?;
        // Everything of the pool hangs off its service row and goes with it.
        self.tx.delete_service(service)?;
        Ok(Outcome::Removed)
    }

    // ----- identities ----------------------------------------------------------------------

    /// The identity when it is known: it must belong to `pool` and be enabled.
    fn known_identity(&mut self, pool: &IdentityPool, identity_id: &str) -> Result<Option<CognitoIdentity>, CoreError> {
        match self.tx.cognito_identity(identity_id)? {
            Some(i) if i.pool_id != pool.id => Err(CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id)),
            Some(i) if i.disabled => Err(forbidden_identity(identity_id)),
            other => Ok(other),
        }
    }

    /// The identity a Cognito Sync mutation writes for. Developer credentials may name ids
    /// this server never issued; such an id is bound to the first pool it writes in, so that
    /// one id never holds datasets in two pools.
    fn sync_identity(&mut self, pool: &IdentityPool, identity_id: &str) -> Result<(), CoreError> {
        if self.known_identity(pool, identity_id)?.is_none()
            && self.tx.datasets(identity_id)?.iter().any(|d| d.pool_id != pool.id)
        {
            return Err(CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id));
        }
        Ok(())
    }

    fn pool_identity(&mut self, pool: &IdentityPool, identity_id: &str) -> Result<CognitoIdentity, CoreError> {
        self.known_identity(pool, identity_id)?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id))
    }

    pub(super) fn resolve_identity(&mut self, r: ResolveIdentity) -> Result<Outcome, CoreError> {
        let pool = self.pool(&r.service, &r.pool_id)?;
        let developer_provider = pool.spec.developer_provider_name.clone();
        let is_developer = |login: &Login| developer_provider.as_deref() == Some(login.provider.as_str());
        let logins: Vec<Login> =
            r.logins.iter().map(|(provider, user)| Login { provider: provider.clone(), user: user.clone() }).collect();
        for login in &logins {
            if is_developer(login) {
                if !r.developer {
                    return Err(CoreError::NotAuthorized(format!(
                        "Logins of the developer provider '{}' need developer credentials",
                        login.provider
                    )));
                }
            } else if !pool.spec.accepts_provider(&login.provider) {
                return Err(CoreError::NotAuthorized(UNSUPPORTED_PROVIDER.into()));
            }
        }
        let caller = match &r.identity_id {
            Some(id) => Some(self.pool_identity(&pool, id)?),
            None => None,
        };
        let mut owners = Vec::with_capacity(logins.len());
        for login in &logins {
            owners.push(self.tx.login_owner(&pool.id, login)?);
        }
        if let Some(c) = &caller {
            if r.developer {
                let taken =
                    logins.iter().zip(&owners).any(|(l, o)| is_developer(l) && o.as_ref().is_some_and(|o| o != &c.id));
                if taken {
                    return Err(CoreError::DeveloperUserAlreadyRegistered(DEVELOPER_USER_REGISTERED.into()));
                }
            }
            let presented = owners.iter().any(|o| o.as_ref() == Some(&c.id));
            if c.is_authenticated() && !r.proven && !presented {
                return Err(CoreError::NotAuthorized(LOGINS_DO_NOT_MATCH.into()));
            }
            if !c.is_authenticated() && logins.is_empty() && !pool.spec.allow_unauthenticated_identities {
                return Err(CoreError::NotAuthorized(UNAUTHENTICATED_NOT_SUPPORTED.into()));
            }
        } else if logins.is_empty() && !pool.spec.allow_unauthenticated_identities {
            return Err(CoreError::NotAuthorized(UNAUTHENTICATED_NOT_SUPPORTED.into()));
        }

        // The identity that already holds a presented login survives; the caller's identity
        // (an unauthenticated one logging in, typically) and any other owner merge into it.
        let caller_id = caller.as_ref().map(|c| c.id.clone());
        let other_owner = owners.iter().flatten().find(|o| Some(*o) != caller_id.as_ref()).cloned();
        let (mut survivor, created) = match (other_owner, caller.clone()) {
            (Some(owner), _) => (self.pool_identity(&pool, &owner)?, false),
            (None, Some(c)) => (c, false),
            (None, None) => {
                let id = r
                    .new_identity_id
                    .clone()
                    .ok_or_else(|| CoreError::invalid("IdentityId", "is required: no identity holds these logins"))?;
                let identity = CognitoIdentity {
                    id,
                    pool_id: pool.id.clone(),
                    logins: Vec::new(),
                    disabled: false,
                    merged_into: None,
                    date_created: self.now,
                    date_updated: self.now,
                };
                // Written first: its logins refer to it.
                self.tx.put_cognito_identity(&identity)?;
                (identity, true)
            }
        };
        let mut absorbed: Vec<String> = caller_id.into_iter().chain(owners.iter().flatten().cloned()).collect();
        absorbed.sort();
        absorbed.dedup();
        absorbed.retain(|id| id != &survivor.id);
        for id in &absorbed {
            let other = self.pool_identity(&pool, id)?;
            self.merge_identity(&pool, other, &mut survivor)?;
        }
        for login in logins {
            if survivor.logins.contains(&login) {
                continue;
            }
            self.check_one_user_per_provider(&pool, &survivor, &login)?;
            self.tx.put_login(&pool.id, &login, &survivor.id)?;
            survivor.logins.push(login);
        }
        check_login_count(&survivor, r.max_logins)?;
        survivor.date_updated = self.now;
        self.tx.put_cognito_identity(&survivor)?;
        survivor.logins.sort();
        Ok(Outcome::CognitoIdentity { identity: survivor, created, merged: absorbed })
    }

    /// An identity holds one user per public provider (a developer provider may link several).
    fn check_one_user_per_provider(
        &self,
        pool: &IdentityPool,
        identity: &CognitoIdentity,
        login: &Login,
    ) -> Result<(), CoreError> {
        if pool.spec.developer_provider_name.as_deref() == Some(login.provider.as_str()) {
            return Ok(());
        }
        if identity.logins.iter().any(|l| l.provider == login.provider && l.user != login.user) {
            return Err(CoreError::ResourceConflict(format!(
                "Identity '{}' is already linked to another user of provider '{}'",
                identity.id, login.provider
            )));
        }
        Ok(())
    }

    /// Merges `absorbed` into `survivor`: its logins move over, its datasets follow under
    /// `<name>.<absorbedId>` (so ListRecords of `<name>` reports them as merged), its devices
    /// are dropped, and it stays behind disabled, pointing at the survivor.
    fn merge_identity(
        &mut self,
        pool: &IdentityPool,
        mut absorbed: CognitoIdentity,
        survivor: &mut CognitoIdentity,
    ) -> Result<(), CoreError> {
        for login in std::mem::take(&mut absorbed.logins) {
            self.check_one_user_per_provider(pool, survivor, &login)?;
            self.tx.put_login(&pool.id, &login, &survivor.id)?;
            survivor.logins.push(login);
        }
        for dataset in self.tx.datasets(&absorbed.id)? {
            self.tx.delete_dataset(&absorbed.id, &dataset.name)?;
            let Some(map_sid) = &dataset.map_sid else { continue };
            let name = merged_dataset_name(&dataset.name, &absorbed.id);
            if let Some(previous) = self.tx.dataset(&survivor.id, &name)? {
                self.drop_dataset_map(&previous)?;
            }
            if let Some(mut map) = self.tx.object_by_sid(map_sid)? {
                map.unique_name = Some(dataset_map_name(&survivor.id, &name));
                map.revision += 1;
                map.date_updated = self.now;
                self.tx.put_object(&map)?;
                self.emit_object(EventKind::MapUpdated, &map, None, Some("merged"))?;
            }
            let moved = Dataset {
                identity_id: survivor.id.clone(),
                name,
                deleted_at_sync_count: None,
                merged_from: Some(absorbed.id.clone()),
                ..dataset
            };
            self.tx.put_dataset(&moved)?;
        }
        self.tx.delete_devices(&absorbed.id)?;
        absorbed.disabled = true;
        absorbed.merged_into = Some(survivor.id.clone());
        absorbed.date_updated = self.now;
        self.tx.put_cognito_identity(&absorbed)?;
        Ok(())
    }

    fn developer_provider(&self, pool: &IdentityPool, provider: &str) -> Result<(), CoreError> {
        if pool.spec.developer_provider_name.as_deref() == Some(provider) {
            Ok(())
        } else {
            Err(CoreError::InvalidParameter(format!(
                "DeveloperProviderName '{provider}' is not the developer provider of identity pool {}",
                pool.id
            )))
        }
    }

    fn developer_user_owner(&mut self, pool: &IdentityPool, provider: &str, user: &str) -> Result<String, CoreError> {
        let login = Login { provider: provider.to_owned(), user: user.to_owned() };
        self.tx.login_owner(&pool.id, &login)?.ok_or_else(|| CoreError::not_found(NotFoundKind::DeveloperUser, user))
    }

    pub(super) fn merge_developer_identities(
        &mut self,
        service: &Sid,
        pool_id: &str,
        provider: &str,
        source_user: &str,
        destination_user: &str,
        max_logins: usize,
    ) -> Result<Outcome, CoreError> {
        let pool = self.pool(service, pool_id)?;
        self.developer_provider(&pool, provider)?;
        let source = self.developer_user_owner(&pool, provider, source_user)?;
        let destination = self.developer_user_owner(&pool, provider, destination_user)?;
        let mut survivor = self.pool_identity(&pool, &destination)?;
        let mut merged = Vec::new();
        if source != destination {
            let absorbed = self.pool_identity(&pool, &source)?;
            self.merge_identity(&pool, absorbed, &mut survivor)?;
            check_login_count(&survivor, max_logins)?;
            survivor.date_updated = self.now;
            self.tx.put_cognito_identity(&survivor)?;
            merged.push(source);
        }
        survivor.logins.sort();
        Ok(Outcome::CognitoIdentity { identity: survivor, created: false, merged })
    }

    pub(super) fn unlink_developer_identity(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identity_id: &str,
        provider: &str,
        user: &str,
    ) -> Result<Outcome, CoreError> {
        let pool = self.pool(service, pool_id)?;
        self.developer_provider(&pool, provider)?;
        let mut identity = self.pool_identity(&pool, identity_id)?;
        let owner = self.developer_user_owner(&pool, provider, user)?;
        if owner != identity.id {
            return Err(CoreError::ResourceConflict(format!(
                "Developer user '{user}' is not linked to identity '{identity_id}'"
            )));
        }
        let login = Login { provider: provider.to_owned(), user: user.to_owned() };
        self.tx.delete_login(&pool.id, &login)?;
        identity.logins.retain(|l| l != &login);
        // With its last login gone nobody can prove to be this identity any more.
        identity.disabled = identity.logins.is_empty();
        identity.date_updated = self.now;
        self.tx.put_cognito_identity(&identity)?;
        Ok(Outcome::CognitoIdentity { identity, created: false, merged: Vec::new() })
    }

    pub(super) fn remove_cognito_identity(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identity_id: &str,
    ) -> Result<Outcome, CoreError> {
        let pool = self.pool(service, pool_id)?;
        let identity = self
            .tx
            .cognito_identity(identity_id)?
            .filter(|i| i.pool_id == pool.id)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id))?;
        for dataset in self.tx.datasets(&identity.id)? {
            self.drop_dataset_map(&dataset)?;
        }
        self.tx.delete_cognito_identity(&identity.id)?;
        Ok(Outcome::Removed)
    }

    /// Removes a dataset's Map (with its removal event), if it has one.
    fn drop_dataset_map(&mut self, dataset: &Dataset) -> Result<(), CoreError> {
        if let Some(sid) = &dataset.map_sid
            && let Some(map) = self.tx.object_by_sid(sid)?
        {
            self.remove_object(&map, None)?;
        }
        Ok(())
    }

    // ----- datasets and records ------------------------------------------------------------

    pub(super) fn update_records(&mut self, u: UpdateRecords) -> Result<Outcome, CoreError> {
        let pool = self.pool(&u.service, &u.pool_id)?;
        self.sync_identity(&pool, &u.identity_id)?;
        let existing = self.tx.dataset(&u.identity_id, &u.dataset)?;
        let (mut map, mut dataset) = match existing.clone() {
            Some(dataset @ Dataset { map_sid: Some(_), .. }) => {
                let sid = dataset.map_sid.clone().unwrap_or_else(|| Sid::new(SidKind::Map));
                let map = self.tx.object_by_sid(&sid)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("dataset '{}' names a Map that does not exist", dataset.name))
                })?;
                (map, dataset)
            }
            deleted_or_missing => self.create_dataset(&pool, &u, deleted_or_missing)?,
        };

        // Every patch is checked before anything is written: one stale count refuses them all.
        let keys: Vec<ItemKey> = u.patches.iter().map(|p| ItemKey::Key(p.key.clone())).collect();
        let current = self.tx.items_at(&map.sid, &keys)?;
        for (patch, item) in u.patches.iter().zip(&current) {
            let server = item.as_ref().map(Record::from_item).transpose()?;
            let server_count = server.map_or(0, |r| r.sync_count);
            if patch.sync_count < server_count {
                return Err(CoreError::ResourceConflict(format!(
                    "Current SyncCount for: {} is: {server_count} not: {}",
                    patch.key, patch.sync_count
                )));
            }
        }

        let (mut records, mut bytes) = (dataset.num_records, dataset.data_storage);
        for (patch, item) in u.patches.iter().zip(&current) {
            let old = item.as_ref().map(Record::from_item).transpose()?;
            let old_value = old.as_ref().and_then(|r| r.value.as_deref());
            let new_value = match patch.op {
                PatchOp::Replace => patch.value.as_deref(),
                PatchOp::Remove => None,
            };
            records = (records + u64::from(new_value.is_some())).saturating_sub(u64::from(old_value.is_some()));
            bytes =
                (bytes + record_storage(&patch.key, new_value)).saturating_sub(record_storage(&patch.key, old_value));
        }
        // A dataset already over a (lowered) limit may still shrink.
        if records > u.limits.max_records && records > dataset.num_records {
            return Err(CoreError::LimitExceeded(format!(
                "Dataset '{}' would hold {records} records; the limit is {}",
                u.dataset, u.limits.max_records
            )));
        }
        if bytes > u.limits.max_bytes && bytes > dataset.data_storage {
            return Err(CoreError::LimitExceeded(format!(
                "Dataset '{}' would hold {bytes} bytes; the limit is {}",
                u.dataset, u.limits.max_bytes
            )));
        }

        let sync_count = dataset.sync_count + 1;
        let mut written = Vec::with_capacity(u.patches.len());
        for (patch, item) in u.patches.into_iter().zip(current) {
            let data = RecordData {
                value: match patch.op {
                    PatchOp::Replace => patch.value,
                    PatchOp::Remove => None,
                },
                sync_count,
                last_modified_by: u.modified_by.clone(),
                device_last_modified: patch.device_last_modified.map(|t| t.0),
            };
            let data = serde_json::to_value(&data).map_err(|e| StoreError::Backend(e.to_string()))?;
            let item = match item {
                Some(mut item) => {
                    let previous = std::mem::replace(&mut item.data, std::sync::Arc::new(data));
                    item.revision += 1;
                    item.date_updated = self.now;
                    self.tx.put_item(&item)?;
                    self.emit_item(EventKind::MapItemUpdated, &map, &item, Some(previous))?;
                    item
                }
                None => {
                    let item = self.new_entry(&map, patch.key, data);
                    self.tx.put_item(&item)?;
                    self.emit_item(EventKind::MapItemAdded, &map, &item, None)?;
                    item
                }
            };
            written.push(Record::from_item(&item)?);
        }
        map.revision += 1;
        map.date_updated = self.now;
        self.tx.put_object(&map)?;
        dataset.sync_count = sync_count;
        dataset.num_records = records;
        dataset.data_storage = bytes;
        dataset.last_modified_by = u.modified_by;
        dataset.date_modified = self.now;
        self.tx.put_dataset(&dataset)?;
        Ok(Outcome::Records { dataset, records: written })
    }

    /// Creates a dataset's Map on its first write (or its first after a deletion). The sync
    /// count and deletion point of a deleted dataset carry over.
    fn create_dataset(
        &mut self,
        pool: &IdentityPool,
        u: &UpdateRecords,
        deleted: Option<Dataset>,
    ) -> Result<(SyncObject, Dataset), CoreError> {
        if u.dataset.len() > 128 {
            return Err(CoreError::invalid("DatasetName", "must be 1 to 128 characters long"));
        }
        let live = self.tx.datasets(&u.identity_id)?.iter().filter(|d| d.exists()).count() as u64;
        if live >= u.limits.max_datasets_per_identity {
            return Err(CoreError::LimitExceeded(format!(
                "Identity '{}' has {live} datasets; the limit is {}",
                u.identity_id, u.limits.max_datasets_per_identity
            )));
        }
        let name = dataset_map_name(&u.identity_id, &u.dataset);
        if self.tx.object(&pool.service_sid, ObjectKind::Map, &ObjectRef::UniqueName(name.clone()))?.is_some() {
            return Err(CoreError::AlreadyExists { what: "map", name });
        }
        let map = SyncObject {
            sid: Sid::new(SidKind::Map),
            service_sid: pool.service_sid.clone(),
            kind: ObjectKind::Map,
            unique_name: Some(name),
            data: None,
            revision: 0,
            next_index: 0,
            date_created: self.now,
            date_updated: self.now,
            date_expires: None,
            created_by: self.actor.name().to_owned(),
        };
        self.tx.put_object(&map)?;
        self.emit_object(EventKind::MapCreated, &map, None, None)?;
        let dataset = Dataset {
            pool_id: pool.id.clone(),
            identity_id: u.identity_id.clone(),
            name: u.dataset.clone(),
            map_sid: Some(map.sid.clone()),
            sync_count: deleted.as_ref().map_or(0, |d| d.sync_count),
            num_records: 0,
            data_storage: 0,
            last_modified_by: u.modified_by.clone(),
            date_created: self.now,
            date_modified: self.now,
            deleted_at_sync_count: deleted.and_then(|d| d.deleted_at_sync_count),
            merged_from: None,
        };
        Ok((map, dataset))
    }

    pub(super) fn remove_dataset(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identity_id: &str,
        name: &str,
    ) -> Result<Outcome, CoreError> {
        let pool = self.pool(service, pool_id)?;
        self.known_identity(&pool, identity_id)?;
        let dataset = self
            .tx
            .dataset(identity_id, name)?
            .filter(|d| d.exists() && d.pool_id == pool.id)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Dataset, name))?;
        self.drop_dataset_map(&dataset)?;
        let deleted = Dataset {
            map_sid: None,
            num_records: 0,
            data_storage: 0,
            date_modified: self.now,
            deleted_at_sync_count: Some(dataset.sync_count),
            ..dataset.clone()
        };
        self.tx.put_dataset(&deleted)?;
        Ok(Outcome::Dataset(dataset))
    }

    // ----- push sync -----------------------------------------------------------------------

    fn push_pool(&mut self, service: &Sid, pool_id: &str) -> Result<IdentityPool, CoreError> {
        let pool = self.pool(service, pool_id)?;
        if !pool.sync.push_enabled() {
            return Err(CoreError::InvalidConfiguration(format!(
                "Push sync is not configured for identity pool {pool_id}"
            )));
        }
        Ok(pool)
    }

    pub(super) fn register_device(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identity_id: &str,
        device_id: String,
        platform: Platform,
        token: String,
    ) -> Result<Outcome, CoreError> {
        let pool = self.push_pool(service, pool_id)?;
        self.known_identity(&pool, identity_id)?;
        if let Some(device) = self.tx.device_by_token(identity_id, platform, &token)? {
            return Ok(Outcome::Device(device));
        }
        let device = Device {
            id: device_id,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            platform,
            token,
            date_created: self.now,
        };
        self.tx.put_device(&device)?;
        Ok(Outcome::Device(device))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_dataset_subscription(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identity_id: &str,
        dataset: &str,
        device_id: &str,
        subscribed: bool,
    ) -> Result<Outcome, CoreError> {
        let pool = self.push_pool(service, pool_id)?;
        self.known_identity(&pool, identity_id)?;
        let device = self
            .tx
            .device(device_id)?
            .filter(|d| d.identity_id == identity_id && d.pool_id == pool.id)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Device, device_id))?;
        if subscribed && self.tx.dataset(identity_id, dataset)?.filter(Dataset::exists).is_none() {
            return Err(CoreError::not_found(NotFoundKind::Dataset, dataset));
        }
        self.tx.set_subscription(identity_id, dataset, device_id, subscribed)?;
        Ok(Outcome::Device(device))
    }
}

fn check_login_count(identity: &CognitoIdentity, max: usize) -> Result<(), CoreError> {
    if identity.logins.len() > max {
        return Err(CoreError::LimitExceeded(format!(
            "Identity '{}' would have {} linked logins; the limit is {max}",
            identity.id,
            identity.logins.len()
        )));
    }
    Ok(())
}
