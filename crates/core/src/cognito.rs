//! Cognito Identity and Cognito Sync on Ferrosync's model.
//!
//! An identity pool owns one service (its unique name is the pool id). A dataset is a Map in
//! that service owned by one identity, named [`dataset_map_name`]; its records are the Map's
//! items, keyed by record key, whose data is a [`RecordData`]. Every record change is an
//! ordinary map item event in the service's change log, so the native WebSocket can watch a
//! dataset. Dataset metadata (sync count, dates, deletion point, merge origin) lives in its own
//! table, written in the same transaction as the items.

use crate::error::CoreError;
use crate::model::Item;
use crate::sid::Sid;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod tokens;
pub use tokens::{
    IdentitySessionClaims, Jwk, Jwks, OpenIdClaims, OpenIdSigner, SyncSessionClaims, new_access_key_id, new_secret_key,
};

/// The login provider name under which Cognito's own OpenID tokens are presented (the
/// developer-authenticated "enhanced flow": GetCredentialsForIdentity with the token that
/// GetOpenIdTokenForDeveloperIdentity returned).
pub const COGNITO_PROVIDER: &str = "cognito-identity.amazonaws.com";

/// The only Cognito event the API documents.
pub const SYNC_TRIGGER_EVENT: &str = "SyncTrigger";

/// The Map that holds a dataset: identity ids contain no `/`, so names cannot collide.
pub fn dataset_map_name(identity_id: &str, dataset: &str) -> String {
    format!("{identity_id}/{dataset}")
}

/// The name a merged identity's dataset takes under the identity that absorbed it, the
/// convention the Mobile SDKs use locally (`<datasetName>.<oldIdentityId>`).
pub fn merged_dataset_name(dataset: &str, old_identity_id: &str) -> String {
    format!("{dataset}.{old_identity_id}")
}

/// What a pool is configured with: every field of the model's `IdentityPool` but its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityPoolSpec {
    pub name: String,
    pub allow_unauthenticated_identities: bool,
    pub allow_classic_flow: Option<bool>,
    /// Provider name (e.g. `graph.facebook.com`) → the application id at that provider.
    pub supported_login_providers: BTreeMap<String, String>,
    /// Set once, never changed (as AWS).
    pub developer_provider_name: Option<String>,
    pub open_id_connect_provider_arns: Vec<String>,
    pub cognito_identity_providers: Vec<CognitoIdentityProvider>,
    pub saml_provider_arns: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl IdentityPoolSpec {
    /// Whether logins from `provider` may be linked to this pool's identities: a supported
    /// public provider, an OpenID Connect or SAML provider (named by the last part of its
    /// ARN), or a Cognito user pool.
    pub fn accepts_provider(&self, provider: &str) -> bool {
        let arn_names = |arns: &[String]| {
            arns.iter().any(|arn| arn.rsplit_once('/').map(|(_, name)| name) == Some(provider) || arn == provider)
        };
        self.supported_login_providers.contains_key(provider)
            || arn_names(&self.open_id_connect_provider_arns)
            || arn_names(&self.saml_provider_arns)
            || self.cognito_identity_providers.iter().any(|p| p.provider_name == provider)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CognitoIdentityProvider {
    pub provider_name: String,
    pub client_id: String,
    pub server_side_token_check: bool,
}

/// An identity pool: its Cognito Identity settings and its Cognito Sync configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityPool {
    /// `<region>:<uuid>`.
    pub id: String,
    /// The service that holds the pool's datasets.
    pub service_sid: Sid,
    pub spec: IdentityPoolSpec,
    pub sync: PoolSyncConfig,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// The Cognito Sync side of a pool, stored as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolSyncConfig {
    pub push_sync: Option<PushSync>,
    pub cognito_streams: Option<CognitoStreams>,
    /// Event type (only `SyncTrigger`) → the function or URL it calls; at most one entry.
    pub events: BTreeMap<String, String>,
    pub bulk_publish: BulkPublish,
}

impl PoolSyncConfig {
    /// Push sync is configured once the pool names at least one platform application.
    pub fn push_enabled(&self) -> bool {
        self.push_sync.as_ref().is_some_and(|p| !p.application_arns.is_empty())
    }

    /// Every synchronization is published while streaming is enabled on a named stream.
    pub fn streams_enabled(&self) -> bool {
        self.cognito_streams
            .as_ref()
            .is_some_and(|s| s.streaming_status == StreamingStatus::Enabled && s.stream_name.is_some())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushSync {
    pub application_arns: Vec<String>,
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CognitoStreams {
    pub stream_name: Option<String>,
    pub role_arn: Option<String>,
    pub streaming_status: StreamingStatus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamingStatus {
    Enabled,
    #[default]
    Disabled,
}

impl StreamingStatus {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "ENABLED" => Ok(StreamingStatus::Enabled),
            "DISABLED" => Ok(StreamingStatus::Disabled),
            other => Err(CoreError::invalid("StreamingStatus", format!("must be ENABLED or DISABLED, got '{other}'"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamingStatus::Enabled => "ENABLED",
            StreamingStatus::Disabled => "DISABLED",
        }
    }
}

/// Where a pool's bulk publish stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BulkPublish {
    pub status: BulkPublishStatus,
    pub start_time: Option<Timestamp>,
    pub complete_time: Option<Timestamp>,
    pub failure_message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkPublishStatus {
    #[default]
    NotStarted,
    InProgress,
    Failed,
    Succeeded,
}

impl BulkPublishStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkPublishStatus::NotStarted => "NOT_STARTED",
            BulkPublishStatus::InProgress => "IN_PROGRESS",
            BulkPublishStatus::Failed => "FAILED",
            BulkPublishStatus::Succeeded => "SUCCEEDED",
        }
    }
}

/// A change to a pool's Cognito Sync configuration; `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSyncConfigChange {
    pub push_sync: Option<PushSync>,
    pub cognito_streams: Option<CognitoStreams>,
    /// Replaces the events map.
    pub events: Option<BTreeMap<String, String>>,
}

/// A Cognito identity and the logins linked to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CognitoIdentity {
    /// `<region>:<uuid>`.
    pub id: String,
    pub pool_id: String,
    pub logins: Vec<Login>,
    /// Set when the identity lost its last login or was merged into another one.
    pub disabled: bool,
    /// The identity this one was merged into.
    pub merged_into: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl CognitoIdentity {
    pub fn is_authenticated(&self) -> bool {
        !self.logins.is_empty()
    }
}

/// A login linked to an identity: a provider and the user's identifier at it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Login {
    pub provider: String,
    pub user: String,
}

/// A dataset's metadata. Its records are the items of the Map `map_sid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub pool_id: String,
    pub identity_id: String,
    pub name: String,
    /// The Map holding the records; `None` while the dataset is deleted.
    pub map_sid: Option<Sid>,
    /// Goes up by one per successful UpdateRecords. A recreated dataset continues from the
    /// count its deletion left, so that a client's count from before the deletion is never
    /// mistaken for one of the new dataset's.
    pub sync_count: u64,
    /// Live records (not tombstones).
    pub num_records: u64,
    /// UTF-8 bytes of the live records' keys and values, as the Mobile SDKs count them.
    pub data_storage: u64,
    pub last_modified_by: String,
    pub date_created: Timestamp,
    pub date_modified: Timestamp,
    /// The sync count at which the dataset was last deleted.
    pub deleted_at_sync_count: Option<u64>,
    /// The identity this dataset came from in a merge.
    pub merged_from: Option<String>,
}

