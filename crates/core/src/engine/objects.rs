//! Objects, items, stream messages and permissions.

use super::*;

impl Engine {
    // ----- objects ----------------------------------------------------------------------------

    pub async fn open(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        req: OpenRequest,
    ) -> Result<(SyncObject, bool), CoreError> {
        Ok(self.open_logged(principal, service, kind, req).await?.value)
    }

    /// [`Engine::open`], also telling where the creation event sits in the change log.
    pub async fn open_logged(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        req: OpenRequest,
    ) -> Result<Logged<(SyncObject, bool)>, CoreError> {
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
        self.validate_object_fields(kind, req.ttl, req.data.as_ref())?;
        let m = Mutation::OpenObject {
            service: svc.sid.clone(),
            kind,
            target,
            mode: req.mode,
            ttl: req.ttl,
            data: req.data,
        };
        let logged = self.run_logged(&svc, principal, m).await?;
        match logged.value {
            Outcome::Object { object, created } => Ok(Logged { value: (object, created), seq: logged.seq }),
            other => Err(unexpected(other)),
        }
    }

    /// The fields an open or an update may set: a TTL within bounds, and data only on a
    /// Document, within its size limit.
    fn validate_object_fields(
        &self,
        kind: ObjectKind,
        ttl: Option<u64>,
        data: Option<&Value>,
    ) -> Result<(), CoreError> {
        self.validate_ttl("ttl", ttl)?;
        if let Some(data) = data {
            if kind != ObjectKind::Document {
                return Err(CoreError::invalid("data", format!("a {} has no data of its own", kind.as_str())));
            }
            self.validate_document_data(data)?;
        }
        Ok(())
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
        Ok(self.update_object_logged(principal, service, kind, id, patch).await?.value)
    }

    pub async fn update_object_logged(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        patch: ObjectPatch,
    ) -> Result<Logged<SyncObject>, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.validate_object_fields(kind, patch.ttl, patch.data.as_ref())?;
        let m = Mutation::UpdateObject {
            service: svc.sid.clone(),
            kind,
            target,
            data: patch.data,
            ttl: patch.ttl,
            if_match: patch.if_match,
        };
        let logged = self.run_logged(&svc, principal, m).await?;
        match logged.value {
            Outcome::Object { object, .. } => Ok(Logged { value: object, seq: logged.seq }),
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
            let data = f(current.data.as_deref().unwrap_or(&Value::Null));
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
        self.remove_object_logged(principal, service, kind, id, if_match).await?;
        Ok(())
    }

    pub async fn remove_object_logged(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Logged<()>, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        let m = Mutation::RemoveObject { service: svc.sid.clone(), kind, target, if_match };
        Ok(self.run_logged(&svc, principal, m).await?.map(|_| ()))
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
        Ok(self.add_list_item_logged(principal, service, list, data, ttl, collection_ttl).await?.value)
    }

    pub async fn add_list_item_logged(
        &self,
        principal: &Principal,
        service: &str,
        list: &str,
        data: Value,
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
    ) -> Result<Logged<Item>, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(list, ObjectKind::List)?;
        self.validate_item_data(&data)?;
        self.validate_ttl("ttl", ttl)?;
        self.validate_ttl("collection_ttl", collection_ttl)?;
        let m = Mutation::AddListItem { service: svc.sid.clone(), target, data, ttl, collection_ttl };
        let logged = self.run_logged(&svc, principal, m).await?;
        match logged.value {
            Outcome::Item { item, .. } => Ok(Logged { value: item, seq: logged.seq }),
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
        Ok(self.write_item_logged(principal, service, kind, id, key, patch, mode).await?.value)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn write_item_logged(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        key: ItemKey,
        patch: ItemPatch,
        mode: ItemWriteMode,
    ) -> Result<Logged<(Item, bool)>, CoreError> {
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
        let logged = self.run_logged(&svc, principal, m).await?;
        match logged.value {
            Outcome::Item { item, created } => Ok(Logged { value: (item, created), seq: logged.seq }),
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
        self.remove_item_logged(principal, service, kind, id, key, if_match).await?;
        Ok(())
    }

    pub async fn remove_item_logged(
        &self,
        principal: &Principal,
        service: &str,
        kind: ObjectKind,
        id: &str,
        key: ItemKey,
        if_match: Option<u64>,
    ) -> Result<Logged<()>, CoreError> {
        let svc = self.service(principal, service).await?;
        let target = self.parse_object_ref(id, kind)?;
        self.validate_item_key(kind, &key)?;
        let m = Mutation::RemoveItem { service: svc.sid.clone(), kind, target, key, if_match };
        Ok(self.run_logged(&svc, principal, m).await?.map(|_| ()))
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
        Ok(self.publish_logged(principal, service, stream, data).await?.value)
    }

    pub async fn publish_logged(
        &self,
        principal: &Principal,
        service: &str,
        stream: &str,
        data: Value,
    ) -> Result<Logged<StreamMessage>, CoreError> {
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
        let logged = self.run_logged(&svc, principal, m).await?;
        match logged.value {
            Outcome::Message(msg) => Ok(Logged { value: msg, seq: logged.seq }),
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
}
