//! Rooms: create, send (idempotent per transaction id), state, membership (join, leave,
//! invite, kick, ban, unban), joined rooms and members.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::engine::CreateRoom;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
struct StateEventInput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state_key: String,
    content: Value,
}

#[derive(Deserialize)]
struct CreateRoomBody {
    visibility: Option<String>,
    name: Option<String>,
    topic: Option<String>,
    #[serde(default)]
    invite: Vec<String>,
    preset: Option<String>,
    #[serde(default)]
    initial_state: Vec<StateEventInput>,
    power_level_content_override: Option<Value>,
    creation_content: Option<Value>,
    room_version: Option<String>,
    room_alias_name: Option<String>,
    #[serde(default)]
    is_direct: bool,
}

pub async fn create_room(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: CreateRoomBody = json_body(&body)?;
    let req = CreateRoom {
        preset: b.preset,
        public: b.visibility.as_deref() == Some("public"),
        name: b.name,
        topic: b.topic,
        invite: b.invite,
        initial_state: b.initial_state.into_iter().map(|e| (e.kind, e.state_key, e.content)).collect(),
        power_level_content_override: b.power_level_content_override,
        creation_content: b.creation_content,
        room_version: b.room_version,
        alias_name: b.room_alias_name,
        is_direct: b.is_direct,
    };
    let server = &state.settings.matrix.server_name;
    let room_id = state.engine.matrix_create_room(server, &caller, req).await.map_err(|e| match e {
        ferrosync_core::error::CoreError::InvalidField { field: "room_version", message } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION", format!("room_version {message}"))
        }
        ferrosync_core::error::CoreError::AlreadyExists { what: "alias", name } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_ROOM_IN_USE", format!("Room alias {name} is already taken"))
        }
        other => from_core(other),
    })?;
    Ok(Json(json!({ "room_id": room_id })))
}

pub async fn send(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((room_id, event_type, txn_id)): Path<(String, String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let content: Value = json_body(&body)?;
    let event_id =
        state.engine.matrix_send(&caller, &room_id, &event_type, content, &txn_id).await.map_err(from_core)?;
    Ok(Json(json!({ "event_id": event_id })))
}

/// `…/state/{eventType}` (state key "") and `…/state/{eventType}/{stateKey}`.
pub async fn put_state(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(parts): Path<Vec<(String, String)>>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let (room_id, kind, key) = state_path(&parts);
    let content: Value = json_body(&body)?;
    let event_id = state.engine.matrix_put_state(&caller, &room_id, &kind, &key, content).await.map_err(from_core)?;
    Ok(Json(json!({ "event_id": event_id })))
}

pub async fn get_state_event(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(parts): Path<Vec<(String, String)>>,
) -> MatrixResult<Json<Value>> {
    let (room_id, kind, key) = state_path(&parts);
    match state.engine.matrix_state_content(&caller, &room_id, &kind, &key).await.map_err(from_core)? {
        Some(content) => Ok(Json(content)),
        None => Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Event not found")),
    }
}

fn state_path(parts: &[(String, String)]) -> (String, String, String) {
    let part = |name: &str| parts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    (part("room_id"), part("event_type"), part("state_key"))
}

pub async fn get_state(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    Ok(Json(Value::Array(state.engine.matrix_room_state(&caller, &room_id).await.map_err(from_core)?)))
}

pub async fn members(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    let events = state.engine.matrix_room_state(&caller, &room_id).await.map_err(from_core)?;
    let chunk: Vec<Value> = events.into_iter().filter(|e| e["type"] == "m.room.member").collect();
    Ok(Json(json!({ "chunk": chunk })))
}

pub async fn joined_members(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    let events = state.engine.matrix_room_state(&caller, &room_id).await.map_err(from_core)?;
    let mut joined = serde_json::Map::new();
    for e in events.iter().filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "join") {
        if let Some(user) = e["state_key"].as_str() {
            joined.insert(
                user.to_owned(),
                json!({ "display_name": e["content"]["displayname"], "avatar_url": e["content"]["avatar_url"] }),
            );
        }
    }
    Ok(Json(json!({ "joined": joined })))
}

pub async fn joined_rooms(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    Ok(Json(json!({ "joined_rooms": state.engine.matrix_joined_rooms(&caller).await.map_err(from_core)? })))
}

/// The room a room id or alias names.
async fn resolve_room(state: &AppState, room: &str) -> MatrixResult<String> {
    let unknown = || MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", format!("No room is known as '{room}'"));
    if room.starts_with('#') {
        state.engine.matrix_resolve_alias(room).await.map_err(from_core)?.ok_or_else(unknown)
    } else if room.starts_with('!') {
        Ok(room.to_owned())
    } else {
        Err(unknown())
    }
}

/// `POST /join/{roomIdOrAlias}` and `POST /rooms/{roomId}/join`.
pub async fn join(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room): Path<String>,
) -> MatrixResult<Json<Value>> {
    let room = resolve_room(&state, &room).await?;
    let user = caller.user_id.clone();
    state.engine.matrix_membership(&caller, &room, &user, "join", None).await.map_err(from_core)?;
    Ok(Json(json!({ "room_id": room })))
}

