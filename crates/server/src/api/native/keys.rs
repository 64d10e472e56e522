//! `/keys` (API keys) and `/tokens` (access tokens for identities).

use super::error::ApiResult;
use super::extract::{Auth, JsonBody};
use super::types::{ApiKeyView, CreateApiKey, CreateToken, TokenView};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrosync_core::sid::{Sid, SidKind};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/keys", tag = "credentials", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyView)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    let key = state.engine.create_api_key(&p, body.friendly_name).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "credentials", responses((status = 200, body = Vec<ApiKeyView>)))]
pub async fn list(State(state): State<Arc<AppState>>, Auth(p): Auth) -> ApiResult<Json<Vec<ApiKeyView>>> {
    Ok(Json(state.engine.api_keys(&p).await?.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/api/v1/keys/{sid}", tag = "credentials", params(("sid" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(sid): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(state.engine.api_key(&p, &sid).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/keys/{sid}", tag = "credentials", params(("sid" = String, Path)),
    responses((status = 204)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(sid): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_api_key(&p, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "credentials", request_body = CreateToken,
    responses((status = 201, body = TokenView), (status = 403, body = super::error::ErrorBody)))]
pub async fn mint(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let minted = match body.api_key {
        Some(key) => {
            let key = Sid::parse_kind(&key, SidKind::ApiKey).map_err(ferrosync_core::CoreError::from)?;
            state.engine.mint_token_with_key(&p, &key, &body.service, &body.identity, body.ttl).await?
        }
        None => state.engine.mint_token(&p, &body.service, &body.identity, body.ttl).await?,
    };
    Ok((
        StatusCode::CREATED,
        Json(TokenView {
            token: minted.token,
            identity: minted.identity,
            service_sid: minted.service_sid.to_string(),
            expires_at: minted.expires_at,
        }),
    ))
}
