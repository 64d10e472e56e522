//! `/services/{service}/indexes[/{name}]`: a service's indexes over its Maps, and instant
//! queries on them.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, JsonBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferrosync_core::CoreError;
use ferrosync_core::index::{IndexDef, IndexSource};
use ferrosync_core::log::SinceToken;
use ferrosync_core::page::PageRequest;
use std::sync::Arc;

pub use ferrosync_protocol::query::{IndexView, PutIndex, QueryBody, QueryItemView, QueryView};

#[utoipa::path(get, path = "/api/v1/services/{service}/indexes", tag = "indexes",
    params(("service" = String, Path, description = "Service SID or unique name")),
    responses((status = 200, body = Vec<IndexView>)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
) -> ApiResult<Json<Vec<IndexView>>> {
    Ok(Json(state.engine.indexes(&p, &service).await?.into_iter().map(IndexView::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/services/{service}/indexes/{name}", tag = "indexes",
    params(("service" = String, Path, description = "Service SID or unique name"), ("name" = String, Path)),
    responses((status = 200, body = IndexView), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, name)): Path<(String, String)>,
) -> ApiResult<Json<IndexView>> {
    Ok(Json(state.engine.index(&p, &service, &name).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/services/{service}/indexes/{name}", tag = "indexes", request_body = PutIndex,
    params(("service" = String, Path, description = "Service SID or unique name"), ("name" = String, Path)),
    responses((status = 200, body = IndexView), (status = 400, body = super::error::ErrorBody)))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<PutIndex>,
) -> ApiResult<Json<IndexView>> {
    let source = match (body.map, body.map_prefix) {
        (Some(m), None) => IndexSource::Map(m),
        (None, Some(prefix)) => IndexSource::MapPrefix(prefix),
        _ => return Err(CoreError::invalid("map", "give one of map and map_prefix").into()),
    };
    let def = IndexDef { name, source, fields: body.fields };
    Ok(Json(state.engine.put_index(&p, &service, def).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/services/{service}/indexes/{name}", tag = "indexes",
    params(("service" = String, Path, description = "Service SID or unique name"), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.engine.remove_index(&p, &service, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/services/{service}/indexes/{name}/query", tag = "indexes",
    request_body = QueryBody,
    params(("service" = String, Path, description = "Service SID or unique name"), ("name" = String, Path)),
    responses((status = 200, body = QueryView), (status = 400, body = super::error::ErrorBody)))]
pub async fn query(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<QueryBody>,
) -> ApiResult<Json<QueryView>> {
    let engine = &state.engine;
    let page = PageRequest::new(body.order, None, body.page_token.as_deref(), body.page_size, engine.limits())
        .map_err(ApiError::from)?;
    let result = engine.query(&p, &service, &name, &body.query, page).await?;
    let svc = engine.service(&p, &service).await?;
    let since = SinceToken { epoch: engine.store().epoch().to_owned(), service_sid: svc.sid, seq: result.seq };
    Ok(Json(QueryView { items: result.items, next_page_token: result.next.map(|t| t.encode()), since: since.encode() }))
}
