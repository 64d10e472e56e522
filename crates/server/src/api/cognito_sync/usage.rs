//! DescribeIdentityPoolUsage, ListIdentityPoolUsage, DescribeIdentityUsage.

use super::error::from_core;
use super::router::{Call, json, max_results};
use super::types::{IdentityPoolUsageView, IdentityUsageView};
use crate::api::aws::error::AwsResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ListIdentityPoolUsage's largest page (the engine's).
const MAX_POOL_PAGE: u32 = 60;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PoolInput {
    identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityInput {
    identity_pool_id: String,
    identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PoolUsageOutput {
    identity_pool_usage: IdentityPoolUsageView,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityUsageOutput {
    identity_usage: IdentityUsageView,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListOutput {
    identity_pool_usages: Vec<IdentityPoolUsageView>,
    max_results: u32,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn describe_identity_pool_usage(call: &Call<'_>) -> AwsResult<Value> {
    let i: PoolInput = call.input()?;
    let usage = call.engine.identity_pool_usage(call.principal, &i.identity_pool_id).await.map_err(from_core)?;
    json(&PoolUsageOutput { identity_pool_usage: IdentityPoolUsageView::from(&usage) })
}

pub async fn list_identity_pool_usage(call: &Call<'_>) -> AwsResult<Value> {
    let i: ListInput = call.input()?;
    let requested = max_results(i.max_results)?;
    let page = call
        .engine
        .identity_pool_usages(call.principal, requested, i.next_token.as_deref())
        .await
        .map_err(from_core)?;
    let usages: Vec<IdentityPoolUsageView> = page.items.iter().map(IdentityPoolUsageView::from).collect();
    json(&ListOutput {
        count: usages.len(),
        identity_pool_usages: usages,
        // The page size in effect, which the engine caps.
        max_results: requested.map_or(MAX_POOL_PAGE, |n| n.min(MAX_POOL_PAGE)),
        next_token: page.next.map(|t| t.encode()),
    })
}

pub async fn describe_identity_usage(call: &Call<'_>) -> AwsResult<Value> {
    let i: IdentityInput = call.input()?;
    let usage =
        call.engine.identity_usage(call.principal, &i.identity_pool_id, &i.identity_id).await.map_err(from_core)?;
    json(&IdentityUsageOutput { identity_usage: IdentityUsageView::from(&usage) })
}
