//! `/services/{service}/{collection}[/{id}]`: documents, lists, maps and streams share one set
//! of handlers; the collection segment names the kind.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, IfMatch, JsonBody, PreferMinimal, QueryParams};
use super::services::{base_url, page_request};
use super::types::{ObjectView, OpenObject, PageQuery, PageView, UpdateObject};
use crate::api::http::{self, json_with_etag};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ferrosync_core::ErrorCode;
use ferrosync_core::engine::{ObjectPatch, OpenRequest};
use ferrosync_core::model::{ObjectKind, SyncObject};
use ferrosync_core::page::Cursor;
use std::sync::Arc;

/// Maps the collection path segment to a kind.
pub fn kind_of(collection: &str) -> Result<ObjectKind, ApiError> {
    match collection {
        "documents" => Ok(ObjectKind::Document),
        "lists" => Ok(ObjectKind::List),
        "maps" => Ok(ObjectKind::Map),
        "streams" => Ok(ObjectKind::Stream),
        other => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("unknown collection '{other}': use documents, lists, maps or streams"),
        )),
    }
}

pub use crate::api::http::with_etag;

#[utoipa::path(post, path = "/api/v1/services/{service}/{collection}", tag = "objects", request_body = OpenObject,
    params(("service" = String, Path), ("collection" = String, Path, description = "documents, lists, maps or streams")),
    responses((status = 201, description = "created", body = ObjectView), (status = 200, description = "opened", body = ObjectView),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn open(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection)): Path<(String, String)>,
    JsonBody(body): JsonBody<OpenObject>,
) -> ApiResult<Response> {
    let kind = kind_of(&collection)?;
    let req =
        OpenRequest { sid: body.sid, unique_name: body.unique_name, mode: body.mode, ttl: body.ttl, data: body.data };
    let (object, created) = state.engine.open(&p, &service, kind, req).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(object_response(status, object))
}

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}", tag = "objects",
    params(("service" = String, Path), ("collection" = String, Path), PageQuery),
    responses((status = 200, body = PageView<ObjectView>)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection)): Path<(String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<ObjectView>>> {
    let kind = kind_of(&collection)?;
    let page = page_request(&state, q, |s| Ok(Cursor::Key(s.to_owned())))?;
    let size = page.limit;
    let result = state.engine.objects(&p, &service, kind, page).await?;
    Ok(Json(super::types::page_view(result, size, &base_url(&headers, &uri))))
}

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}/{id}", tag = "objects",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path, description = "SID or unique name")),
    responses((status = 200, body = ObjectView, headers(("ETag" = String, description = "the revision"))), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let object = state.engine.object(&p, &service, kind_of(&collection)?, &id).await?;
    Ok(object_response(StatusCode::OK, object))
}

#[utoipa::path(put, path = "/api/v1/services/{service}/{collection}/{id}", tag = "objects", request_body = UpdateObject,
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "expected revision"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with the revision in ETag, without the body")),
    responses((status = 200, body = ObjectView, headers(("ETag" = String, description = "the new revision"))),
        (status = 204, description = "updated, under `Prefer: return=minimal`", headers(("ETag" = String, description = "the new revision"))),
        (status = 412, body = super::error::ErrorBody)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
    IfMatch(if_match): IfMatch,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<UpdateObject>,
) -> ApiResult<Response> {
    let patch = ObjectPatch { data: body.data, ttl: body.ttl, if_match };
    let object = state.engine.update_object(&p, &service, kind_of(&collection)?, &id, patch).await?;
    Ok(if minimal { http::minimal(StatusCode::OK, object.revision) } else { object_response(StatusCode::OK, object) })
}

#[utoipa::path(delete, path = "/api/v1/services/{service}/{collection}/{id}", tag = "objects",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "expected revision")),
    responses((status = 204), (status = 412, body = super::error::ErrorBody)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    state.engine.remove_object(&p, &service, kind_of(&collection)?, &id, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An object as the body, written directly rather than through serde: every write over HTTP
/// answers with one.
fn object_response(status: StatusCode, object: SyncObject) -> Response {
    json_with_etag(status, object.revision, ObjectView::from(object).to_json())
}
