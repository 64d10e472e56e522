//! The access token of a request: `Authorization: Bearer …`, or the deprecated
//! `access_token` query parameter.

use super::error::{MatrixError, from_core};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ferrosync_core::engine::MatrixCaller;
use std::sync::Arc;

/// The authenticated caller of a request.
pub struct Caller(pub MatrixCaller);

fn token_of(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = MatrixError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let token = token_of(parts).filter(|t| !t.is_empty()).ok_or_else(MatrixError::missing_token)?;
        match state.engine.matrix_caller(&token).await.map_err(from_core)? {
            Some(caller) => Ok(Caller(caller)),
            None => Err(MatrixError::unknown_token()),
        }
    }
}
