//! End-to-end encryption support: device and one-time keys, to-device messages, key changes.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use super::sync::query_map;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use ferrosync_core::matrix::sync::SyncToken;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
struct UploadBody {
    device_keys: Option<Value>,
    one_time_keys: Option<Map<String, Value>>,
    fallback_keys: Option<Map<String, Value>>,
    #[serde(rename = "org.matrix.msc2732.fallback_keys")]
    unstable_fallback_keys: Option<Map<String, Value>>,
}

pub async fn upload(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: UploadBody = json_body(&body)?;
    let fallback = b.fallback_keys.or(b.unstable_fallback_keys);
    let answer =
        state.engine.matrix_upload_keys(&caller, b.device_keys, b.one_time_keys, fallback).await.map_err(from_core)?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
struct QueryBody {
    device_keys: BTreeMap<String, Vec<String>>,
}

pub async fn query(
    State(state): State<Arc<AppState>>,
    Caller(_caller): Caller,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: QueryBody = json_body(&body)?;
    Ok(Json(state.engine.matrix_query_keys(&b.device_keys).await.map_err(from_core)?))
}

#[derive(Deserialize)]
struct ClaimBody {
    one_time_keys: BTreeMap<String, BTreeMap<String, String>>,
}

pub async fn claim(
    State(state): State<Arc<AppState>>,
    Caller(_caller): Caller,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: ClaimBody = json_body(&body)?;
    Ok(Json(state.engine.matrix_claim_keys(&b.one_time_keys).await.map_err(from_core)?))
}

/// `GET /keys/changes?from=&to=`: both are sync tokens.
pub async fn changes(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
) -> MatrixResult<Json<Value>> {
    let q = query_map(raw.as_deref());
    let from = q.get("from").ok_or_else(|| MatrixError::missing_param("from is required"))?;
    let from = SyncToken::parse("from", from).map_err(from_core)?;
    if let Some(to) = q.get("to") {
        SyncToken::parse("to", to).map_err(from_core)?;
    }
    Ok(Json(state.engine.matrix_key_changes(&caller, from.seq).await.map_err(from_core)?))
}

#[derive(Deserialize)]
struct ToDeviceBody {
    messages: BTreeMap<String, BTreeMap<String, Value>>,
}

pub async fn send_to_device(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((event_type, txn_id)): Path<(String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: ToDeviceBody = json_body(&body)?;
    state.engine.matrix_send_to_device(&caller, &event_type, &txn_id, &b.messages).await.map_err(from_core)?;
    Ok(Json(json!({})))
}