impl Dataset {
    pub fn exists(&self) -> bool {
        self.map_sid.is_some()
    }

    /// Whether a client that synced up to `last_sync_count` must drop its copy: the dataset
    /// was deleted after that point (whether or not it was recreated since). A client that
    /// never synced (0) has nothing to drop.
    pub fn deleted_after(&self, last_sync_count: u64) -> bool {
        last_sync_count > 0 && self.deleted_at_sync_count.is_some_and(|d| last_sync_count <= d)
    }
}

/// A record as the API shows it. `value: None` is a tombstone: the record was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub value: Option<String>,
    pub sync_count: u64,
    pub last_modified: Timestamp,
    pub last_modified_by: String,
    pub device_last_modified: Option<Timestamp>,
}

impl Record {
    /// Reads a record from its Map item.
    pub fn from_item(item: &Item) -> Result<Self, CoreError> {
        let data: RecordData = RecordData::deserialize(&*item.data).map_err(|e| {
            CoreError::Store(crate::store::StoreError::Corrupt(format!("record item is not a record: {e}")))
        })?;
        Ok(Record {
            key: item.key.clone().unwrap_or_default(),
            value: data.value,
            sync_count: data.sync_count,
            last_modified: item.date_updated,
            last_modified_by: data.last_modified_by,
            device_last_modified: data.device_last_modified.map(Timestamp),
        })
    }

    /// Bytes this record adds to its dataset's size: none for a tombstone.
    pub fn storage(&self) -> u64 {
        record_storage(&self.key, self.value.as_deref())
    }
}

/// UTF-8 bytes of key + value for a live record, 0 for a tombstone.
pub fn record_storage(key: &str, value: Option<&str>) -> u64 {
    value.map_or(0, |v| (key.len() + v.len()) as u64)
}

