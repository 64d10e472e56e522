//! The rules of every mutation, written once against [`TxState`] and run by every store inside
//! its write transaction: check preconditions, write the new state, append the events.

use crate::error::{CoreError, Current, NotFoundKind};
use crate::log::{EventDraft, EventKind};
use crate::model::{Item, ItemKey, ObjectKind, ObjectRef, OpenMode, Permission, Service, StreamMessage, SyncObject};
use crate::sid::Sid;
use crate::store::{Actor, Applied, EventJson, ItemWriteMode, Mutation, Outcome, StoredEvent, TxState, consumers};
use crate::timestamp::Timestamp;
use serde_json::Value;
use std::sync::Arc;

mod batch;
mod cognito;
mod matrix;
mod restore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Write,
    Manage,
}

/// Applies one mutation. On error the caller rolls back everything this call wrote.
pub fn apply(tx: &mut dyn TxState, actor: &Actor, mutation: Mutation, now: Timestamp) -> Result<Applied, CoreError> {
    let mut cx = Cx { tx, actor, now, events: Vec::new(), stored: Vec::new() };
    let outcome = cx.run(mutation)?;
    Ok(Applied { outcome, events: cx.events, stored: cx.stored })
}

/// Whether `actor` holds `right` on `object`. Identities need a grant only when the service has
/// ACLs enabled.
pub fn allowed(service: &Service, actor: &Actor, permission: Option<&Permission>, right: Right) -> bool {
    let Some(_) = &actor.identity else {
        return true;
    };
    if !service.acl_enabled {
        return true;
    }
    permission.is_some_and(|p| match right {
        Right::Read => p.read,
        Right::Write => p.write,
        Right::Manage => p.manage,
    })
}

fn expiry(now: Timestamp, ttl: Option<u64>) -> Option<Option<Timestamp>> {
    // A TTL of 0 clears the expiry, as in Twilio Sync.
    ttl.map(|t| if t == 0 { None } else { Some(now.plus_seconds(t)) })
}

struct Cx<'a> {
    tx: &'a mut dyn TxState,
    actor: &'a Actor,
    now: Timestamp,
    events: Vec<crate::log::Event>,
    stored: Vec<StoredEvent>,
}

