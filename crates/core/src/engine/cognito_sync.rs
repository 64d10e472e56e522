//! Cognito Sync: datasets and their records, identity usage, push devices and subscriptions.

use super::cognito_pools::{Callers, check_callers, page_after, validate_cognito_id};
use super::*;
use crate::cognito::{
    Dataset, DatasetLimits, Device, IdentityPool, IdentityUsage, PatchOp, Platform, Record, RecordPatch,
    SyncSessionClaims, merged_dataset_name,
};
use crate::store::UpdateRecords;

/// Longest record key and value (the model's `RecordKey`, `RecordValue`).
const MAX_KEY_CHARS: usize = 1024;
const MAX_VALUE_CHARS: usize = 1_048_575;
/// Longest dataset name: 128, or a merged dataset's `<name>.<identityId>`.
const MAX_DATASET_NAME: usize = 128 + 1 + 55;

/// ListRecords' parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRecordsRequest {
    /// Only records changed after this sync count; absent or 0: every record.
    pub last_sync_count: Option<u64>,
    /// Absent: the whole dataset in one page (the iOS SDK reads one page only).
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

/// ListRecords' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsPage {
    /// Tombstones (removed records) included, with no value.
    pub records: Vec<Record>,
    pub next_token: Option<String>,
    /// The records in this page.
    pub count: u64,
    pub dataset_sync_count: u64,
    pub last_modified_by: Option<String>,
    /// Datasets merged into this one's identity that came from a dataset of this name.
    pub merged_dataset_names: Vec<String>,
    pub dataset_exists: bool,
    pub dataset_deleted_after_requested_sync_count: bool,
    /// Binds an UpdateRecords to this identity and dataset.
    pub sync_session_token: String,
}

/// UpdateRecords' parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRecordsRequest {
    pub sync_session_token: String,
    /// The writing device: recorded as LastModifiedBy, and left out of the push targets.
    pub device_id: Option<String>,
    pub patches: Vec<RecordPatch>,
}

/// UpdateRecords' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedRecords {
    /// The records as stored, with the new sync count.
    pub records: Vec<Record>,
    pub dataset_sync_count: u64,
}

