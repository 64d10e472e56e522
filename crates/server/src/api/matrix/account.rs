//! Accounts: register (with user-interactive auth: `m.login.dummy` or
//! `m.login.registration_token`, by policy), username availability, password login, whoami,
//! logout and logout of every device.

use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use super::{MatrixSettings, RegistrationPolicy};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use ferrosync_core::auth::random_hex;
use ferrosync_core::engine::{MatrixRegistration, MatrixSession};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A JSON body: an empty one reads as `{}` (clients send bodiless POSTs with a JSON content
/// type); malformed JSON is `M_NOT_JSON`, a wrong member `M_BAD_JSON` naming it.
pub fn json_body<T: DeserializeOwned>(body: &Bytes) -> MatrixResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", format!("Content not JSON: {e}")))?;
    if !value.is_object() {
        return Err(MatrixError::bad_json("The body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| MatrixError::bad_json(e.to_string()))
}

#[derive(Deserialize)]
struct AuthData {
    #[serde(rename = "type")]
    kind: Option<String>,
    session: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
struct RegisterBody {
    username: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    #[serde(default)]
    inhibit_login: bool,
    auth: Option<AuthData>,
}

fn session_json(s: &MatrixSession, settings: &MatrixSettings) -> Value {
    json!({
        "user_id": s.user_id,
        "access_token": s.access_token,
        "device_id": s.device_id,
        "home_server": settings.server_name,
    })
}

/// The stage registration asks for under the policy; `None` when registration is closed.
fn stage(settings: &MatrixSettings) -> Option<&'static str> {
    match settings.registration {
        RegistrationPolicy::Open => Some("m.login.dummy"),
        RegistrationPolicy::Token => Some("m.login.registration_token"),
        RegistrationPolicy::Closed => None,
    }
}

/// The 401 that tells a client which stage to complete.
fn auth_required(stage: &str, session: Option<String>, error: Option<MatrixError>) -> MatrixError {
    let session = session.unwrap_or_else(|| random_hex(12));
    let base =
        error.unwrap_or_else(|| MatrixError::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", "Authentication required"));
    MatrixError { status: StatusCode::UNAUTHORIZED, ..base }
        .with("flows", json!([{ "stages": [stage] }]))
        .with("params", json!({}))
        .with("session", json!(session))
        .with("completed", json!([]))
}

#[derive(Deserialize)]
pub struct RegisterQuery {
    kind: Option<String>,
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    Query(q): Query<RegisterQuery>,
    body: Bytes,
) -> MatrixResult<Json<Value>> {
    let settings = &state.settings.matrix;
    if q.kind.as_deref() == Some("guest") {
        return Err(MatrixError::new(StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled"));
    }
    if let Some(kind) = q.kind.as_deref().filter(|k| *k != "user") {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("kind must be user, not '{kind}'"),
        ));
    }
    let Some(stage) = stage(settings) else {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    };
    let b: RegisterBody = json_body(&body)?;
    // Availability is checked before the auth stage, as the spec asks, so a client learns of a
    // taken name before completing it.
    if let Some(name) = b.username.as_deref() {
        let available = state.engine.matrix_username_available(&settings.server_name, name).await.map_err(from_core)?;
        if !available {
            return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_USER_IN_USE", "User ID already taken."));
        }
    }
    let Some(auth) = b.auth else { return Err(auth_required(stage, None, None)) };
    match auth.kind.as_deref() {
        Some(k) if k == stage => {}
        _ => return Err(auth_required(stage, auth.session, None)),
    }
    if stage == "m.login.registration_token" {
        let wanted = settings.registration_token.as_deref().unwrap_or_default();
        let given = auth.token.as_deref().unwrap_or_default();
        if wanted.is_empty() || !bool::from(wanted.as_bytes().ct_eq(given.as_bytes())) {
            let refused = MatrixError::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", "Invalid registration token");
            return Err(auth_required(stage, auth.session, Some(refused)));
        }
    }
    let registration = MatrixRegistration {
        localpart: b.username.as_deref(),
        password: b.password.as_deref(),
        device_id: b.device_id.as_deref(),
        device_name: b.initial_device_display_name.as_deref(),
    };
    let session = state.engine.matrix_register(&settings.server_name, registration).await.map_err(from_core)?;
    if b.inhibit_login {
        // The device made for the registration is not handed out, so it goes again.
        if let Ok(Some(caller)) = state.engine.matrix_caller(&session.access_token).await {
            let _ = state.engine.matrix_logout(&caller, false).await;
        }
        return Ok(Json(json!({ "user_id": session.user_id, "home_server": settings.server_name })));
    }
    Ok(Json(session_json(&session, settings)))
}

pub async fn available(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> MatrixResult<Json<Value>> {
    let settings = &state.settings.matrix;
    let name = q.get("username").ok_or_else(|| MatrixError::missing_param("Missing username"))?;
    if state.engine.matrix_username_available(&settings.server_name, name).await.map_err(from_core)? {
        Ok(Json(json!({ "available": true })))
    } else {
        Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_USER_IN_USE", "User ID already taken."))
    }
}

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(rename = "type")]
    kind: String,
    identifier: Option<Identifier>,
    /// The deprecated form of `identifier`.
    user: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
}

pub async fn login(State(state): State<Arc<AppState>>, body: Bytes) -> MatrixResult<Json<Value>> {
    let settings = &state.settings.matrix;
    let b: LoginBody = json_body(&body)?;
    if b.kind != "m.login.password" {
        return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", format!("Unknown login type {}", b.kind)));
    }
    let user = match (&b.identifier, &b.user) {
        (Some(Identifier { kind, user: Some(user) }), _) if kind == "m.id.user" => user.clone(),
        (Some(Identifier { kind, .. }), _) if kind != "m.id.user" => {
            return Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("Unknown identifier type {kind}"),
            ));
        }
        (None, Some(user)) => user.clone(),
        _ => return Err(MatrixError::missing_param("Missing identifier.user")),
    };
    let password = b.password.ok_or_else(|| MatrixError::missing_param("Missing password"))?;
    let session = state
        .engine
        .matrix_login(
            &settings.server_name,
            &user,
            &password,
            b.device_id.as_deref(),
            b.initial_device_display_name.as_deref(),
        )
        .await
        .map_err(from_core)?;
    Ok(Json(session_json(&session, settings)))
}

pub async fn whoami(Caller(caller): Caller) -> Json<Value> {
    Json(json!({ "user_id": caller.user_id, "device_id": caller.device_id, "is_guest": false }))
}

pub async fn logout(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    state.engine.matrix_logout(&caller, false).await.map_err(from_core)?;
    Ok(Json(json!({})))
}

pub async fn logout_all(State(state): State<Arc<AppState>>, Caller(caller): Caller) -> MatrixResult<Json<Value>> {
    state.engine.matrix_logout(&caller, true).await.map_err(from_core)?;
    Ok(Json(json!({})))
}
