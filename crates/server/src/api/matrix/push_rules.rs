//! Push rules (`/pushrules/…`): the spec's predefined rules with the caller's changes, which
//! are kept in their `m.push_rules` account data.

use super::account::json_body;
use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::engine::MatrixCaller;
use ferrosync_core::error::CoreError;
use ferrosync_core::matrix::push_rules::{self as rules, ACCOUNT_DATA_TYPE, PushRuleError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn push_error(e: PushRuleError) -> MatrixError {
    match e {
        PushRuleError::NotFound { .. } => MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", e.to_string()),
        PushRuleError::InvalidBody { .. } => MatrixError::bad_json(e.to_string()),
        PushRuleError::UnknownKind(_)
        | PushRuleError::InvalidRuleId(_)
        | PushRuleError::AnchorNotFound { .. }
        | PushRuleError::DefaultRule(_) => MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", e.to_string()),
    }
}

async fn stored(state: &AppState, user_id: &str) -> MatrixResult<Option<Value>> {
    state.engine.matrix_account_data(user_id, None, ACCOUNT_DATA_TYPE).await.map_err(from_core)
}

async fn store(state: &AppState, caller: &MatrixCaller, content: Value) -> MatrixResult<Json<Value>> {
    state.engine.matrix_put_account_data(caller, None, ACCOUNT_DATA_TYPE, content).await.map_err(|e| match e {
        CoreError::TooLarge { size, limit, .. } => MatrixError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "M_TOO_LARGE",
            format!("the push rules would take {size} bytes; the limit is {limit}"),
        ),
        other => from_core(other),
    })?;
    Ok(Json(json!({})))
}

async fn effective(state: &AppState, caller: &MatrixCaller) -> MatrixResult<Value> {
    Ok(rules::effective_ruleset(&caller.user_id, stored(state, &caller.user_id).await?.as_ref()))
}

async fn one_rule(state: &AppState, caller: &MatrixCaller, kind: &str, rule_id: &str) -> MatrixResult<Value> {
    let stored = stored(state, &caller.user_id).await?;
    rules::effective_rule(&caller.user_id, stored.as_ref(), kind, rule_id).map_err(push_error)
}

/// `GET /pushrules/`: every scope (only `global` exists).
pub async fn get_all(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    Ok(Json(effective(&state, &caller).await?))
}

/// `GET /pushrules/global/`.
pub async fn get_global(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    let mut all = effective(&state, &caller).await?;
    Ok(Json(all["global"].take()))
}

pub async fn get_rule(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((kind, rule_id)): Path<(String, String)>,
) -> MatrixResult<Json<Value>> {
    Ok(Json(one_rule(&state, &caller, &kind, &rule_id).await?))
}

pub async fn put_rule(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((kind, rule_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let body: Value = json_body(&body)?;
    let current = stored(&state, &caller.user_id).await?;
    let before = q.get("before").map(String::as_str);
    let after = q.get("after").map(String::as_str);
    let next = rules::put_rule(current.as_ref(), &kind, &rule_id, &body, before, after).map_err(push_error)?;
    store(&state, &caller, next).await
}

pub async fn delete_rule(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Path((kind, rule_id)): Path<(String, String)>,
) -> MatrixResult<Json<Value>> {
    let current = stored(&state, &caller.user_id).await?;
    let next = rules::delete_rule(current.as_ref(), &kind, &rule_id).map_err(push_error)?;
    store(&state, &caller, next).await
}

/// A rule's `enabled` or `actions`: read, or set (a predefined rule's too).
async fn get_attribute(
    state: &AppState,
    caller: &MatrixCaller,
    path: (String, String),
    attr: &str,
) -> MatrixResult<Json<Value>> {
    let rule = one_rule(state, caller, &path.0, &path.1).await?;
    Ok(Json(json!({ attr: rule[attr] })))
}

async fn put_attribute(
    state: &AppState,
    caller: &MatrixCaller,
    (kind, rule_id): (String, String),
    attr: &str,
    body: &Bytes,
) -> MatrixResult<Json<Value>> {
    let body: Value = json_body(body)?;
    let current = stored(state, &caller.user_id).await?;
    // An unknown rule is reported before a bad body.
    rules::effective_rule(&caller.user_id, current.as_ref(), &kind, &rule_id).map_err(push_error)?;
    let next = if attr == "enabled" {
        let enabled = match body.get("enabled") {
            Some(Value::Bool(enabled)) => *enabled,
            Some(_) => return Err(MatrixError::bad_json("enabled must be a boolean")),
            None => return Err(MatrixError::bad_json("enabled is required")),
        };
        rules::set_enabled(&caller.user_id, current.as_ref(), &kind, &rule_id, enabled)
    } else {
        rules::set_actions(&caller.user_id, current.as_ref(), &kind, &rule_id, body.get("actions"))
    };
    store(state, caller, next.map_err(push_error)?).await
}

/// The route of a rule's `enabled` or `actions`.
pub fn attribute(attr: &'static str) -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::get(move |State(state): State<Arc<AppState>>, Caller(caller): Caller, Path(path): Path<(String, String)>| async move {
        get_attribute(&state, &caller, path, attr).await
    })
    .put(
        move |State(state): State<Arc<AppState>>,
              Caller(caller): Caller,
              Path(path): Path<(String, String)>,
              body: Bytes| async move { put_attribute(&state, &caller, path, attr, &body).await },
    )
}
