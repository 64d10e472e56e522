//! RegisterDevice, SubscribeToDataset, UnsubscribeFromDataset: push sync's bookkeeping (only
//! an identity's own temporary credentials reach these; the engine checks it).

use super::error::from_core;
use super::router::{Call, json};
use crate::api::aws::error::AwsResult;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegisterDeviceInput {
    identity_pool_id: String,
    identity_id: String,
    platform: String,
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RegisterDeviceOutput {
    device_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SubscriptionInput {
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
    device_id: String,
}

pub async fn register_device(call: &Call<'_>) -> AwsResult<Value> {
    let i: RegisterDeviceInput = call.input()?;
    let device_id = call
        .engine
        .register_device(call.principal, &i.identity_pool_id, &i.identity_id, &i.platform, &i.token)
        .await
        .map_err(from_core)?;
    json(&RegisterDeviceOutput { device_id })
}

pub async fn subscribe(call: &Call<'_>) -> AwsResult<Value> {
    let i: SubscriptionInput = call.input()?;
    call.engine
        .subscribe_to_dataset(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name, &i.device_id)
        .await
        .map_err(from_core)?;
    Ok(json!({}))
}

pub async fn unsubscribe(call: &Call<'_>) -> AwsResult<Value> {
    let i: SubscriptionInput = call.input()?;
    call.engine
        .unsubscribe_from_dataset(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name, &i.device_id)
        .await
        .map_err(from_core)?;
    Ok(json!({}))
}