impl Cx<'_> {
    fn run(&mut self, mutation: Mutation) -> Result<Outcome, CoreError> {
        match mutation {
            Mutation::CreateService { sid, unique_name, friendly_name, acl_enabled, settings } => {
                if let Some(name) = &unique_name
                    && self.tx.service(&ObjectRef::UniqueName(name.clone()))?.is_some()
                {
                    return Err(CoreError::AlreadyExists { what: "service", name: name.clone() });
                }
                let service = Service {
                    sid,
                    unique_name,
                    friendly_name,
                    acl_enabled,
                    settings,
                    revision: 0,
                    date_created: self.now,
                    date_updated: self.now,
                    head_seq: 0,
                    pruned_seq: 0,
                };
                self.tx.put_service(&service)?;
                if service.settings.webhook_url.is_some() {
                    self.tx.set_log_cursor(consumers::WEBHOOKS, &service.sid, Some(0))?;
                }
                // The Proxy face's records: its relay follows their log from the start.
                if service.unique_name.as_deref() == Some(crate::engine::PROXY_SERVICE) {
                    self.tx.set_log_cursor(consumers::PROXY_RELAY, &service.sid, Some(0))?;
                }
                Ok(Outcome::Service(service))
            }
            Mutation::UpdateService { service, unique_name, friendly_name, acl_enabled, settings } => {
                let mut s = self.service(&service)?;
                if let Some(Some(name)) = &unique_name
                    && let Some(other) = self.tx.service(&ObjectRef::UniqueName(name.clone()))?
                    && other.sid != s.sid
                {
                    return Err(CoreError::AlreadyExists { what: "service", name: name.clone() });
                }
                if let Some(n) = unique_name {
                    s.unique_name = n;
                }
                if let Some(n) = friendly_name {
                    s.friendly_name = n;
                }
                if let Some(acl) = acl_enabled {
                    s.acl_enabled = acl;
                }
                let had_webhook = s.settings.webhook_url.is_some();
                settings.apply(&mut s.settings);
                s.revision += 1;
                s.date_updated = self.now;
                self.tx.put_service(&s)?;
                // Webhooks start at the log's head when a URL is first set (no history is
                // replayed) and stop when it is cleared; a changed URL keeps its place.
                match (had_webhook, s.settings.webhook_url.is_some()) {
                    (false, true) => self.tx.set_log_cursor(consumers::WEBHOOKS, &s.sid, Some(s.head_seq))?,
                    (true, false) => self.tx.set_log_cursor(consumers::WEBHOOKS, &s.sid, None)?,
                    _ => {}
                }
                Ok(Outcome::Service(s))
            }
            Mutation::RemoveService { service } => {
                self.service(&service)?;
                self.tx.delete_service(&service)?;
                Ok(Outcome::Removed)
            }
            Mutation::OpenObject { service, kind, target, mode, ttl, data } => {
                self.open_object(&service, kind, target, mode, ttl, data)
            }
            Mutation::UpdateObject { service, kind, target, data, ttl, if_match } => {
                let svc = self.service(&service)?;
                let mut object = self.object(&service, kind, &target)?;
                self.require(&svc, &object, Right::Write)?;
                let current = || Current::Object(object.clone());
                self.check_write_revision(&svc, &object, if_match, object.revision, current)?;
                // The event carries the data it replaced; moved out, not copied, when replaced.
                let previous = match data {
                    Some(data) if kind == ObjectKind::Document => object.data.replace(Arc::new(data)),
                    _ => object.data.clone(),
                };
                if let Some(exp) = expiry(self.now, ttl) {
                    object.date_expires = exp;
                }
                object.revision += 1;
                object.date_updated = self.now;
                self.emit_updated_object(EventKind::updated(kind), &object, previous)?;
                Ok(Outcome::Object { object, created: false })
            }
            Mutation::RemoveObject { service, kind, target, if_match } => {
                let svc = self.service(&service)?;
                let object = self.object(&service, kind, &target)?;
                self.require(&svc, &object, Right::Manage)?;
                check_revision(if_match, object.revision)?;
                self.remove_object(&object, None)?;
                Ok(Outcome::Removed)
            }
            Mutation::AddListItem { service, target, data, ttl, collection_ttl } => {
                let svc = self.service(&service)?;
                let mut list = self.object(&service, ObjectKind::List, &target)?;
                self.require(&svc, &list, Right::Write)?;
                let item = self.push_item(&mut list, data, ttl, collection_ttl)?;
                Ok(Outcome::Item { item, created: true })
            }
            Mutation::WriteItem { service, kind, target, key, data, ttl, collection_ttl, if_match, mode } => {
                let svc = self.service(&service)?;
                let mut container = self.object(&service, kind, &target)?;
                self.require(&svc, &container, Right::Write)?;
                let existing = self.tx.item(&container.sid, &key)?;
                let (item, created, previous) = match existing {
                    Some(_) if mode == ItemWriteMode::Create => {
                        return Err(CoreError::ItemAlreadyExists { key: key.to_string() });
                    }
                    Some(mut item) => {
                        let current = || Current::Item(item.clone());
                        self.check_write_revision(&svc, &container, if_match, item.revision, current)?;
                        let previous = item.data.clone();
                        if let Some(data) = data {
                            item.data = Arc::new(data);
                        }
                        if let Some(exp) = expiry(self.now, ttl) {
                            item.date_expires = exp;
                        }
                        item.revision += 1;
                        item.date_updated = self.now;
                        (item, false, Some(previous))
                    }
                    None if mode == ItemWriteMode::Update || if_match.is_some() || kind == ObjectKind::List => {
                        return Err(CoreError::not_found(NotFoundKind::Item, key.to_string()));
                    }
                    None => {
                        let ItemKey::Key(k) = &key else {
                            return Err(CoreError::not_found(NotFoundKind::Item, key.to_string()));
                        };
                        let item = Item {
                            object_sid: container.sid.clone(),
                            index: None,
                            key: Some(k.clone()),
                            data: Arc::new(data.unwrap_or_else(|| Value::Object(Default::default()))),
                            revision: 0,
                            date_created: self.now,
                            date_updated: self.now,
                            date_expires: expiry(self.now, ttl).flatten(),
                            created_by: self.actor.name().to_owned(),
                        };
                        (item, true, None)
                    }
                };
                touch_container(self.now, &mut container, collection_ttl);
                self.tx.put_item(&item)?;
                let kind_ev = if created { EventKind::item_added(kind) } else { EventKind::item_updated(kind) };
                self.emit_item_with_container(kind_ev, &container, &item, previous)?;
                Ok(Outcome::Item { item, created })
            }
            Mutation::RemoveItem { service, kind, target, key, if_match } => {
                let svc = self.service(&service)?;
                let mut container = self.object(&service, kind, &target)?;
                self.require(&svc, &container, Right::Write)?;
                let item = self
                    .tx
                    .item(&container.sid, &key)?
                    .ok_or_else(|| CoreError::not_found(NotFoundKind::Item, key.to_string()))?;
                check_revision(if_match, item.revision)?;
                self.tx.delete_item(&container.sid, &key)?;
                touch_container(self.now, &mut container, None);
                self.emit_item_removed(&container, &item, None)?;
                Ok(Outcome::Removed)
            }
            Mutation::RestoreObject { object } => self.restore_object(object),
            Mutation::RestoreItems { object, items, .. } => self.restore_items(&object, items),
            Mutation::Publish { service, target, message_sid, data } => {
                let svc = self.service(&service)?;
                let stream = self.object(&service, ObjectKind::Stream, &target)?;
                self.require(&svc, &stream, Right::Write)?;
                let draft = EventDraft {
                    kind: EventKind::StreamMessagePublished,
                    object_sid: stream.sid.clone(),
                    object_kind: ObjectKind::Stream,
                    unique_name: stream.unique_name.clone(),
                    item_index: None,
                    item_key: None,
                    message_sid: Some(message_sid.clone()),
                    revision: stream.revision,
                    data: Some(Arc::new(data.clone())),
                    previous_data: None,
                    date_expires: None,
                    date: self.now,
                    identity: self.actor.name().to_owned(),
                    reason: None,
                };
                self.append(&stream.service_sid, draft, Written::Nothing)?;
                Ok(Outcome::Message(StreamMessage { sid: message_sid, stream_sid: stream.sid, data }))
            }
            Mutation::SetPermission { service, kind, target, identity, read, write, manage } => {
                let svc = self.service(&service)?;
                let object = self.object(&service, kind, &target)?;
                self.require(&svc, &object, Right::Manage)?;
                let permission = Permission { object_sid: object.sid.clone(), identity, read, write, manage };
                self.tx.put_permission(&permission)?;
                Ok(Outcome::Permission(permission))
            }
            Mutation::RemovePermission { service, kind, target, identity } => {
                let svc = self.service(&service)?;
                let object = self.object(&service, kind, &target)?;
                self.require(&svc, &object, Right::Manage)?;
                if !self.tx.delete_permission(&object.sid, &identity)? {
                    return Err(CoreError::not_found(NotFoundKind::Permission, identity));
                }
                Ok(Outcome::Removed)
            }
            Mutation::Expire { now, limit } => self.expire(now, limit),
            Mutation::Prune { before } => Ok(Outcome::Pruned { events: self.tx.prune_events(before)? }),
            Mutation::PutApiKey(key) => {
                self.tx.put_api_key(&key)?;
                Ok(Outcome::ApiKey)
            }
            Mutation::RenameApiKey { sid, friendly_name } => {
                // Read inside the transaction, so a key deleted meanwhile stays deleted.
                let mut key = self
                    .tx
                    .api_key(&sid)?
                    .ok_or_else(|| CoreError::not_found(NotFoundKind::ApiKey, sid.to_string()))?;
                key.friendly_name = friendly_name;
                self.tx.put_api_key(&key)?;
                Ok(Outcome::ApiKey)
            }
            Mutation::RemoveApiKey { sid } => {
                if !self.tx.delete_api_key(&sid)? {
                    return Err(CoreError::not_found(NotFoundKind::ApiKey, sid.to_string()));
                }
                Ok(Outcome::Removed)
            }
            Mutation::CreateIdentityPool { pool } => self.create_identity_pool(pool),
            Mutation::CreateMatrixUser { user, device } => self.create_matrix_user(user, device),
            Mutation::PutMatrixDevice(device) => self.put_matrix_device(device),
            Mutation::MatrixRoomEvents { service, room_id, create, events, txn, alias } => {
                if let Some(alias) = &alias {
                    self.matrix_alias(&service, alias, Some(&room_id), "", true)?;
                }
                self.matrix_room_events(&service, &room_id, create, events, txn)
            }
            Mutation::Batch { service, writes, txn } => self.batch(&service, writes, txn),
            Mutation::MatrixAlias { service, alias, room_id, user_id } => {
                self.matrix_alias(&service, &alias, room_id.as_deref(), &user_id, false)
            }
            Mutation::RestoreMatrixAccounts { accounts } => self.restore_matrix_accounts(accounts),
            Mutation::RestoreMatrixMedia(media) => self.restore_matrix_media(*media),
            Mutation::PutMatrixMedia(media) => {
                self.tx.put_matrix_media(&media)?;
                Ok(Outcome::Stored)
            }
            Mutation::PutMatrixFilter { user_id, filter_id, filter } => {
                self.put_matrix_filter(&user_id, &filter_id, &filter)
            }
            Mutation::SetMatrixProfile { user_id, display_name, avatar_url } => {
                self.set_matrix_profile(&user_id, display_name, avatar_url)
            }
            Mutation::RenameMatrixDevice { user_id, device_id, display_name } => {
                self.rename_matrix_device(&user_id, &device_id, display_name)
            }
            Mutation::RemoveMatrixDevices { user_id, device_id } => {
                self.remove_matrix_devices(&user_id, device_id.as_deref())
            }
            Mutation::UpdateIdentityPool { service, pool_id, spec } => {
                self.update_identity_pool(&service, &pool_id, spec)
            }
            Mutation::ChangePoolSyncConfig { service, pool_id, change } => {
                self.change_pool_sync_config(&service, &pool_id, change)
            }
            Mutation::StartBulkPublish { service, pool_id, min_interval_secs } => {
                self.start_bulk_publish(&service, &pool_id, min_interval_secs)
            }
            Mutation::FinishBulkPublish { service, pool_id, failure } => {
                self.finish_bulk_publish(&service, &pool_id, failure)
            }
            Mutation::RemoveIdentityPool { service, pool_id } => self.remove_identity_pool(&service, &pool_id),
            Mutation::RestoreIdentityPool { service, pool } => self.restore_identity_pool(&service, *pool),
            Mutation::RestoreCognitoIdentities { service, pool_id, identities } => {
                self.restore_cognito_identities(&service, &pool_id, identities)
            }
            Mutation::ResolveIdentity(r) => self.resolve_identity(r),
            Mutation::MergeDeveloperIdentities {
                service,
                pool_id,
                provider,
                source_user,
                destination_user,
                max_logins,
            } => self.merge_developer_identities(
                &service,
                &pool_id,
                &provider,
                &source_user,
                &destination_user,
                max_logins,
            ),
            Mutation::UnlinkDeveloperIdentity { service, pool_id, identity_id, provider, user } => {
                self.unlink_developer_identity(&service, &pool_id, &identity_id, &provider, &user)
            }
            Mutation::RemoveCognitoIdentity { service, pool_id, identity_id } => {
                self.remove_cognito_identity(&service, &pool_id, &identity_id)
            }
            Mutation::UpdateRecords(u) => self.update_records(u),
            Mutation::RemoveDataset { service, pool_id, identity_id, dataset } => {
                self.remove_dataset(&service, &pool_id, &identity_id, &dataset)
            }
            Mutation::RegisterDevice { service, pool_id, identity_id, device_id, platform, token } => {
                self.register_device(&service, &pool_id, &identity_id, device_id, platform, token)
            }
            Mutation::SetDatasetSubscription { service, pool_id, identity_id, dataset, device_id, subscribed } => {
                self.set_dataset_subscription(&service, &pool_id, &identity_id, &dataset, &device_id, subscribed)
            }
        }
    }

    fn service(&mut self, sid: &Sid) -> Result<Service, CoreError> {
        self.tx
            .service(&ObjectRef::Sid(sid.clone()))?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Service, sid.to_string()))
    }

    fn object(&mut self, service: &Sid, kind: ObjectKind, target: &ObjectRef) -> Result<SyncObject, CoreError> {
        self.tx
            .object(service, kind, target)?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Object(kind), target.to_string()))
    }

    fn require(&mut self, service: &Service, object: &SyncObject, right: Right) -> Result<(), CoreError> {
        let Some(identity) = &self.actor.identity else {
            return Ok(());
        };
        if !service.acl_enabled {
            return Ok(());
        }
        let permission = self.tx.permission(&object.sid, identity)?;
        if allowed(service, self.actor, permission.as_ref(), right) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!(
                "identity '{identity}' has no {right:?} permission on {} {}",
                object.kind.as_str(),
                object.sid
            )))
        }
    }

    /// A write's revision check. A refused write is usually retried: the error carries what
    /// it would have replaced (`current`, built only then), if the actor may read it.
    fn check_write_revision(
        &mut self,
        service: &Service,
        object: &SyncObject,
        if_match: Option<u64>,
        actual: u64,
        current: impl FnOnce() -> Current,
    ) -> Result<(), CoreError> {
        match if_match {
            Some(expected) if expected != actual => {
                let readable = self.require(service, object, Right::Read).is_ok();
                Err(CoreError::revision_mismatch(expected, actual, readable.then(current)))
            }
            _ => Ok(()),
        }
    }

    fn open_object(
        &mut self,
        service: &Sid,
        kind: ObjectKind,
        target: Option<ObjectRef>,
        mode: OpenMode,
        ttl: Option<u64>,
        data: Option<Value>,
    ) -> Result<Outcome, CoreError> {
        let svc = self.service(service)?;
        if let Some(target) = &target {
            if let Some(object) = self.tx.object(service, kind, target)? {
                if mode == OpenMode::CreateNew {
                    return Err(CoreError::AlreadyExists { what: kind.as_str(), name: target.to_string() });
                }
                self.require(&svc, &object, Right::Read)?;
                return Ok(Outcome::Object { object, created: false });
            }
            if mode == OpenMode::OpenExisting {
                return Err(CoreError::not_found(NotFoundKind::Object(kind), target.to_string()));
            }
        } else if mode == OpenMode::OpenExisting {
            return Err(CoreError::invalid("id", "open_existing needs a SID or unique name"));
        }
        let (sid, unique_name) = match target {
            Some(ObjectRef::Sid(sid)) => (sid, None),
            Some(ObjectRef::UniqueName(name)) => (Sid::new(kind.sid_kind()), Some(name)),
            None => (Sid::new(kind.sid_kind()), None),
        };
        let data = match kind {
            ObjectKind::Document => Some(Arc::new(data.unwrap_or_else(|| Value::Object(Default::default())))),
            _ => None,
        };
        let object = SyncObject {
            sid,
            service_sid: service.clone(),
            kind,
            unique_name,
            data,
            revision: 0,
            next_index: 0,
            date_created: self.now,
            date_updated: self.now,
            date_expires: expiry(self.now, ttl).flatten(),
            created_by: self.actor.name().to_owned(),
        };
        self.tx.put_object(&object)?;
        if let (Some(identity), true) = (&self.actor.identity, svc.acl_enabled) {
            // The creator owns what it creates; without this it could not even read it back.
            let grant = Permission {
                object_sid: object.sid.clone(),
                identity: identity.clone(),
                read: true,
                write: true,
                manage: true,
            };
            self.tx.put_permission(&grant)?;
        }
        self.emit_object(EventKind::created(kind), &object, None, None)?;
        Ok(Outcome::Object { object, created: true })
    }

    /// Appends an item to a list, at its next index.
    fn push_item(
        &mut self,
        list: &mut SyncObject,
        data: Value,
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
    ) -> Result<Item, CoreError> {
        let item = Item {
            object_sid: list.sid.clone(),
            index: Some(list.next_index),
            key: None,
            data: Arc::new(data),
            revision: 0,
            date_created: self.now,
            date_updated: self.now,
            date_expires: expiry(self.now, ttl).flatten(),
            created_by: self.actor.name().to_owned(),
        };
        list.next_index += 1;
        touch_container(self.now, list, collection_ttl);
        self.tx.put_item(&item)?;
        self.emit_item_with_container(EventKind::ListItemAdded, list, &item, None)?;
        Ok(item)
    }

    /// A new map entry, written by this mutation's actor now.
    fn new_entry(&self, map: &SyncObject, key: String, data: Value) -> Item {
        Item {
            object_sid: map.sid.clone(),
            index: None,
            key: Some(key),
            data: Arc::new(data),
            revision: 0,
            date_created: self.now,
            date_updated: self.now,
            date_expires: None,
            created_by: self.actor.name().to_owned(),
        }
    }

    /// Creates or replaces a map item, with its event.
    fn put_entry(&mut self, map: &mut SyncObject, key: String, data: Value) -> Result<Item, CoreError> {
        let (item, previous) = match self.tx.item(&map.sid, &ItemKey::Key(key.clone()))? {
            Some(mut item) => {
                let previous = std::mem::replace(&mut item.data, Arc::new(data));
                item.revision += 1;
                item.date_updated = self.now;
                (item, Some(previous))
            }
            None => (self.new_entry(map, key, data), None),
        };
        touch_container(self.now, map, None);
        self.tx.put_item(&item)?;
        let kind = if previous.is_some() { EventKind::MapItemUpdated } else { EventKind::MapItemAdded };
        self.emit_item_with_container(kind, map, &item, previous)?;
        Ok(item)
    }

    fn remove_object(&mut self, object: &SyncObject, reason: Option<&str>) -> Result<(), CoreError> {
        self.tx.delete_object(&object.sid)?;
        self.emit_object(EventKind::removed(object.kind), object, None, reason)?;
        // The removal event carries no data; previous data is of no use once the object is gone.
        Ok(())
    }

    fn expire(&mut self, now: Timestamp, limit: u32) -> Result<Outcome, CoreError> {
        let mut removed = 0;
        for object in self.tx.expired_objects(now, limit)? {
            self.remove_object(&object, Some("expired"))?;
            removed += 1;
        }
        for item in self.tx.expired_items(now, limit)? {
            let key = item.item_key();
            let kind = if item.index.is_some() { ObjectKind::List } else { ObjectKind::Map };
            let Some(mut container) = self.tx.object_by_sid(&item.object_sid)? else {
                continue;
            };
            debug_assert_eq!(container.kind, kind);
            self.tx.delete_item(&item.object_sid, &key)?;
            touch_container(self.now, &mut container, None);
            self.emit_item_removed(&container, &item, Some("expired"))?;
            removed += 1;
        }
        Ok(Outcome::Expired { removed })
    }

    /// Appends `draft` to `service`'s log, and writes what `written` names in one step with it.
    fn append(&mut self, service: &Sid, draft: EventDraft, written: Written<'_>) -> Result<(), CoreError> {
        let seq = self.tx.next_seq(service)?;
        let event = draft.into_event(self.tx.epoch(), service.clone(), seq);
        let (json, data) = EventJson::of_marking_data(&event);
        match written {
            Written::Object(object) => {
                let data = data.and_then(|at| json.get().get(at));
                self.tx.put_object_with_event(object, seq, event.date, json.get(), data)?
            }
            Written::Container(container) => {
                self.tx.put_object_with_event(container, seq, event.date, json.get(), None)?
            }
            Written::Nothing => self.tx.insert_event(service, seq, &event.object_sid, event.date, json.get())?,
        }
        self.stored.push(StoredEvent { seq, object_sid: event.object_sid.clone(), json });
        self.events.push(event);
        Ok(())
    }

    /// Appends the event of a change to `object` that is already stored (a creation, a removal).
    fn emit_object(
        &mut self,
        kind: EventKind,
        object: &SyncObject,
        previous: Option<Arc<Value>>,
        reason: Option<&str>,
    ) -> Result<(), CoreError> {
        self.object_event(kind, object, previous, reason, false)
    }

    /// Writes `object` and appends the event of its change, in one step.
    fn emit_updated_object(
        &mut self,
        kind: EventKind,
        object: &SyncObject,
        previous: Option<Arc<Value>>,
    ) -> Result<(), CoreError> {
        self.object_event(kind, object, previous, None, true)
    }

    fn object_event(
        &mut self,
        kind: EventKind,
        object: &SyncObject,
        previous: Option<Arc<Value>>,
        reason: Option<&str>,
        store: bool,
    ) -> Result<(), CoreError> {
        let removed = matches!(
            kind,
            EventKind::DocumentRemoved | EventKind::ListRemoved | EventKind::MapRemoved | EventKind::StreamRemoved
        );
        let draft = EventDraft {
            kind,
            object_sid: object.sid.clone(),
            object_kind: object.kind,
            unique_name: object.unique_name.clone(),
            item_index: None,
            item_key: None,
            message_sid: None,
            revision: object.revision,
            data: if removed { None } else { object.data.clone() },
            previous_data: previous,
            date_expires: object.date_expires,
            date: self.now,
            identity: self.actor.name().to_owned(),
            reason: reason.map(str::to_owned),
        };
        let written = match (store, removed) {
            (false, _) => Written::Nothing,
            (true, false) => Written::Object(object),
            // A removal's event has no data: the row's is not in it.
            (true, true) => Written::Container(object),
        };
        self.append(&object.service_sid, draft, written)
    }

    /// Appends an item's event; its container is written apart (or not changed).
    fn emit_item(
        &mut self,
        kind: EventKind,
        container: &SyncObject,
        item: &Item,
        previous: Option<Arc<Value>>,
    ) -> Result<(), CoreError> {
        let draft = self.item_draft(kind, container, item, previous);
        self.append(&container.service_sid, draft, Written::Nothing)
    }

    /// Writes `container` (just touched by the item's change) and appends the item's event, in
    /// one step.
    fn emit_item_with_container(
        &mut self,
        kind: EventKind,
        container: &SyncObject,
        item: &Item,
        previous: Option<Arc<Value>>,
    ) -> Result<(), CoreError> {
        let draft = self.item_draft(kind, container, item, previous);
        self.append(&container.service_sid, draft, Written::Container(container))
    }

    fn item_draft(
        &self,
        kind: EventKind,
        container: &SyncObject,
        item: &Item,
        previous: Option<Arc<Value>>,
    ) -> EventDraft {
        EventDraft {
            kind,
            object_sid: container.sid.clone(),
            object_kind: container.kind,
            unique_name: container.unique_name.clone(),
            item_index: item.index,
            item_key: item.key.clone(),
            message_sid: None,
            revision: item.revision,
            data: Some(item.data.clone()),
            previous_data: previous,
            date_expires: item.date_expires,
            date: self.now,
            identity: self.actor.name().to_owned(),
            reason: None,
        }
    }

    /// Writes `container` (just touched by the removal) and appends the item's removal event,
    /// in one step.
    fn emit_item_removed(
        &mut self,
        container: &SyncObject,
        item: &Item,
        reason: Option<&str>,
    ) -> Result<(), CoreError> {
        let draft = EventDraft {
            kind: EventKind::item_removed(container.kind),
            object_sid: container.sid.clone(),
            object_kind: container.kind,
            unique_name: container.unique_name.clone(),
            item_index: item.index,
            item_key: item.key.clone(),
            message_sid: None,
            revision: item.revision,
            data: None,
            previous_data: Some(item.data.clone()),
            date_expires: None,
            date: self.now,
            identity: self.actor.name().to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.append(&container.service_sid, draft, Written::Container(container))
    }
}

/// What an appended event's change writes in one step with the event.
enum Written<'a> {
    /// Nothing: what changed was written apart, or nothing was.
    Nothing,
    /// The object the event is about, whose data is the event's.
    Object(&'a SyncObject),
    /// An object's row whose data the event does not carry: an item's container (the event
    /// carries the item's), or an object removed.
    Container(&'a SyncObject),
}

/// Item writes bump the container's revision and may extend its TTL (`collection_ttl`); the
/// container is written with the item's event.
fn touch_container(now: Timestamp, container: &mut SyncObject, collection_ttl: Option<u64>) {
    if let Some(exp) = expiry(now, collection_ttl) {
        container.date_expires = exp;
    }
    container.revision += 1;
    container.date_updated = now;
}

fn check_revision(if_match: Option<u64>, actual: u64) -> Result<(), CoreError> {
    match if_match {
        Some(expected) if expected != actual => Err(CoreError::revision_mismatch(expected, actual, None)),
        _ => Ok(()),
    }
}
