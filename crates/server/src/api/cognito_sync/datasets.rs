//! ListDatasets, DescribeDataset, DeleteDataset.

use super::error::from_core;
use super::router::{Call, json, max_results};
use super::types::DatasetView;
use crate::api::aws::error::AwsResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DatasetInput {
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListDatasetsInput {
    identity_pool_id: String,
    identity_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DatasetOutput {
    dataset: DatasetView,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListDatasetsOutput {
    datasets: Vec<DatasetView>,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(call: &Call<'_>) -> AwsResult<Value> {
    let i: ListDatasetsInput = call.input()?;
    let page = call
        .engine
        .datasets(
            call.principal,
            &i.identity_pool_id,
            &i.identity_id,
            max_results(i.max_results)?,
            i.next_token.as_deref(),
        )
        .await
        .map_err(from_core)?;
    let datasets: Vec<DatasetView> = page.items.iter().map(DatasetView::from).collect();
    json(&ListDatasetsOutput { count: datasets.len(), datasets, next_token: page.next.map(|t| t.encode()) })
}

pub async fn describe(call: &Call<'_>) -> AwsResult<Value> {
    let i: DatasetInput = call.input()?;
    let dataset = call
        .engine
        .dataset(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name)
        .await
        .map_err(from_core)?;
    json(&DatasetOutput { dataset: DatasetView::from(&dataset) })
}

pub async fn delete(call: &Call<'_>) -> AwsResult<Value> {
    let i: DatasetInput = call.input()?;
    let dataset = call
        .engine
        .delete_dataset(call.principal, &i.identity_pool_id, &i.identity_id, &i.dataset_name)
        .await
        .map_err(from_core)?;
    json(&DatasetOutput { dataset: DatasetView::from(&dataset) })
}
