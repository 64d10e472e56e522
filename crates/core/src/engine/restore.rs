//! Putting exported data back (`ferrosync import`): a service under its own SID, its objects
//! at their revisions and dates, their items and grants. Server credentials only. Every step
//! is idempotent — what is already there as exported is left alone — so an interrupted import
//! is simply run again.

use super::{Engine, ServiceSpec, require_admin, unexpected};
use crate::cognito::{IdentityDump, PoolDump};
use crate::error::CoreError;
use crate::matrix::{MatrixAccountDump, MatrixMedia};
use crate::model::{Item, Service, SyncObject};
use crate::page::{Cursor, Order, PageRequest};
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

    /// The identity pool `service` holds, if it is one's, with its usage count.
    pub async fn pool_dump(
        &self,
        principal: &crate::auth::Principal,
        service: &Service,
    ) -> Result<Option<PoolDump>, CoreError> {
        require_admin(principal)?;
        let Some(pool_id) = &service.unique_name else { return Ok(None) };
        let Some(pool) = self.store.identity_pool(pool_id).await?.filter(|p| p.service_sid == service.sid) else {
            return Ok(None);
        };
        // Sessions counted but not yet flushed belong in the dump too.
        self.flush_usage().await?;
        let sync_sessions = self.store.identity_pool_usage(&pool.id).await?.sync_sessions;
        Ok(Some(PoolDump { pool, sync_sessions }))
    }

    /// Up to `limit` identity ids of a pool after `after`, each with its identity and logins,
    /// dataset rows and devices.
    pub async fn identity_dumps(
        &self,
        principal: &crate::auth::Principal,
        pool_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<IdentityDump>, CoreError> {
        require_admin(principal)?;
        let mut dumps = Vec::new();
        for identity_id in self.store.cognito_identity_ids(pool_id, after, limit).await? {
            dumps.push(IdentityDump {
                identity: self.store.cognito_identity(&identity_id).await?,
                datasets: self.store.datasets(&identity_id).await?,
                devices: self.store.identity_devices(&identity_id).await?,
                identity_id,
            });
        }
        Ok(dumps)
    }

    /// A pool as exported, into its service (restored first); `false` when already here.
    pub async fn restore_identity_pool(
        &self,
        principal: &crate::auth::Principal,
        dump: PoolDump,
    ) -> Result<bool, CoreError> {
        require_admin(principal)?;
        let svc = self.service(principal, dump.pool.service_sid.as_str()).await?;
        let pool_id = dump.pool.id.clone();
        let m = Mutation::RestoreIdentityPool { service: svc.sid.clone(), pool: Box::new(dump.pool) };
        match self.run(&svc, principal, m).await? {
            Outcome::Restored { written } if written > 0 => {
                // Usage is bookkeeping beside the log: counted once, when the pool is new.
                self.store.count_sync_sessions(&[(pool_id, dump.sync_sessions)]).await?;
                Ok(true)
            }
            Outcome::Restored { .. } => Ok(false),
            other => Err(unexpected(other)),
        }
    }

    /// Identities of a pool as exported, after the objects holding their datasets' records;
    /// returns how many identity ids had something new.
    pub async fn restore_identities(
        &self,
        principal: &crate::auth::Principal,
        service: &Sid,
        pool_id: &str,
        identities: Vec<IdentityDump>,
    ) -> Result<u64, CoreError> {
        require_admin(principal)?;
        let svc = self.service(principal, service.as_str()).await?;
        let m =
            Mutation::RestoreCognitoIdentities { service: svc.sid.clone(), pool_id: pool_id.to_owned(), identities };
        match self.run(&svc, principal, m).await? {
            Outcome::Restored { written } => Ok(written),
            other => Err(unexpected(other)),
        }
    }

    /// Up to `limit` Matrix accounts after `after` (a user id), with devices and filters.
    pub async fn matrix_account_dumps(
        &self,
        principal: &crate::auth::Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MatrixAccountDump>, CoreError> {
        require_admin(principal)?;
        let page =
            PageRequest { order: Order::Asc, from: None, after: after.map(|a| Cursor::Key(a.to_owned())), limit };
        let mut users = self.store.matrix_users(&page).await?;
        users.truncate(limit as usize);
        let mut dumps = Vec::with_capacity(users.len());
        for user in users {
            dumps.push(MatrixAccountDump {
                devices: self.store.matrix_devices(&user.user_id).await?,
                filters: self.store.matrix_filters(&user.user_id).await?.into_iter().collect(),
                user,
            });
        }
        Ok(dumps)
    }

    /// Up to `limit` Matrix uploads after `after` (a media id), content included.
    pub async fn matrix_media_dumps(
        &self,
        principal: &crate::auth::Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MatrixMedia>, CoreError> {
        require_admin(principal)?;
        Ok(self.store.matrix_media_after(after, limit).await?)
    }

    /// Matrix accounts as exported; returns how many had something new.
    pub async fn restore_matrix_accounts(
        &self,
        principal: &crate::auth::Principal,
        accounts: Vec<MatrixAccountDump>,
    ) -> Result<u64, CoreError> {
        require_admin(principal)?;
        self.run_restore(principal, Mutation::RestoreMatrixAccounts { accounts }).await
    }

    /// One Matrix upload as exported; `false` when already here.
    pub async fn restore_matrix_media(
        &self,
        principal: &crate::auth::Principal,
        media: MatrixMedia,
    ) -> Result<bool, CoreError> {
        require_admin(principal)?;
        Ok(self.run_restore(principal, Mutation::RestoreMatrixMedia(Box::new(media))).await? > 0)
    }

    /// A restore that belongs to no service (server-wide accounts).
    async fn run_restore(&self, principal: &crate::auth::Principal, m: Mutation) -> Result<u64, CoreError> {
        match self.store.execute(principal.actor(), m).await?.outcome {
            Outcome::Restored { written } => Ok(written),
            other => Err(unexpected(other)),
        }
    }
}
