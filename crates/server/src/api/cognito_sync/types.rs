//! Wire views of Cognito Sync's output shapes: members named as the model names them
//! (PascalCase), timestamps as epoch seconds with the milliseconds as fraction, absent members
//! left out.

use ferrosync_core::cognito::{
    BulkPublish, CognitoStreams, Dataset, IdentityPoolUsage, IdentityUsage, PoolSyncConfig, PushSync, Record,
};
use ferrosync_core::timestamp::Timestamp;
use serde::Serialize;

/// The rest-json default for the model's `Date`: epoch seconds, as a JSON number.
pub fn epoch_seconds(t: Timestamp) -> f64 {
    t.millis() as f64 / 1000.0
}

/// A request's epoch-second timestamp, to the millisecond.
pub fn from_epoch_seconds(seconds: f64) -> Timestamp {
    Timestamp((seconds * 1000.0).round() as i64)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatasetView {
    pub identity_id: String,
    pub dataset_name: String,
    pub creation_date: f64,
    pub last_modified_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_by: Option<String>,
    pub data_storage: u64,
    pub num_records: u64,
}

impl From<&Dataset> for DatasetView {
    fn from(d: &Dataset) -> Self {
        DatasetView {
            identity_id: d.identity_id.clone(),
            dataset_name: d.name.clone(),
            creation_date: epoch_seconds(d.date_created),
            last_modified_date: epoch_seconds(d.date_modified),
            last_modified_by: Some(d.last_modified_by.clone()).filter(|s| !s.is_empty()),
            data_storage: d.data_storage,
            num_records: d.num_records,
        }
    }
}

/// A record; a tombstone has no `Value`, which is how the SDKs recognise a removal.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub sync_count: u64,
    pub last_modified_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_last_modified_date: Option<f64>,
}

impl From<&Record> for RecordView {
    fn from(r: &Record) -> Self {
        RecordView {
            key: r.key.clone(),
            value: r.value.clone(),
            sync_count: r.sync_count,
            last_modified_date: epoch_seconds(r.last_modified),
            last_modified_by: Some(r.last_modified_by.clone()).filter(|s| !s.is_empty()),
            device_last_modified_date: r.device_last_modified.map(epoch_seconds),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityPoolUsageView {
    pub identity_pool_id: String,
    pub sync_sessions_count: u64,
    pub data_storage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<f64>,
}

impl From<&IdentityPoolUsage> for IdentityPoolUsageView {
    fn from(u: &IdentityPoolUsage) -> Self {
        IdentityPoolUsageView {
            identity_pool_id: u.pool_id.clone(),
            sync_sessions_count: u.sync_sessions,
            data_storage: u.data_storage,
            last_modified_date: u.last_modified.map(epoch_seconds),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityUsageView {
    pub identity_id: String,
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<f64>,
    pub dataset_count: u64,
    pub data_storage: u64,
}

impl From<&IdentityUsage> for IdentityUsageView {
    fn from(u: &IdentityUsage) -> Self {
        IdentityUsageView {
            identity_id: u.identity_id.clone(),
            identity_pool_id: u.pool_id.clone(),
            last_modified_date: u.last_modified.map(epoch_seconds),
            dataset_count: u.dataset_count,
            data_storage: u.data_storage,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PushSyncView {
    pub application_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl From<&PushSync> for PushSyncView {
    fn from(p: &PushSync) -> Self {
        PushSyncView { application_arns: p.application_arns.clone(), role_arn: p.role_arn.clone() }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CognitoStreamsView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub streaming_status: &'static str,
}

impl From<&CognitoStreams> for CognitoStreamsView {
    fn from(s: &CognitoStreams) -> Self {
        CognitoStreamsView {
            stream_name: s.stream_name.clone(),
            role_arn: s.role_arn.clone(),
            streaming_status: s.streaming_status.as_str(),
        }
    }
}

/// GetIdentityPoolConfiguration's and SetIdentityPoolConfiguration's output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolConfigurationView {
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_sync: Option<PushSyncView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cognito_streams: Option<CognitoStreamsView>,
}

impl PoolConfigurationView {
    pub fn new(pool_id: &str, config: &PoolSyncConfig) -> Self {
        PoolConfigurationView {
            identity_pool_id: pool_id.to_owned(),
            push_sync: config.push_sync.as_ref().map(PushSyncView::from),
            cognito_streams: config.cognito_streams.as_ref().map(CognitoStreamsView::from),
        }
    }
}

/// GetBulkPublishDetails' output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BulkPublishDetailsView {
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_publish_start_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_publish_complete_time: Option<f64>,
    pub bulk_publish_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

impl BulkPublishDetailsView {
    pub fn new(pool_id: &str, b: &BulkPublish) -> Self {
        BulkPublishDetailsView {
            identity_pool_id: pool_id.to_owned(),
            bulk_publish_start_time: b.start_time.map(epoch_seconds),
            bulk_publish_complete_time: b.complete_time.map(epoch_seconds),
            bulk_publish_status: b.status.as_str(),
            failure_message: b.failure_message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_epoch_seconds_with_milliseconds() {
        assert_eq!(json!(epoch_seconds(Timestamp(1_700_000_000_123))).to_string(), "1700000000.123");
        assert_eq!(from_epoch_seconds(1_704_164_645.0), Timestamp(1_704_164_645_000));
        assert_eq!(from_epoch_seconds(1_700_000_000.123), Timestamp(1_700_000_000_123));
    }

    #[test]
    fn tombstones_have_no_value() {
        let r = Record {
            key: "old".into(),
            value: None,
            sync_count: 3,
            last_modified: Timestamp(1_000),
            last_modified_by: "device-1".into(),
            device_last_modified: None,
        };
        let v = serde_json::to_value(RecordView::from(&r)).unwrap_or_default();
        assert_eq!(v, json!({"Key": "old", "SyncCount": 3, "LastModifiedDate": 1.0, "LastModifiedBy": "device-1"}));
    }
}