fn validate_dataset_name(name: &str) -> Result<(), CoreError> {
    if name.is_empty() || name.len() > MAX_DATASET_NAME {
        return Err(CoreError::invalid("DatasetName", "must be 1 to 128 characters long"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) {
        return Err(CoreError::invalid("DatasetName", format!("'{name}' may hold only A-Z, a-z, 0-9 and _.:-")));
    }
    Ok(())
}

fn validate_device_id(device_id: &str) -> Result<(), CoreError> {
    let n = device_id.chars().count();
    if n == 0 || n > 256 {
        return Err(CoreError::invalid("DeviceId", "must be 1 to 256 characters long"));
    }
    Ok(())
}

fn validate_patches(patches: &[RecordPatch]) -> Result<(), CoreError> {
    let mut keys = std::collections::HashSet::with_capacity(patches.len());
    for patch in patches {
        let n = patch.key.chars().count();
        if n == 0 || n > MAX_KEY_CHARS {
            return Err(CoreError::invalid("Key", format!("must be 1 to {MAX_KEY_CHARS} characters long, got {n}")));
        }
        if !keys.insert(patch.key.as_str()) {
            return Err(CoreError::InvalidParameter(format!("Duplicate key in RecordPatches: {}", patch.key)));
        }
        match (&patch.op, &patch.value) {
            (PatchOp::Replace, None) => {
                return Err(CoreError::InvalidParameter(format!("Value is required to replace {}", patch.key)));
            }
            (PatchOp::Replace, Some(v)) if v.chars().count() > MAX_VALUE_CHARS => {
                return Err(CoreError::invalid("Value", format!("is longer than {MAX_VALUE_CHARS} characters")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The live datasets merged into an identity from its dataset `name`'s namesakes.
fn merged_names(datasets: &[Dataset], name: &str) -> Vec<String> {
    datasets
        .iter()
        .filter(|d| d.exists() && d.merged_from.as_ref().is_some_and(|from| d.name == merged_dataset_name(name, from)))
        .map(|d| d.name.clone())
        .collect()
}

impl Engine {
    /// Checks the ids and the caller, and finds the pool.
    async fn sync_scope(
        &self,
        principal: &Principal,
        callers: Callers,
        pool_id: &str,
        identity_id: &str,
    ) -> Result<IdentityPool, CoreError> {
        validate_cognito_id("IdentityPoolId", pool_id)?;
        validate_cognito_id("IdentityId", identity_id)?;
        check_callers(principal, callers, pool_id, identity_id)?;
        self.pool_by_id(pool_id).await
    }

    fn dataset_limits(&self) -> DatasetLimits {
        let c = &self.limits.cognito;
        DatasetLimits {
            max_datasets_per_identity: c.max_datasets_per_identity,
            max_records: c.max_records_per_dataset,
            max_bytes: c.max_dataset_bytes,
        }
    }

    // ----- datasets ---------------------------------------------------------------------------

    /// ListDatasets: the identity's datasets by name; `max_results` absent: all of them.
    pub async fn datasets(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<Dataset>, CoreError> {
        self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        let limit = match max_results {
            Some(0) => return Err(CoreError::invalid("MaxResults", "must be at least 1")),
            Some(n) => n,
            None => u32::MAX - 1,
        };
        let page = page_after(next_token, limit)?;
        let after = match &page.after {
            Some(Cursor::Key(k)) => Some(k.clone()),
            Some(Cursor::Index(_)) => return Err(CoreError::InvalidPageToken),
            None => None,
        };
        let rows: Vec<Dataset> = self
            .store
            .datasets(identity_id)
            .await?
            .into_iter()
            .filter(|d| d.exists() && d.pool_id == pool_id && after.as_ref().is_none_or(|a| &d.name > a))
            .collect();
        Ok(page.finish(rows, |d| Cursor::Key(d.name.clone())))
    }

    /// DescribeDataset: ResourceNotFound for a dataset that does not exist (or was deleted).
    pub async fn dataset(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
    ) -> Result<Dataset, CoreError> {
        validate_dataset_name(name)?;
        self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        self.store
            .dataset(identity_id, name)
            .await?
            .filter(|d| d.exists() && d.pool_id == pool_id)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Dataset, name))
    }

    /// DeleteDataset: returns the dataset as it was. Later ListRecords report it as not
    /// existing and, to clients that synced it, as deleted after their sync count.
    pub async fn delete_dataset(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
    ) -> Result<Dataset, CoreError> {
        validate_dataset_name(name)?;
        let pool = self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        let m = Mutation::RemoveDataset {
            service: pool.service_sid,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            dataset: name.to_owned(),
        };
        match self.run_cognito(principal.actor(), m).await? {
            Outcome::Dataset(dataset) => Ok(dataset),
            other => Err(unexpected(other)),
        }
    }

    // ----- records ----------------------------------------------------------------------------

    /// ListRecords: the records (tombstones included) changed after `last_sync_count`, by key.
    /// A dataset that does not exist gives no records and `dataset_exists: false`, not an
    /// error. Each call opens a sync session: its token lets UpdateRecords write this dataset.
    pub async fn list_records(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        req: ListRecordsRequest,
    ) -> Result<RecordsPage, CoreError> {
        validate_dataset_name(name)?;
        let pool = self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        let max_records = self.limits.cognito.max_records_per_dataset.max(1024) as u32;
        let limit = match req.max_results {
            Some(0) => return Err(CoreError::invalid("MaxResults", "must be at least 1")),
            Some(n) => n.min(max_records),
            None => u32::MAX - 1,
        };
        let page = page_after(req.next_token.as_deref(), limit)?;
        let last = req.last_sync_count.unwrap_or(0);
        let sync_session_token =
            SyncSessionClaims::new(&pool.id, identity_id, name, Timestamp::now().millis()).seal(&self.secrets);
        self.count_sync_session(&pool.id);

        let datasets = self.store.datasets(identity_id).await?;
        let dataset = datasets.iter().find(|d| d.name == name && d.pool_id == pool.id);
        let live = dataset.filter(|d| d.exists());
        let dataset_sync_count = live.map_or(0, |d| d.sync_count);
        let mut records = Vec::new();
        let mut next_token = None;
        if let Some(map_sid) = live.and_then(|d| d.map_sid.as_ref()) {
            // The dataset's count was read first: records written after it (a higher count)
            // are left for the next pull, so a client that stores this count misses nothing.
            let mut cursor = page.after.clone();
            'scan: loop {
                let batch = PageRequest { order: page.order, from: None, after: cursor.clone(), limit: 1000 };
                let items = self.store.items(map_sid, ObjectKind::Map, &batch).await?;
                let more = items.len() > batch.limit as usize;
                for item in items.iter().take(batch.limit as usize) {
                    cursor = Some(Cursor::Key(item.key.clone().unwrap_or_default()));
                    let record = Record::from_item(item)?;
                    if record.sync_count <= last || record.sync_count > dataset_sync_count {
                        continue;
                    }
                    if records.len() == limit as usize {
                        next_token = records.last().map(|r: &Record| {
                            crate::page::PageToken { order: page.order, after: Cursor::Key(r.key.clone()) }.encode()
                        });
                        break 'scan;
                    }
                    records.push(record);
                }
                if !more {
                    break;
                }
            }
        }
        Ok(RecordsPage {
            count: records.len() as u64,
            records,
            next_token,
            dataset_sync_count,
            last_modified_by: live.map(|d| d.last_modified_by.clone()),
            merged_dataset_names: merged_names(&datasets, name),
            dataset_exists: live.is_some(),
            dataset_deleted_after_requested_sync_count: dataset.is_some_and(|d| d.deleted_after(last)),
            sync_session_token,
        })
    }

    /// UpdateRecords: all patches or none, in one transaction. A patch whose sync count is
    /// below the record's refuses the whole call (ResourceConflict); otherwise the dataset's
    /// sync count goes up by one and every written record takes it. Removes leave tombstones.
    /// The dataset is created on its first write, within the per-identity dataset limit; the
    /// record and size limits count live records, as the Mobile SDKs do.
    pub async fn update_records(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        req: UpdateRecordsRequest,
    ) -> Result<UpdatedRecords, CoreError> {
        let pool = self.check_update(principal, pool_id, identity_id, name, &req).await?;
        if req.patches.is_empty() {
            // Nothing to write: no new sync count, no dataset created.
            let current = self.store.dataset(identity_id, name).await?.filter(|d| d.exists());
            return Ok(UpdatedRecords { records: Vec::new(), dataset_sync_count: current.map_or(0, |d| d.sync_count) });
        }
        let m = Mutation::UpdateRecords(UpdateRecords {
            service: pool.service_sid,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            dataset: name.to_owned(),
            patches: req.patches,
            modified_by: req.device_id.clone().unwrap_or_else(|| identity_id.to_owned()),
            limits: self.dataset_limits(),
        });
        let (dataset, records) = match self.run_cognito(principal.actor(), m).await? {
            Outcome::Records { dataset, records } => (dataset, records),
            other => return Err(unexpected(other)),
        };
        Ok(UpdatedRecords { records, dataset_sync_count: dataset.sync_count })
    }

    /// UpdateRecords' checks, short of the write: the name, the caller, the session token,
    /// the device and the patches.
    async fn check_update(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        req: &UpdateRecordsRequest,
    ) -> Result<IdentityPool, CoreError> {
        validate_dataset_name(name)?;
        let pool = self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        let claims = SyncSessionClaims::open(&self.secrets, &req.sync_session_token)
            .filter(|c| c.pool_id == pool.id && c.identity_id == identity_id && c.dataset == name)
            .ok_or_else(|| CoreError::InvalidParameter("SyncSessionToken not valid for these inputs".into()))?;
        let ttl_ms = self.limits.cognito.sync_session_ttl_secs.saturating_mul(1000) as i64;
        if Timestamp::now().millis() - claims.issued_at > ttl_ms {
            return Err(CoreError::InvalidParameter("SyncSessionToken has expired".into()));
        }
        if let Some(device_id) = &req.device_id {
            validate_device_id(device_id)?;
        }
        validate_patches(&req.patches)?;
        Ok(pool)
    }

    /// What a sync trigger sees before an UpdateRecords: the request checked as
    /// [`Engine::update_records`] checks it (conflicts and limits aside), then every record of
    /// the dataset by key, tombstones included. Opens no session and writes nothing.
    pub async fn records_before_update(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        req: &UpdateRecordsRequest,
    ) -> Result<Vec<Record>, CoreError> {
        let pool = self.check_update(principal, pool_id, identity_id, name, req).await?;
        let dataset = self.store.dataset(identity_id, name).await?.filter(|d| d.exists() && d.pool_id == pool.id);
        let Some(map_sid) = dataset.and_then(|d| d.map_sid) else { return Ok(Vec::new()) };
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            let batch = PageRequest { order: crate::page::Order::Asc, from: None, after: cursor.clone(), limit: 1000 };
            let items = self.store.items(&map_sid, ObjectKind::Map, &batch).await?;
            let more = items.len() > batch.limit as usize;
            for item in items.iter().take(batch.limit as usize) {
                cursor = Some(Cursor::Key(item.key.clone().unwrap_or_default()));
                records.push(Record::from_item(item)?);
            }
            if !more {
                return Ok(records);
            }
        }
    }

    /// Counts a sync session (a ListRecords) in memory: the counts reach the store with the
    /// next [`Engine::flush_usage`], so a usage figure costs no durable write per sync.
    fn count_sync_session(&self, pool_id: &str) {
        let mut pending = self.sync_sessions.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry(pool_id.to_owned()).or_default() += 1;
    }

    /// Writes the sync sessions counted since the last flush (the server does it every second,
    /// and at shutdown; usage reads do it first). Counts that fail to reach the store wait for
    /// the next flush.
    pub async fn flush_usage(&self) -> Result<(), CoreError> {
        let pending: Vec<(String, u64)> = {
            let mut map = self.sync_sessions.lock().unwrap_or_else(|e| e.into_inner());
            map.drain().collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.count_sync_sessions(&pending).await {
            let mut map = self.sync_sessions.lock().unwrap_or_else(|e| e.into_inner());
            for (pool, n) in pending {
                *map.entry(pool).or_default() += n;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Whom a push sync notifies of a change to a dataset: the identity's devices subscribed to
    /// it, except the one that wrote (`writer`, the change's LastModifiedBy).
    pub async fn push_targets(&self, identity_id: &str, dataset: &str, writer: &str) -> Result<Vec<Device>, CoreError> {
        let devices = self.store.dataset_subscribers(identity_id, dataset).await?;
        Ok(devices.into_iter().filter(|d| d.id != writer).collect())
    }

    // ----- usage ------------------------------------------------------------------------------

    /// DescribeIdentityUsage.
    pub async fn identity_usage(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
    ) -> Result<IdentityUsage, CoreError> {
        let pool = self.sync_scope(principal, Callers::DeveloperOrOwnIdentity, pool_id, identity_id).await?;
        let datasets: Vec<Dataset> =
            self.store.datasets(identity_id).await?.into_iter().filter(|d| d.pool_id == pool.id).collect();
        if datasets.is_empty() {
            let known = self.store.cognito_identity(identity_id).await?.is_some_and(|i| i.pool_id == pool.id);
            if !known {
                return Err(CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id));
            }
        }
        let live = datasets.iter().filter(|d| d.exists());
        Ok(IdentityUsage {
            pool_id: pool.id.clone(),
            identity_id: identity_id.to_owned(),
            dataset_count: live.clone().count() as u64,
            data_storage: live.map(|d| d.data_storage).sum(),
            last_modified: datasets.iter().map(|d| d.date_modified).max(),
        })
    }

    // ----- push sync --------------------------------------------------------------------------

    /// RegisterDevice: the identity's device for this platform and token (the same id when
    /// registered again). InvalidConfiguration when the pool has no push sync.
    pub async fn register_device(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        platform: &str,
        token: &str,
    ) -> Result<String, CoreError> {
        let platform = Platform::parse(platform)?;
        let n = token.chars().count();
        if n == 0 || n > 4096 {
            return Err(CoreError::invalid("Token", "must be 1 to 4096 characters long"));
        }
        let pool = self.sync_scope(principal, Callers::OwnIdentity, pool_id, identity_id).await?;
        let m = Mutation::RegisterDevice {
            service: pool.service_sid,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            device_id: uuid::Uuid::new_v4().to_string(),
            platform,
            token: token.to_owned(),
        };
        match self.run_cognito(principal.actor(), m).await? {
            Outcome::Device(device) => Ok(device.id),
            other => Err(unexpected(other)),
        }
    }

    /// SubscribeToDataset: the dataset must exist (sync it once first, as the SDKs advise).
    pub async fn subscribe_to_dataset(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        device_id: &str,
    ) -> Result<(), CoreError> {
        self.set_dataset_subscription(principal, pool_id, identity_id, name, device_id, true).await
    }

    pub async fn unsubscribe_from_dataset(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        device_id: &str,
    ) -> Result<(), CoreError> {
        self.set_dataset_subscription(principal, pool_id, identity_id, name, device_id, false).await
    }

    async fn set_dataset_subscription(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        name: &str,
        device_id: &str,
        subscribed: bool,
    ) -> Result<(), CoreError> {
        validate_dataset_name(name)?;
        validate_device_id(device_id)?;
        let pool = self.sync_scope(principal, Callers::OwnIdentity, pool_id, identity_id).await?;
        let m = Mutation::SetDatasetSubscription {
            service: pool.service_sid,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            dataset: name.to_owned(),
            device_id: device_id.to_owned(),
            subscribed,
        };
        self.run_cognito(principal.actor(), m).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(key: &str, value: Option<&str>, op: PatchOp) -> RecordPatch {
        RecordPatch { op, key: key.into(), value: value.map(str::to_owned), sync_count: 0, device_last_modified: None }
    }

    #[test]
    fn patches_need_unique_keys_and_values_to_replace() {
        assert!(
            validate_patches(&[patch("a", Some("1"), PatchOp::Replace), patch("b", None, PatchOp::Remove)]).is_ok()
        );
        assert!(
            validate_patches(&[patch("a", Some("1"), PatchOp::Replace), patch("a", None, PatchOp::Remove)]).is_err()
        );
        assert!(validate_patches(&[patch("a", None, PatchOp::Replace)]).is_err());
        assert!(validate_patches(&[patch("", Some("1"), PatchOp::Replace)]).is_err());
        assert!(validate_patches(&[patch(&"k".repeat(1025), Some("1"), PatchOp::Replace)]).is_err());
    }

    #[test]
    fn dataset_names_follow_the_model() {
        assert!(validate_dataset_name("settings_1.a:b-c").is_ok());
        assert!(validate_dataset_name("bad name!").is_err());
        assert!(validate_dataset_name("").is_err());
        assert!(validate_dataset_name(&"d".repeat(200)).is_err());
    }
}
