//! OpenID Connect discovery for the tokens GetOpenIdToken and GetOpenIdTokenForDeveloperIdentity
//! issue: the signing keys (`/.well-known/jwks.json`) and the configuration naming the issuer and
//! where the keys are (`/.well-known/openid-configuration`).

use super::error::{PROTOCOL, from_core};
use crate::api::aws::error::new_request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    match state.engine.openid_jwks().await {
        Ok(keys) => Json(keys).into_response(),
        Err(e) => from_core(e).into_response_for(PROTOCOL, &new_request_id()),
    }
}

/// The issuer is `[limits.cognito] openid_issuer`, as the tokens' `iss` says. The keys are
/// served here, so `jwks_uri` points at the origin the client addressed (which is the issuer
/// when the issuer is configured as this server's public URL).
pub async fn configuration(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Json<serde_json::Value> {
    let issuer = state.engine.limits().cognito.openid_issuer.clone();
    let origin = crate::api::http::origin(&headers).unwrap_or_else(|| issuer.trim_end_matches('/').to_owned());
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{origin}/.well-known/jwks.json"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "amr", "iat", "exp"],
    }))
}
