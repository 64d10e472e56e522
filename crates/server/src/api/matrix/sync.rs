//! `/sync` and the ephemeral inputs it reports: typing notices, receipts and read markers.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::engine::{MatrixCaller, MessagesRequest, SyncParams};
use ferrosync_core::matrix::filter::{Filter, RoomEventFilter};
use ferrosync_core::matrix::sync::{Position, SyncToken};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The longest a `/sync` waits, whatever the client asks: below the 60 s that proxies and
/// clients commonly allow a request.
pub const MAX_SYNC_WAIT: Duration = Duration::from_secs(50);

fn invalid(error: impl Into<String>) -> MatrixError {
    MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", error)
}

/// The query of a request, decoded; the last value of a repeated parameter wins.
pub fn query_map(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// A filter parameter: inline JSON when it starts with `{`, otherwise the id of one the user
/// uploaded.
pub async fn resolve_filter(state: &AppState, caller: &MatrixCaller, param: Option<&str>) -> MatrixResult<Filter> {
    let Some(param) = param else { return Ok(Filter::default()) };
    let value: Value = if param.trim_start().starts_with('{') {
        serde_json::from_str(param)
            .map_err(|e| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", format!("filter is not JSON: {e}")))?
    } else {
        state
            .engine
            .matrix_filter(&caller.user_id, param)
            .await
            .map_err(from_core)?
            .ok_or_else(|| invalid(format!("filter: no filter '{param}' of {}", caller.user_id)))?
    };
    Filter::from_json(&value).map_err(|e| MatrixError::bad_json(e.to_string()))
}

#[tracing::instrument(name = "matrix.sync", skip_all, fields(user = %caller.user_id))]
pub async fn sync(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    RawQuery(raw): RawQuery,
) -> MatrixResult<Json<Value>> {
    let q = query_map(raw.as_deref());
    let since = q.get("since").map(|s| SyncToken::parse("since", s)).transpose().map_err(from_core)?;
    let timeout = match q.get("timeout") {
        None => 0,
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| invalid(format!("timeout must be a whole number of milliseconds, got '{t}'")))?,
    };
    let full_state = match q.get("full_state").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(invalid(format!("full_state must be true or false, got '{other}'"))),
    };
    let set_presence = match q.get("set_presence").map(String::as_str) {
        None => None,
        Some(p @ ("online" | "offline" | "unavailable")) => Some(p.to_owned()),
        Some(other) => {
            return Err(invalid(format!("set_presence must be online, offline or unavailable, got '{other}'")));
        }
    };
    let filter = resolve_filter(&state, &caller, q.get("filter").map(String::as_str)).await?;
    let ip = peer.map(|axum::Extension(ConnectInfo(addr))| addr.ip().to_string());
    state.engine.matrix_device_seen(&caller, ip.as_deref()).await.map_err(from_core)?;
    let params = SyncParams {
        since,
        filter,
        full_state,
        timeout: Duration::from_millis(timeout).min(MAX_SYNC_WAIT),
        set_presence,
    };
    // The wait ends with the server's shutdown too, so a draining node does not hold clients.
    let answer = tokio::select! {
        answer = state.engine.matrix_sync(&caller, params) => answer.map_err(from_core)?,
        () = state.shutdown.cancelled() => {
            return Err(MatrixError::new(StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN", "The server is shutting down"));
        }
    };
    Ok(Json(answer))
}

#[derive(Deserialize)]
struct TypingBody {
    typing: bool,
    timeout: Option<u64>,
}

pub async fn typing(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((room_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: TypingBody = json_body(&body)?;
    let timeout = b.typing.then(|| b.timeout.unwrap_or(30_000));
    state.engine.matrix_typing(&caller, &room_id, &user_id, timeout).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
struct ReceiptBody {
    thread_id: Option<String>,
}

pub async fn receipt(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((room_id, receipt_type, event_id)): Path<(String, String, String)>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: ReceiptBody = json_body(&body)?;
    let thread = b.thread_id.filter(|t| t != "main");
    state
        .engine
        .matrix_receipt(&caller, &room_id, &receipt_type, &event_id, thread.as_deref())
        .await
        .map_err(from_core)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ReadMarkersBody {
    #[serde(rename = "m.fully_read")]
    fully_read: Option<String>,
    #[serde(rename = "m.read")]
    read: Option<String>,
    #[serde(rename = "m.read.private")]
    read_private: Option<String>,
}

pub async fn read_markers(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let b: ReadMarkersBody = json_body(&body)?;
    let marks = [("m.fully_read", b.fully_read), ("m.read", b.read), ("m.read.private", b.read_private)];
    for (kind, event_id) in marks {
        if let Some(event_id) = event_id {
            state.engine.matrix_receipt(&caller, &room_id, kind, &event_id, None).await.map_err(from_core)?;
        }
    }
    Ok(Json(json!({})))
}

/// A room event filter given as JSON in the query (`/messages`, `/context`).
fn room_filter(param: Option<&String>) -> MatrixResult<RoomEventFilter> {
    let Some(param) = param else { return Ok(RoomEventFilter::default()) };
    let value: Value = serde_json::from_str(param)
        .map_err(|e| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", format!("filter is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(MatrixError::bad_json("filter must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| MatrixError::bad_json(format!("filter: {e}")))
}

fn limit_param(q: &std::collections::HashMap<String, String>) -> MatrixResult<Option<u64>> {
    q.get("limit")
        .map(|l| l.parse::<u64>().map_err(|_| invalid(format!("limit must be a whole number, got '{l}'"))))
        .transpose()
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path(room_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> MatrixResult<Json<Value>> {
    let q = query_map(raw.as_deref());
    let backwards = match q.get("dir").map(String::as_str) {
        Some("b") => true,
        Some("f") => false,
        Some(other) => return Err(invalid(format!("dir must be b or f, got '{other}'"))),
        None => return Err(MatrixError::missing_param("dir is required (b or f)")),
    };
    let position = |name: &'static str| q.get(name).map(|t| Position::parse(name, t)).transpose().map_err(from_core);
    let req = MessagesRequest {
        from: position("from")?,
        to: position("to")?,
        backwards,
        limit: limit_param(&q)?,
        filter: room_filter(q.get("filter"))?,
    };
    Ok(Json(state.engine.matrix_messages(&caller, &room_id, req).await.map_err(from_core)?))
}

pub async fn context(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((room_id, event_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> MatrixResult<Json<Value>> {
    let q = query_map(raw.as_deref());
    let filter = room_filter(q.get("filter"))?;
    let answer =
        state.engine.matrix_context(&caller, &room_id, &event_id, limit_param(&q)?, filter).await.map_err(from_core)?;
    Ok(Json(answer))
}
