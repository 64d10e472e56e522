//! The records faces keep as objects of their own services (Matrix's `matrix`, Proxy's
//! `proxy`), read as the system: a missing Map or List reads as empty.

use super::Engine;
use crate::auth::Principal;
use crate::error::CoreError;
use crate::model::{Item, ItemKey, ObjectKind};
use crate::page::{Cursor, Order, Page, PageRequest};

impl Engine {
    /// One entry of a Map of `service`, with its revision.
    pub(crate) async fn system_entry(&self, service: &str, map: &str, key: &str) -> Result<Option<Item>, CoreError> {
        // The system reads past every permission, so the Map itself is not needed: the entry
        // is read through its name at once (a round trip fewer on PostgreSQL).
        let svc = match self.service(&Principal::Root, service).await {
            Ok(svc) => svc,
            Err(CoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let r = self.parse_object_ref(map, ObjectKind::Map)?;
        Ok(self.store.named_item(&svc.sid, ObjectKind::Map, &r, &ItemKey::Key(key.to_owned())).await?)
    }

    /// A page of a Map or List of `service`.
    pub(crate) async fn system_page(
        &self,
        service: &str,
        kind: ObjectKind,
        name: &str,
        page: PageRequest,
    ) -> Result<Page<Item>, CoreError> {
        match self.items(&Principal::Root, service, kind, name, page).await {
            Ok(got) => Ok(got),
            Err(CoreError::NotFound { .. }) => Ok(Page { items: Vec::new(), next: None }),
            Err(e) => Err(e),
        }
    }

    /// Every item of a Map or List of `service`, in order.
    pub(crate) async fn system_items(
        &self,
        service: &str,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Vec<Item>, CoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = PageRequest { order: Order::Asc, from: None, after: after.take(), limit: 1000 };
            let got = self.system_page(service, kind, name, page).await?;
            let last = got.items.last().map(|i| match (&i.key, i.index) {
                (Some(k), _) => Cursor::Key(k.clone()),
                (None, idx) => Cursor::Index(idx.unwrap_or_default()),
            });
            out.extend(got.items);
            match (got.next, last) {
                (Some(_), Some(last)) => after = Some(last),
                _ => return Ok(out),
            }
        }
    }
}
