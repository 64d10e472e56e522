//! Account data (global and per room) and presence: per-user state kept in the Matrix
//! service's Maps, where `/sync` and the native API read it.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::engine::MatrixCaller;
use ferrosync_core::error::CoreError;
use ferrosync_core::timestamp::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Types the server keeps for itself: clients set them through their own endpoints.
const SERVER_OWNED: [&str; 2] = ["m.fully_read", "m.push_rules"];

fn own(caller: &MatrixCaller, user_id: &str) -> MatrixResult<()> {
    if caller.user_id != user_id {
        return Err(MatrixError::forbidden("Cannot access the account data of another user"));
    }
    Ok(())
}

fn not_found() -> MatrixError {
    MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Account data not found")
}

fn too_large_or(e: CoreError) -> MatrixError {
    match e {
        CoreError::TooLarge { field, size, limit } => MatrixError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "M_TOO_LARGE",
            format!("{field} is {size} bytes; the limit is {limit}"),
        ),
        other => from_core(other),
    }
}

async fn put(
    state: &AppState,
    caller: &MatrixCaller,
    room: Option<&str>,
    kind: &str,
    body: &Bytes,
) -> MatrixResult<()> {
    if SERVER_OWNED.contains(&kind) {
        return Err(MatrixError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "M_BAD_JSON",
            format!("{kind} is controlled by the server; it cannot be set through account data"),
        ));
    }
    let content: Value = json_body(body)?;
    state.engine.matrix_put_account_data(caller, room, kind, content).await.map_err(too_large_or)
}

async fn get(state: &AppState, user_id: &str, room: Option<&str>, kind: &str) -> MatrixResult<Json<Value>> {
    match state.engine.matrix_account_data(user_id, room, kind).await.map_err(from_core)? {
        Some(content) => Ok(Json(content)),
        None => Err(not_found()),
    }
}

pub async fn put_global(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id)?;
    put(&state, &caller, None, &kind, &body).await?;
    Ok(Json(json!({})))
}

pub async fn get_global(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, kind)): Path<(String, String)>,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id)?;
    if kind == "m.push_rules" {
        // Kept as the user's changes; read as the whole rule set.
        let stored = state.engine.matrix_account_data(&user_id, None, &kind).await.map_err(from_core)?;
        return Ok(Json(ferrosync_core::matrix::push_rules::effective_ruleset(&user_id, stored.as_ref())));
    }
    get(&state, &user_id, None, &kind).await
}

pub async fn put_room(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, room_id, kind)): Path<(String, String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id)?;
    if !room_id.starts_with('!') {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("'{room_id}' is not a room id"),
        ));
    }
    put(&state, &caller, Some(&room_id), &kind, &body).await?;
    Ok(Json(json!({})))
}

pub async fn get_room(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, room_id, kind)): Path<(String, String, String)>,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id)?;
    get(&state, &user_id, Some(&room_id), &kind).await
}

#[derive(Deserialize)]
struct PresenceBody {
    presence: String,
    status_msg: Option<String>,
}

pub async fn set_presence(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    if caller.user_id != user_id {
        return Err(MatrixError::forbidden("Cannot set the presence of another user"));
    }
    let b: PresenceBody = json_body(&body)?;
    state.engine.matrix_set_presence(&caller, &b.presence, b.status_msg.as_deref()).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

pub async fn get_presence(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(user_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    let p = state.engine.matrix_presence(&user_id).await.map_err(|e| match e {
        CoreError::NotFound { .. } => MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Unknown user"),
        other => from_core(other),
    })?;
    let mut out = json!({ "presence": p.presence, "currently_active": p.presence == "online" });
    if p.last_active.0 > 0 {
        out["last_active_ago"] = json!((Timestamp::now().millis() - p.last_active.millis()).max(0));
    }
    if let Some(msg) = p.status_msg {
        out["status_msg"] = json!(msg);
    }
    Ok(Json(out))
}
