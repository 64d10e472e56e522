//! What clients read before they log in: where the server is, which versions it speaks, how
//! one logs in, and what an account may change.

use crate::api::http::origin;
use axum::Json;
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// The spec versions whose endpoints this face serves.
const VERSIONS: &[&str] =
    &["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"];

/// `/.well-known/matrix/client`: the server itself, at the address the client used.
pub async fn well_known(headers: HeaderMap) -> Json<Value> {
    let base = origin(&headers).unwrap_or_else(|| "http://localhost".into());
    Json(json!({ "m.homeserver": { "base_url": base } }))
}

pub async fn versions() -> Json<Value> {
    Json(json!({ "versions": VERSIONS, "unstable_features": {} }))
}

pub async fn login_flows() -> Json<Value> {
    Json(json!({ "flows": [{ "type": "m.login.password" }] }))
}

pub async fn capabilities(_caller: super::auth::Caller) -> Json<Value> {
    Json(json!({
        "capabilities": {
            "m.change_password": { "enabled": false },
            "m.set_displayname": { "enabled": true },
            "m.set_avatar_url": { "enabled": true },
            "m.3pid_changes": { "enabled": false },
            "m.get_login_token": { "enabled": false },
            "m.room_versions": { "default": "10", "available": { "10": "stable" } },
        }
    }))
}
