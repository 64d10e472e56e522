//! ListRecords and UpdateRecords: the sync protocol of the Mobile SDKs.

use super::error::{INVALID_PARAMETER, from_core, modeled};
use super::router::{Call, json, max_results, non_negative};
use super::types::{RecordView, from_epoch_seconds};
use crate::api::aws::error::AwsResult;
use ferrosync_core::cognito::{PatchOp, RecordPatch};
use ferrosync_core::engine::{ListRecordsRequest, UpdateRecordsRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRecordsInput {
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
    last_sync_count: Option<i64>,
    next_token: Option<String>,
    max_results: Option<i64>,
    // `SyncSessionToken` may come along: each ListRecords opens a session of its own, so it
    // is not needed here.
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListRecordsOutput {
    records: Vec<RecordView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    count: u64,
    dataset_sync_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified_by: Option<String>,
    merged_dataset_names: Vec<String>,
    dataset_exists: bool,
    dataset_deleted_after_requested_sync_count: bool,
    sync_session_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRecordsInput {
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
    device_id: Option<String>,
    #[serde(default)]
    record_patches: Vec<PatchInput>,
    sync_session_token: String,
    // `ClientContext` (the `x-amz-Client-Context` header) is, per the model, "not yet
    // implemented" by Cognito Sync either: accepted and validated, not used.
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PatchInput {
    op: String,
    key: String,
    value: Option<String>,
    sync_count: i64,
    device_last_modified_date: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRecordsOutput {
    records: Vec<RecordView>,
}

pub async fn list(call: &Call<'_>) -> AwsResult<Value> {
    let i: ListRecordsInput = call.input()?;
    let req = ListRecordsRequest {
        last_sync_count: i.last_sync_count.map(|n| non_negative("lastSyncCount", n)).transpose()?,
        max_results: max_results(i.max_results)?,
        next_token: i.next_token,
    };
    let page = call
        .engine
        .list_records(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name, req)
        .await
        .map_err(from_core)?;
    json(&ListRecordsOutput {
        records: page.records.iter().map(RecordView::from).collect(),
        next_token: page.next_token,
        count: page.count,
        dataset_sync_count: page.dataset_sync_count,
        last_modified_by: page.last_modified_by.filter(|s| !s.is_empty()),
        merged_dataset_names: page.merged_dataset_names,
        dataset_exists: page.dataset_exists,
        dataset_deleted_after_requested_sync_count: page.dataset_deleted_after_requested_sync_count,
        sync_session_token: page.sync_session_token,
    })
}

pub async fn update(call: &Call<'_>) -> AwsResult<Value> {
    let i: UpdateRecordsInput = call.input()?;
    let mut patches = Vec::with_capacity(i.record_patches.len());
    for (n, p) in i.record_patches.into_iter().enumerate() {
        let op = PatchOp::parse(&p.op).map_err(from_core)?;
        let field = format!("recordPatches.{}.member.syncCount", n + 1);
        patches.push(RecordPatch {
            op,
            key: p.key,
            value: p.value,
            sync_count: non_negative(&field, p.sync_count)?,
            device_last_modified: p.device_last_modified_date.map(from_epoch_seconds),
        });
    }
    if i.sync_session_token.is_empty() {
        return Err(modeled(INVALID_PARAMETER, "SyncSessionToken not valid for these inputs"));
    }
    let req = UpdateRecordsRequest { sync_session_token: i.sync_session_token, device_id: i.device_id, patches };
    let req = call
        .sync_trigger
        .apply(call.engine, call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name, req)
        .await?;
    let updated = call
        .engine
        .update_records(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name, req)
        .await
        .map_err(from_core)?;
    // Streams and push sync follow the change log (see `crate::cognito`), not this request.
    json(&UpdateRecordsOutput { records: updated.records.iter().map(RecordView::from).collect() })
}
