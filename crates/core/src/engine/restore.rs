//! Putting exported data back (`ferrosync import`): a service under its own SID, its objects
//! at their revisions and dates, their items and grants. Server credentials only. Every step
//! is idempotent — what is already there as exported is left alone — so an interrupted import
//! is simply run again.

use super::{Engine, ServiceSpec, require_admin, unexpected};
use crate::error::CoreError;
use crate::model::{Item, Service, SyncObject};
use crate::sid::Sid;
use crate::store::{Mutation, Outcome};

impl Engine {
    /// The service as exported; `false` when one with its SID is already here.
    pub async fn restore_service(
        &self,
        principal: &crate::auth::Principal,
        service: &Service,
    ) -> Result<bool, CoreError> {
        require_admin(principal)?;
        if self.service(principal, service.sid.as_str()).await.is_ok() {
            return Ok(false);
        }
        let spec = ServiceSpec {
            unique_name: service.unique_name.clone(),
            friendly_name: service.friendly_name.clone(),
            acl_enabled: service.acl_enabled,
            settings: service.settings.clone(),
        };
        self.create_service_as(principal, service.sid.clone(), spec).await?;
        Ok(true)
    }

    /// One object as exported (its SID, revision, dates and a list's next index); `false` when
    /// it is already here at that revision.
    pub async fn restore_object(
        &self,
        principal: &crate::auth::Principal,
        object: SyncObject,
    ) -> Result<bool, CoreError> {
        require_admin(principal)?;
        let svc = self.service(principal, object.service_sid.as_str()).await?;
        if let Some(data) = &object.data {
            self.validate_document_data(data)?;
        }
        match self.run(&svc, principal, Mutation::RestoreObject { object }).await? {
            Outcome::Restored { written } => Ok(written > 0),
            other => Err(unexpected(other)),
        }
    }

    /// Items of one object as exported; returns how many were new.
    pub async fn restore_items(
        &self,
        principal: &crate::auth::Principal,
        service: &Sid,
        object: &Sid,
        items: Vec<Item>,
    ) -> Result<u64, CoreError> {
        require_admin(principal)?;
        let svc = self.service(principal, service.as_str()).await?;
        for item in &items {
            self.validate_item_data(&item.data)?;
        }
        match self
            .run(&svc, principal, Mutation::RestoreItems { service: svc.sid.clone(), object: object.clone(), items })
            .await?
        {
            Outcome::Restored { written } => Ok(written),
            other => Err(unexpected(other)),
        }
    }
}