/// A record's item data in its Map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordData {
    /// `null` for a tombstone.
    pub value: Option<String>,
    pub sync_count: u64,
    pub last_modified_by: String,
    /// Milliseconds since the epoch.
    pub device_last_modified: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Replace,
    Remove,
}

impl PatchOp {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "replace" => Ok(PatchOp::Replace),
            "remove" => Ok(PatchOp::Remove),
            other => Err(CoreError::invalid("Op", format!("must be replace or remove, got '{other}'"))),
        }
    }
}

/// One change of an UpdateRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPatch {
    pub op: PatchOp,
    pub key: String,
    /// Ignored for `remove`.
    pub value: Option<String>,
    /// The client's last known sync count of the record (0 when new or unknown).
    pub sync_count: u64,
    pub device_last_modified: Option<Timestamp>,
}

/// Dataset limits UpdateRecords enforces, fixed by the engine when it builds the mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetLimits {
    pub max_datasets_per_identity: u64,
    pub max_records: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    Apns,
    ApnsSandbox,
    Gcm,
    Adm,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "APNS" => Ok(Platform::Apns),
            "APNS_SANDBOX" => Ok(Platform::ApnsSandbox),
            "GCM" => Ok(Platform::Gcm),
            "ADM" => Ok(Platform::Adm),
            other => {
                Err(CoreError::invalid("Platform", format!("must be APNS, APNS_SANDBOX, GCM or ADM, got '{other}'")))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "APNS",
            Platform::ApnsSandbox => "APNS_SANDBOX",
            Platform::Gcm => "GCM",
            Platform::Adm => "ADM",
        }
    }
}

/// A device registered for push sync by one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub pool_id: String,
    pub identity_id: String,
    pub platform: Platform,
    pub token: String,
    pub date_created: Timestamp,
}

/// A pool as `ferrosync export` writes it: its settings and its usage count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDump {
    pub pool: IdentityPool,
    pub sync_sessions: u64,
}

/// Everything of one identity id in a pool, as `ferrosync export` writes it. The identity
/// itself may be absent: developer credentials may write datasets under ids never issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDump {
    pub identity_id: String,
    pub identity: Option<CognitoIdentity>,
    /// Every dataset row, deleted ones included, with their sync counts.
    pub datasets: Vec<Dataset>,
    pub devices: Vec<DeviceDump>,
}

/// A push device and the datasets it is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDump {
    pub device: Device,
    pub subscriptions: Vec<String>,
}

/// Usage figures of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPoolUsage {
    pub pool_id: String,
    /// ListRecords calls, each of which opens a sync session.
    pub sync_sessions: u64,
    pub data_storage: u64,
    pub last_modified: Option<Timestamp>,
}

/// Usage figures of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityUsage {
    pub pool_id: String,
    pub identity_id: String,
    pub dataset_count: u64,
    pub data_storage: u64,
    pub last_modified: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(deleted_at: Option<u64>) -> Dataset {
        Dataset {
            pool_id: "us-east-1:p".into(),
            identity_id: "us-east-1:i".into(),
            name: "d".into(),
            map_sid: None,
            sync_count: 9,
            num_records: 0,
            data_storage: 0,
            last_modified_by: String::new(),
            date_created: Timestamp(0),
            date_modified: Timestamp(0),
            deleted_at_sync_count: deleted_at,
            merged_from: None,
        }
    }

    #[test]
    fn deleted_after_compares_with_the_deletion_point() {
        assert!(!dataset(None).deleted_after(3));
        assert!(dataset(Some(5)).deleted_after(3));
        assert!(dataset(Some(5)).deleted_after(5), "synced up to the deletion, then it was deleted");
        assert!(!dataset(Some(5)).deleted_after(6), "a count of the recreated dataset");
        assert!(!dataset(Some(5)).deleted_after(0), "a first sync has nothing to drop");
    }

    #[test]
    fn providers_are_accepted_by_name_or_by_arn() {
        let spec = IdentityPoolSpec {
            supported_login_providers: [("graph.facebook.com".to_owned(), "app".to_owned())].into(),
            open_id_connect_provider_arns: vec!["arn:aws:iam::123456789012:oidc-provider/accounts.google.com".into()],
            cognito_identity_providers: vec![CognitoIdentityProvider {
                provider_name: "cognito-idp.us-east-1.amazonaws.com/us-east-1_abc".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(spec.accepts_provider("graph.facebook.com"));
        assert!(spec.accepts_provider("accounts.google.com"));
        assert!(spec.accepts_provider("cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"));
        assert!(!spec.accepts_provider("www.amazon.com"));
    }

    #[test]
    fn storage_counts_utf8_bytes_of_live_records() {
        assert_eq!(record_storage("ké", Some("vé")), 6);
        assert_eq!(record_storage("key", None), 0);
    }
}
