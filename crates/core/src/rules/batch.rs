//! Several writes to a service's named Maps and Lists in one transaction, all or none: the
//! faces that keep their records as objects (Matrix keys and to-device queues) use it.

use super::Cx;
use crate::error::{CoreError, NotFoundKind};
use crate::model::{ItemKey, ObjectKind, ObjectRef, OpenMode, SyncObject};
use crate::sid::Sid;
use crate::store::{ObjectWrite, Outcome, StoreError};

impl Cx<'_> {
    /// A Map or List of a service by unique name, made when `create`.
    pub(super) fn named_object(
        &mut self,
        service: &Sid,
        kind: ObjectKind,
        name: String,
        create: bool,
    ) -> Result<Option<SyncObject>, CoreError> {
        let target = ObjectRef::UniqueName(name);
        if let Some(object) = self.tx.object(service, kind, &target)? {
            return Ok(Some(object));
        }
        if !create {
            return Ok(None);
        }
        match self.open_object(service, kind, Some(target), OpenMode::CreateNew, None, None)? {
            Outcome::Object { object, .. } => Ok(Some(object)),
            _ => Err(CoreError::Store(StoreError::Backend("opening an object answered something else".into()))),
        }
    }

    pub(super) fn batch(
        &mut self,
        service: &Sid,
        writes: Vec<ObjectWrite>,
        txn: Option<(String, String)>,
    ) -> Result<Outcome, CoreError> {
        self.service(service)?;
        if let Some((map, key)) = &txn
            && let Some(txns) = self.named_object(service, ObjectKind::Map, map.clone(), false)?
            && self.tx.item(&txns.sid, &ItemKey::Key(key.clone()))?.is_some()
        {
            return Ok(Outcome::Stored);
        }
        let broken = || CoreError::Store(StoreError::Backend("an object of the batch could not be made".into()));
        for write in writes {
            match write {
                ObjectWrite::Put { map, key, data } => {
                    let mut object = self.named_object(service, ObjectKind::Map, map, true)?.ok_or_else(broken)?;
                    self.put_entry(&mut object, key, data)?;
                }
                ObjectWrite::Create { map, key, data } => {
                    let mut object = self.named_object(service, ObjectKind::Map, map, true)?.ok_or_else(broken)?;
                    if self.tx.item(&object.sid, &ItemKey::Key(key.clone()))?.is_some() {
                        return Err(CoreError::AlreadyExists { what: "entry", name: key });
                    }
                    self.put_entry(&mut object, key, data)?;
                }
                ObjectWrite::Replace { map, key, data, revision } => {
                    let gone = || CoreError::not_found(NotFoundKind::Item, key.clone());
                    let mut object = self.named_object(service, ObjectKind::Map, map, false)?.ok_or_else(gone)?;
                    let current = self.tx.item(&object.sid, &ItemKey::Key(key.clone()))?.ok_or_else(gone)?;
                    if current.revision != revision {
                        return Err(CoreError::revision_mismatch(revision, current.revision, None));
                    }
                    self.put_entry(&mut object, key, data)?;
                }
                ObjectWrite::Append { list, data, ttl } => {
                    let mut object = self.named_object(service, ObjectKind::List, list, true)?.ok_or_else(broken)?;
                    self.push_item(&mut object, data, ttl, None)?;
                }
                ObjectWrite::Remove { map, key } => {
                    let gone = || CoreError::not_found(NotFoundKind::Item, key.clone());
                    let mut object = self.named_object(service, ObjectKind::Map, map, false)?.ok_or_else(gone)?;
                    let item_key = ItemKey::Key(key.clone());
                    let item = self.tx.item(&object.sid, &item_key)?.ok_or_else(gone)?;
                    self.tx.delete_item(&object.sid, &item_key)?;
                    super::touch_container(self.now, &mut object, None);
                    self.emit_item_removed(&object, &item, None)?;
                }
            }
        }
        if let Some((map, key)) = txn {
            let mut txns = self.named_object(service, ObjectKind::Map, map, true)?.ok_or_else(broken)?;
            self.put_entry(&mut txns, key, serde_json::json!({}))?;
        }
        Ok(Outcome::Stored)
    }
}
