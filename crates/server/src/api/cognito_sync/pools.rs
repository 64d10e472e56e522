//! A pool's Cognito Sync side (developer credentials only): its configuration (push sync,
//! streams), its Cognito events, its bulk publish.

use super::error::from_core;
use super::router::{Call, json};
use super::types::{BulkPublishDetailsView, PoolConfigurationView};
use crate::api::aws::error::AwsResult;
use ferrosync_core::cognito::{CognitoStreams, PushSync, StreamingStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PoolInput {
    identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetConfigurationInput {
    identity_pool_id: String,
    push_sync: Option<PushSyncInput>,
    cognito_streams: Option<CognitoStreamsInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PushSyncInput {
    #[serde(default)]
    application_arns: Vec<String>,
    role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CognitoStreamsInput {
    stream_name: Option<String>,
    role_arn: Option<String>,
    streaming_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetEventsInput {
    identity_pool_id: String,
    events: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventsOutput {
    events: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BulkPublishOutput {
    identity_pool_id: String,
}

pub async fn configuration(call: &Call<'_>) -> AwsResult<Value> {
    let i: PoolInput = call.input()?;
    let config =
        call.engine.identity_pool_configuration(call.principal, &i.identity_pool_id).await.map_err(from_core)?;
    json(&PoolConfigurationView::new(&i.identity_pool_id, &config))
}

pub async fn set_configuration(call: &Call<'_>) -> AwsResult<Value> {
    let i: SetConfigurationInput = call.input()?;
    let push_sync = i.push_sync.map(|p| PushSync { application_arns: p.application_arns, role_arn: p.role_arn });
    let cognito_streams = match i.cognito_streams {
        None => None,
        Some(s) => Some(CognitoStreams {
            stream_name: s.stream_name,
            role_arn: s.role_arn,
            // Streams named without a status stay off until enabled.
            streaming_status: s
                .streaming_status
                .as_deref()
                .map_or(Ok(StreamingStatus::Disabled), |status| StreamingStatus::parse(status).map_err(from_core))?,
        }),
    };
    let config = call
        .engine
        .set_identity_pool_configuration(call.principal, &i.identity_pool_id, push_sync, cognito_streams)
        .await
        .map_err(from_core)?;
    json(&PoolConfigurationView::new(&i.identity_pool_id, &config))
}

pub async fn cognito_events(call: &Call<'_>) -> AwsResult<Value> {
    let i: PoolInput = call.input()?;
    let events = call.engine.cognito_events(call.principal, &i.identity_pool_id).await.map_err(from_core)?;
    json(&EventsOutput { events })
}

/// SetCognitoEvents has no output shape: the body is an empty object.
pub async fn set_cognito_events(call: &Call<'_>) -> AwsResult<Value> {
    let i: SetEventsInput = call.input()?;
    call.engine.set_cognito_events(call.principal, &i.identity_pool_id, i.events).await.map_err(from_core)?;
    Ok(json!({}))
}

/// Records the start of a bulk publish; the publishing itself runs outside the request, and
/// reports its end through the engine (`finish_bulk_publish`).
pub async fn bulk_publish(call: &Call<'_>) -> AwsResult<Value> {
    let i: PoolInput = call.input()?;
    call.engine.bulk_publish(call.principal, &i.identity_pool_id).await.map_err(from_core)?;
    json(&BulkPublishOutput { identity_pool_id: i.identity_pool_id })
}

pub async fn bulk_publish_details(call: &Call<'_>) -> AwsResult<Value> {
    let i: PoolInput = call.input()?;
    let details = call.engine.bulk_publish_details(call.principal, &i.identity_pool_id).await.map_err(from_core)?;
    json(&BulkPublishDetailsView::new(&i.identity_pool_id, &details))
}
