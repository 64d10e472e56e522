//! `/services`: create, read, update, delete and list services.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, JsonBody, QueryParams};
use super::types::{CreateService, PageQuery, PageView, ServiceView, UpdateService};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use ferrosync_core::engine::{ServicePatch, ServiceSpec};
use ferrosync_core::page::{Cursor, PageRequest};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/services", tag = "services", request_body = CreateService,
    responses((status = 201, body = ServiceView), (status = 400, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    JsonBody(body): JsonBody<CreateService>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    let spec = ServiceSpec {
        unique_name: body.unique_name,
        friendly_name: body.friendly_name,
        acl_enabled: body.acl_enabled,
        ..Default::default()
    };
    let service = state.engine.create_service(&p, spec).await?;
    Ok((StatusCode::CREATED, Json(service.into())))
}

#[utoipa::path(get, path = "/api/v1/services", tag = "services", params(PageQuery),
    responses((status = 200, body = PageView<ServiceView>)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    QueryParams(q): QueryParams<PageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<ServiceView>>> {
    let page = page_request(&state, q, |s| Ok(Cursor::Key(s.to_owned())))?;
    let size = page.limit;
    let result = state.engine.services(&p, page).await?;
    Ok(Json(super::types::page_view(result, size, &base_url(&headers, &uri))))
}

#[utoipa::path(get, path = "/api/v1/services/{service}", tag = "services",
    params(("service" = String, Path, description = "Service SID or unique name")),
    responses((status = 200, body = ServiceView), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
) -> ApiResult<Json<ServiceView>> {
    Ok(Json(state.engine.service(&p, &service).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/services/{service}", tag = "services", request_body = UpdateService,
    params(("service" = String, Path, description = "Service SID or unique name")),
    responses((status = 200, body = ServiceView)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
    JsonBody(body): JsonBody<UpdateService>,
) -> ApiResult<Json<ServiceView>> {
    let patch = ServicePatch {
        unique_name: body.unique_name.map(|n| (!n.is_empty()).then_some(n)),
        friendly_name: body.friendly_name.map(|n| (!n.is_empty()).then_some(n)),
        acl_enabled: body.acl_enabled,
        ..Default::default()
    };
    Ok(Json(state.engine.update_service(&p, &service, patch).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/services/{service}", tag = "services",
    params(("service" = String, Path, description = "Service SID or unique name")),
    responses((status = 204)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_service(&p, &service).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Builds a core page request from query parameters; `from` is parsed by the caller's rule.
pub fn page_request(
    state: &AppState,
    q: PageQuery,
    parse_from: impl Fn(&str) -> Result<Cursor, ApiError>,
) -> ApiResult<PageRequest> {
    let from = q.from.as_deref().map(parse_from).transpose()?;
    Ok(PageRequest::new(q.order, from, q.page_token.as_deref(), q.page_size, state.engine.limits())?)
}

/// The absolute URL of this request's path, honouring proxies' forwarded headers.
pub fn base_url(headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    format!("{}{}", crate::api::http::origin(headers).unwrap_or_default(), uri.path())
}
