//! What belongs to a user: filters, profile, devices.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::auth::random_hex;
use ferrosync_core::engine::MatrixCaller;
use ferrosync_core::error::CoreError;
use ferrosync_core::matrix::MatrixDevice;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn own(caller: &MatrixCaller, user_id: &str, what: &str) -> MatrixResult<()> {
    if caller.user_id != user_id {
        return Err(MatrixError::forbidden(format!("Cannot change the {what} of another user")));
    }
    Ok(())
}

// ----- filters --------------------------------------------------------------------------------

pub async fn put_filter(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id, "filters")?;
    let filter: Value = json_body(&body)?;
    let filter_id = state.engine.matrix_put_filter(&caller, &filter).await.map_err(|e| match e {
        CoreError::InvalidField { message, .. } => MatrixError::bad_json(format!("filter {message}")),
        other => from_core(other),
    })?;
    Ok(Json(json!({ "filter_id": filter_id })))
}

pub async fn get_filter(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, filter_id)): Path<(String, String)>,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id, "filters")?;
    match state.engine.matrix_filter(&user_id, &filter_id).await.map_err(from_core)? {
        Some(filter) => Ok(Json(filter)),
        None => Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such filter")),
    }
}

// ----- profile --------------------------------------------------------------------------------

async fn profile_of(state: &AppState, user_id: &str) -> MatrixResult<ferrosync_core::engine::MatrixProfile> {
    state.engine.matrix_profile(user_id).await.map_err(|e| match e {
        CoreError::NotFound { .. } => MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Profile was not found"),
        other => from_core(other),
    })
}

fn profile_json(p: &ferrosync_core::engine::MatrixProfile) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(name) = &p.display_name {
        out.insert("displayname".into(), json!(name));
    }
    if let Some(url) = &p.avatar_url {
        out.insert("avatar_url".into(), json!(url));
    }
    Value::Object(out)
}

pub async fn get_profile(State(state): State<Arc<AppState>>, Path(user_id): Path<String>) -> MatrixResult<Json<Value>> {
    Ok(Json(profile_json(&profile_of(&state, &user_id).await?)))
}

/// `displayname` or `avatar_url` alone.
pub async fn get_profile_field(
    State(state): State<Arc<AppState>>,
    Path((user_id, field)): Path<(String, String)>,
) -> MatrixResult<Json<Value>> {
    let profile = profile_of(&state, &user_id).await?;
    let value = match field.as_str() {
        "displayname" => profile.display_name,
        "avatar_url" => profile.avatar_url,
        _ => return Err(MatrixError::unrecognized("Unrecognized profile field")),
    };
    match value {
        Some(v) => Ok(Json(json!({ field: v }))),
        None => Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", format!("No {field} is set"))),
    }
}

pub async fn put_profile_field(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((user_id, field)): Path<(String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    own(&caller, &user_id, "profile")?;
    let body: serde_json::Map<String, Value> = json_body(&body)?;
    let value = match body.get(&field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(MatrixError::bad_json(format!("{field} must be a string"))),
    };
    let (name, url) = match field.as_str() {
        "displayname" => (Some(value), None),
        "avatar_url" => (None, Some(value)),
        _ => return Err(MatrixError::unrecognized("Unrecognized profile field")),
    };
    state.engine.matrix_set_profile(&caller, name, url).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

// ----- devices --------------------------------------------------------------------------------

/// Every member present, `null` when unknown: clients such as matrix-nio require them all.
fn device_json(d: &MatrixDevice, seen: &BTreeMap<String, Value>) -> Value {
    let seen = seen.get(&d.device_id);
    json!({
        "device_id": d.device_id,
        "display_name": d.display_name,
        "last_seen_ip": seen.map_or(Value::Null, |s| s["ip"].clone()),
        "last_seen_ts": seen.map_or(Value::Null, |s| s["ts"].clone()),
    })
}

pub async fn devices(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    let devices = state.engine.matrix_devices(&caller).await.map_err(from_core)?;
    let seen = state.engine.matrix_devices_seen(&caller.user_id).await.map_err(from_core)?;
    Ok(Json(json!({ "devices": devices.iter().map(|d| device_json(d, &seen)).collect::<Vec<_>>() })))
}

pub async fn device(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(device_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    let devices = state.engine.matrix_devices(&caller).await.map_err(from_core)?;
    let seen = state.engine.matrix_devices_seen(&caller.user_id).await.map_err(from_core)?;
    match devices.iter().find(|d| d.device_id == device_id) {
        Some(d) => Ok(Json(device_json(d, &seen))),
        None => Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Device not found")),
    }
}

#[derive(Deserialize)]
struct RenameBody {
    display_name: Option<String>,
}

pub async fn rename_device(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(device_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: RenameBody = json_body(&body)?;
    if let Some(name) = b.display_name {
        state.engine.matrix_rename_device(&caller, &device_id, &name).await.map_err(|e| match e {
            CoreError::NotFound { .. } => MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Device not found"),
            other => from_core(other),
        })?;
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct PasswordAuth {
    #[serde(rename = "type")]
    kind: Option<String>,
    password: Option<String>,
    session: Option<String>,
}

#[derive(Deserialize)]
struct DeleteBody {
    auth: Option<PasswordAuth>,
    #[serde(default)]
    devices: Vec<String>,
}

/// Deleting devices asks for the password again (the `m.login.password` stage).
async fn confirm(state: &AppState, caller: &MatrixCaller, auth: Option<PasswordAuth>) -> MatrixResult<()> {
    let challenge = |session: Option<String>, refused: bool| {
        let (errcode, error) =
            if refused { ("M_FORBIDDEN", "Invalid password") } else { ("M_FORBIDDEN", "Authentication required") };
        MatrixError::new(StatusCode::UNAUTHORIZED, errcode, error)
            .with("flows", json!([{ "stages": ["m.login.password"] }]))
            .with("params", json!({}))
            .with("session", json!(session.unwrap_or_else(|| random_hex(12))))
            .with("completed", json!([]))
    };
    let Some(auth) = auth else { return Err(challenge(None, false)) };
    if auth.kind.as_deref() != Some("m.login.password") {
        return Err(challenge(auth.session, false));
    }
    let password = auth.password.unwrap_or_default();
    if !state.engine.matrix_confirm_password(caller, &password).await.map_err(from_core)? {
        return Err(challenge(auth.session, true));
    }
    Ok(())
}

pub async fn delete_device(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(device_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: DeleteBody = json_body(&body)?;
    confirm(&state, &caller, b.auth).await?;
    if state.engine.matrix_delete_devices(&caller, std::slice::from_ref(&device_id)).await.map_err(from_core)? == 0 {
        return Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Device not found"));
    }
    Ok(Json(json!({})))
}

pub async fn delete_devices(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: DeleteBody = json_body(&body)?;
    confirm(&state, &caller, b.auth).await?;
    state.engine.matrix_delete_devices(&caller, &b.devices).await.map_err(from_core)?;
    Ok(Json(json!({})))
}
