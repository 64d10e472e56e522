//! The rules of restores (`ferrosync import`): exported data put back as it was — SIDs,
//! revisions, dates, sync counts. Server credentials only. Each is idempotent: what is already
//! there as exported is left alone, and anything there in another state is refused, so an
//! interrupted import is simply run again.

use super::Cx;
use crate::cognito::{IdentityDump, IdentityPool};
use crate::error::{CoreError, NotFoundKind};
use crate::log::EventKind;
use crate::matrix::{MatrixAccountDump, MatrixMedia};
use crate::model::{Item, ItemKey, ObjectKind, ObjectRef, SyncObject};
use crate::sid::Sid;
use crate::store::Outcome;

impl Cx<'_> {
    /// Restores belong to server credentials only: they set revisions and dates at will.
    fn require_server(&self) -> Result<(), CoreError> {
        match &self.actor.identity {
            None => Ok(()),
            Some(_) => Err(CoreError::Forbidden("restoring exported data needs server credentials".into())),
        }
    }

    pub(super) fn restore_object(&mut self, object: SyncObject) -> Result<Outcome, CoreError> {
        self.require_server()?;
        let svc = self.service(&object.service_sid)?;
        if let Some(existing) = self.tx.object_by_sid(&object.sid)? {
            if existing.kind == object.kind && existing.revision == object.revision && existing.service_sid == svc.sid {
                return Ok(Outcome::Restored { written: 0 });
            }
            return Err(CoreError::AlreadyExists {
                what: "object",
                name: format!("{} (at another revision)", object.sid),
            });
        }
        if let Some(name) = &object.unique_name
            && self.tx.object(&svc.sid, object.kind, &ObjectRef::UniqueName(name.clone()))?.is_some()
        {
            return Err(CoreError::AlreadyExists { what: object.kind.as_str(), name: name.clone() });
        }
        self.tx.put_object(&object)?;
        self.emit_object(EventKind::created(object.kind), &object, None, None)?;
        Ok(Outcome::Restored { written: 1 })
    }

    pub(super) fn restore_items(&mut self, object: &Sid, items: Vec<Item>) -> Result<Outcome, CoreError> {
        self.require_server()?;
        let container = self
            .tx
            .object_by_sid(object)?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Object(ObjectKind::Map), object.to_string()))?;
        let mut written = 0;
        for item in items {
            if item.object_sid != container.sid {
                return Err(CoreError::invalid(
                    "items",
                    format!("an item of {} among {}'s", item.object_sid, container.sid),
                ));
            }
            let key = item.item_key();
            if let (ObjectKind::List, ItemKey::Index(i)) = (container.kind, &key)
                && *i >= container.next_index
            {
                return Err(CoreError::invalid(
                    "items",
                    format!("index {i} is past the list's next index {}", container.next_index),
                ));
            }
            match self.tx.item(&container.sid, &key)? {
                Some(e) if e.revision == item.revision => continue,
                Some(_) => {
                    return Err(CoreError::AlreadyExists {
                        what: "item",
                        name: format!("{key} (at another revision)"),
                    });
                }
                None => {}
            }
            self.tx.put_item(&item)?;
            self.emit_item(EventKind::item_added(container.kind), &container, &item, None)?;
            written += 1;
        }
        Ok(Outcome::Restored { written })
    }

    pub(super) fn restore_identity_pool(&mut self, service: &Sid, pool: IdentityPool) -> Result<Outcome, CoreError> {
        self.require_server()?;
        let svc = self.service(service)?;
        if pool.service_sid != svc.sid || svc.unique_name.as_deref() != Some(pool.id.as_str()) {
            return Err(CoreError::invalid(
                "pool",
                format!("pool {} belongs in the service named after it, not in {}", pool.id, svc.sid),
            ));
        }
        match self.tx.identity_pool(&pool.id)? {
            Some(existing) if existing.service_sid == svc.sid && existing.date_created == pool.date_created => {
                Ok(Outcome::Restored { written: 0 })
            }
            Some(_) => Err(CoreError::AlreadyExists { what: "identity pool", name: pool.id }),
            None => {
                self.tx.put_identity_pool(&pool)?;
                Ok(Outcome::Restored { written: 1 })
            }
        }
    }

    /// Returns how many identity ids had something new written.
    pub(super) fn restore_cognito_identities(
        &mut self,
        service: &Sid,
        pool_id: &str,
        identities: Vec<IdentityDump>,
    ) -> Result<Outcome, CoreError> {
        self.require_server()?;
        self.service(service)?;
        let pool = self
            .tx
            .identity_pool(pool_id)?
            .filter(|p| &p.service_sid == service)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::IdentityPool, pool_id))?;
        let mut written = 0;
        for dump in identities {
            let mut wrote = false;
            let foreign =
                |what: &str| CoreError::invalid("identities", format!("{what} of another pool among {}'s", pool.id));
            if let Some(identity) = dump.identity {
                if identity.id != dump.identity_id || identity.pool_id != pool.id {
                    return Err(foreign(&format!("identity {}", identity.id)));
                }
                match self.tx.cognito_identity(&identity.id)? {
                    Some(e) if e.pool_id == pool.id && e.date_created == identity.date_created => {}
                    Some(_) => {
                        return Err(CoreError::AlreadyExists { what: "identity", name: identity.id });
                    }
                    None => {
                        for login in &identity.logins {
                            if let Some(owner) = self.tx.login_owner(&pool.id, login)? {
                                return Err(CoreError::AlreadyExists {
                                    what: "login",
                                    name: format!("{}:{} (linked to {owner})", login.provider, login.user),
                                });
                            }
                        }
                        self.tx.put_cognito_identity(&identity)?;
                        for login in &identity.logins {
                            self.tx.put_login(&pool.id, login, &identity.id)?;
                        }
                        wrote = true;
                    }
                }
            }
            for dataset in dump.datasets {
                if dataset.identity_id != dump.identity_id || dataset.pool_id != pool.id {
                    return Err(foreign(&format!("dataset {}", dataset.name)));
                }
                match self.tx.dataset(&dataset.identity_id, &dataset.name)? {
                    Some(e) if e.sync_count == dataset.sync_count && e.date_created == dataset.date_created => continue,
                    Some(_) => {
                        return Err(CoreError::AlreadyExists {
                            what: "dataset",
                            name: format!("{} (at another sync count)", dataset.name),
                        });
                    }
                    None => {}
                }
                if let Some(map) = &dataset.map_sid {
                    let held = self
                        .tx
                        .object_by_sid(map)?
                        .is_some_and(|o| &o.service_sid == service && o.kind == ObjectKind::Map);
                    if !held {
                        return Err(CoreError::invalid(
                            "datasets",
                            format!(
                                "the records of dataset {} (map {map}) are not here: the dump's objects come first",
                                dataset.name
                            ),
                        ));
                    }
                }
                self.tx.put_dataset(&dataset)?;
                wrote = true;
            }
            for d in dump.devices {
                let device = d.device;
                if device.identity_id != dump.identity_id || device.pool_id != pool.id {
                    return Err(foreign(&format!("device {}", device.id)));
                }
                match self.tx.device(&device.id)? {
                    Some(e) if e == device => {}
                    Some(_) => return Err(CoreError::AlreadyExists { what: "device", name: device.id }),
                    None => {
                        if self.tx.device_by_token(&device.identity_id, device.platform, &device.token)?.is_some() {
                            return Err(CoreError::AlreadyExists {
                                what: "device",
                                name: format!("{} (its token is registered under another id)", device.id),
                            });
                        }
                        self.tx.put_device(&device)?;
                        wrote = true;
                    }
                }
                for dataset in d.subscriptions {
                    // Idempotent in the store: subscribing twice keeps one row.
                    self.tx.set_subscription(&device.identity_id, &dataset, &device.id, true)?;
                }
            }
            written += u64::from(wrote);
        }
        Ok(Outcome::Restored { written })
    }

    /// Returns how many accounts had something new written.
    pub(super) fn restore_matrix_accounts(&mut self, accounts: Vec<MatrixAccountDump>) -> Result<Outcome, CoreError> {
        self.require_server()?;
        let mut written = 0;
        for account in accounts {
            let user = &account.user;
            let mut wrote = false;
            match self.tx.matrix_user(&user.user_id)? {
                Some(e) if e.date_created == user.date_created => {}
                Some(_) => return Err(CoreError::AlreadyExists { what: "Matrix user", name: user.user_id.clone() }),
                None => {
                    self.tx.put_matrix_user(user)?;
                    wrote = true;
                }
            }
            for device in &account.devices {
                if device.user_id != user.user_id {
                    return Err(CoreError::invalid(
                        "devices",
                        format!("device {} of {} among {}'s", device.device_id, device.user_id, user.user_id),
                    ));
                }
                if self.tx.matrix_device(&user.user_id, &device.device_id)?.is_none() {
                    self.tx.put_matrix_device(device)?;
                    wrote = true;
                }
            }
            for (id, filter) in &account.filters {
                match self.tx.matrix_filter(&user.user_id, id)? {
                    Some(f) if f == *filter => {}
                    Some(_) => {
                        return Err(CoreError::AlreadyExists {
                            what: "Matrix filter",
                            name: format!("{id} of {} (another filter)", user.user_id),
                        });
                    }
                    None => {
                        self.tx.put_matrix_filter(&user.user_id, id, filter)?;
                        wrote = true;
                    }
                }
            }
            written += u64::from(wrote);
        }
        Ok(Outcome::Restored { written })
    }

    pub(super) fn restore_matrix_media(&mut self, media: MatrixMedia) -> Result<Outcome, CoreError> {
        self.require_server()?;
        match self.tx.matrix_media(&media.media_id)? {
            Some(e) if e == media => Ok(Outcome::Restored { written: 0 }),
            Some(_) => Err(CoreError::AlreadyExists { what: "Matrix media", name: media.media_id }),
            None => {
                self.tx.put_matrix_media(&media)?;
                Ok(Outcome::Restored { written: 1 })
            }
        }
    }
}