/// `POST /knock/{roomIdOrAlias}`: asks to be let into a room whose join rule is `knock`.
pub async fn knock(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: LeaveBody = json_body(&body)?;
    let room = resolve_room(&state, &room).await?;
    let user = caller.user_id.clone();
    state.engine.matrix_membership(&caller, &room, &user, "knock", b.reason.as_deref()).await.map_err(from_core)?;
    Ok(Json(json!({ "room_id": room })))
}

#[derive(Deserialize)]
struct RedactBody {
    reason: Option<String>,
}

pub async fn redact(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((room_id, event_id, txn_id)): Path<(String, String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: RedactBody = json_body(&body)?;
    let event_id = state
        .engine
        .matrix_redact(&caller, &room_id, &event_id, &txn_id, b.reason.as_deref())
        .await
        .map_err(from_core)?;
    Ok(Json(json!({ "event_id": event_id })))
}

pub async fn get_visibility(
    State(state): State<Arc<AppState>>,
    Path(room_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    let visibility = state.engine.matrix_room_visibility(&room_id).await.map_err(from_core)?;
    Ok(Json(json!({ "visibility": visibility })))
}

#[derive(Deserialize)]
struct VisibilityBody {
    visibility: Option<String>,
}

pub async fn put_visibility(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: VisibilityBody = json_body(&body)?;
    let public = match b.visibility.as_deref() {
        Some("public") => true,
        Some("private") | None => false,
        Some(other) => {
            return Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                format!("visibility must be public or private, got '{other}'"),
            ));
        }
    };
    state.engine.matrix_set_room_visibility(&caller, &room_id, public).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
struct PublicRoomsFilter {
    generic_search_term: Option<String>,
}

#[derive(Deserialize, Default)]
struct PublicRoomsBody {
    limit: Option<usize>,
    since: Option<String>,
    #[serde(default)]
    filter: PublicRoomsFilter,
}

/// `GET /publicRooms` (open to anyone) and `POST /publicRooms` (with a search term).
pub async fn public_rooms(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let q = super::sync::query_map(raw.as_deref());
    let b: PublicRoomsBody =
        if method == axum::http::Method::POST { json_body(&body)? } else { PublicRoomsBody::default() };
    let limit = match (b.limit, q.get("limit")) {
        (Some(l), _) => Some(l),
        (None, Some(l)) => Some(l.parse::<usize>().map_err(|_| {
            MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                format!("limit must be a whole number, got '{l}'"),
            )
        })?),
        (None, None) => None,
    };
    let since = b.since.or_else(|| q.get("since").cloned());
    let answer = state
        .engine
        .matrix_public_rooms(limit, since.as_deref(), b.filter.generic_search_term.as_deref())
        .await
        .map_err(from_core)?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
struct LeaveBody {
    reason: Option<String>,
}

pub async fn leave(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: LeaveBody = json_body(&body)?;
    let user = caller.user_id.clone();
    state.engine.matrix_membership(&caller, &room_id, &user, "leave", b.reason.as_deref()).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct TargetBody {
    user_id: String,
    reason: Option<String>,
}

/// invite, kick, ban and unban: a membership for another user.
async fn target_membership(
    state: &AppState,
    caller: &ferrosync_core::engine::MatrixCaller,
    room_id: &str,
    body: &Bytes,
    membership: &str,
) -> MatrixResult<Json<Value>> {
    let b: TargetBody = json_body(body)?;
    state
        .engine
        .matrix_membership(caller, room_id, &b.user_id, membership, b.reason.as_deref())
        .await
        .map_err(from_core)?;
    Ok(Json(json!({})))
}

/// The route of a membership for another user: invite, kick (`leave`), ban, unban (`leave`).
pub fn for_other(membership: &'static str) -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::post(
        move |State(state): State<Arc<AppState>>, Caller(caller): Caller, Path(room_id): Path<String>, body: Bytes| async move {
            target_membership(&state, &caller, &room_id, &body, membership).await
        },
    )
}

// ----- the room directory's aliases -------------------------------------------------------------

pub async fn get_alias(State(state): State<Arc<AppState>>, Path(alias): Path<String>) -> MatrixResult<Json<Value>> {
    match state.engine.matrix_resolve_alias(&alias).await.map_err(from_core)? {
        Some(room_id) => Ok(Json(json!({ "room_id": room_id, "servers": [state.settings.matrix.server_name] }))),
        None => Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", format!("Room alias {alias} not found"))),
    }
}

#[derive(Deserialize)]
struct AliasBody {
    room_id: String,
}

pub async fn put_alias(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(alias): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: AliasBody = json_body(&body)?;
    let server = &state.settings.matrix.server_name;
    state.engine.matrix_set_alias(server, &caller, &alias, &b.room_id).await.map_err(|e| match e {
        ferrosync_core::error::CoreError::AlreadyExists { .. } => {
            MatrixError::new(StatusCode::CONFLICT, "M_UNKNOWN", format!("Room alias {alias} already exists"))
        }
        other => from_core(other),
    })?;
    Ok(Json(json!({})))
}

pub async fn delete_alias(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(alias): Path<String>,
) -> MatrixResult<Json<Value>> {
    state.engine.matrix_delete_alias(&caller, &alias).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

pub async fn forget(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
) -> MatrixResult<Json<Value>> {
    state.engine.matrix_forget(&caller, &room_id).await.map_err(|e| match e {
        ferrosync_core::error::CoreError::InvalidField { message, .. } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", format!("The room {message}"))
        }
        other => from_core(other),
    })?;
    Ok(Json(json!({})))
}
