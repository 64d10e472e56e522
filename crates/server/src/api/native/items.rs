//! `/services/{service}/{lists|maps}/{id}/items[/{item}]`.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, IfMatch, JsonBody, PreferMinimal, QueryParams};
use super::objects::{kind_of, with_etag};
use super::services::{base_url, page_request};
use super::types::{AddListItem, CreateMapItem, ItemCreated, ItemView, PageQuery, PageView, WriteItem, Written};
use crate::api::http;
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use ferrosync_core::ErrorCode;
use ferrosync_core::engine::ItemPatch;
use ferrosync_core::model::{ItemKey, ObjectKind};
use ferrosync_core::page::Cursor;
use ferrosync_core::store::ItemWriteMode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;

fn container_kind(collection: &str) -> Result<ObjectKind, ApiError> {
    match kind_of(collection)? {
        k @ (ObjectKind::List | ObjectKind::Map) => Ok(k),
        k => Err(ApiError::new(ErrorCode::NotFound, format!("a {} has no items", k.as_str()))),
    }
}

fn item_key(kind: ObjectKind, raw: &str) -> Result<ItemKey, ApiError> {
    match kind {
        ObjectKind::List => raw.parse::<u64>().map(ItemKey::Index).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidField,
                format!("index: '{raw}' is not a list index (a non-negative integer)"),
            )
        }),
        _ => Ok(ItemKey::Key(raw.to_owned())),
    }
}

#[utoipa::path(post, path = "/api/v1/services/{service}/{collection}/{id}/items", tag = "items",
    request_body(content = Object, description = "lists: AddListItem; maps: CreateMapItem"),
    params(("service" = String, Path), ("collection" = String, Path, description = "lists or maps"), ("id" = String, Path),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer with the item's index (lists) and revision alone")),
    responses((status = 201, body = ItemCreated, description = "the item; its index and revision alone under `Prefer: return=minimal`",
            headers(("Location" = String, description = "the new item"), ("ETag" = String, description = "its revision"))),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
    PreferMinimal(minimal): PreferMinimal,
    OriginalUri(uri): OriginalUri,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let kind = container_kind(&collection)?;
    let field_error = |e: serde_json::Error| ApiError::new(ErrorCode::InvalidField, e.to_string());
    let item = match kind {
        ObjectKind::List => {
            let b: AddListItem = serde_json::from_value(body).map_err(field_error)?;
            state.engine.add_list_item(&p, &service, &id, b.data, b.ttl, b.collection_ttl).await?
        }
        _ => {
            let b: CreateMapItem = serde_json::from_value(body).map_err(field_error)?;
            let patch = ItemPatch { data: Some(b.data), ttl: b.ttl, collection_ttl: b.collection_ttl, if_match: None };
            state.engine.write_item(&p, &service, kind, &id, ItemKey::Key(b.key), patch, ItemWriteMode::Create).await?.0
        }
    };
    let name = item.index.map_or_else(|| item.key.clone().unwrap_or_default(), |i| i.to_string());
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), utf8_percent_encode(&name, NON_ALPHANUMERIC));
    let mut response = if minimal {
        let answer = ItemCreated::Minimal(Written { index: item.index, revision: item.revision });
        http::minimal_applied(with_etag(StatusCode::CREATED, item.revision, answer))
    } else {
        with_etag(StatusCode::CREATED, item.revision, ItemCreated::Item(item.into()))
    };
    // The item's address, as a creation's answer gives it (RFC 9110): a list item's index is
    // the server's to choose.
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}/{id}/items", tag = "items",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), PageQuery),
    responses((status = 200, body = PageView<ItemView>)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<ItemView>>> {
    let kind = container_kind(&collection)?;
    let page = page_request(&state, q, |s| {
        Ok(
            match item_key(kind, s)
                .map_err(|_| ApiError::new(ErrorCode::InvalidField, format!("from: '{s}' is not a list index")))?
            {
                ItemKey::Index(i) => Cursor::Index(i),
                ItemKey::Key(k) => Cursor::Key(k),
            },
        )
    })?;
    let size = page.limit;
    let result = state.engine.items(&p, &service, kind, &id, page).await?;
    Ok(Json(super::types::page_view(result, size, &base_url(&headers, &uri))))
}

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}/{id}/items/{item}", tag = "items",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("item" = String, Path, description = "list index or map key")),
    responses((status = 200, body = ItemView), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, item)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let kind = container_kind(&collection)?;
    let item = state.engine.item(&p, &service, kind, &id, &item_key(kind, &item)?).await?;
    Ok(with_etag(StatusCode::OK, item.revision, ItemView::from(item)))
}

/// `PUT` sets an item: list items must exist; map items are created or replaced. With
/// If-Match the item must exist at that revision.
#[utoipa::path(put, path = "/api/v1/services/{service}/{collection}/{id}/items/{item}", tag = "items", request_body = WriteItem,
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("item" = String, Path),
        ("If-Match" = Option<String>, Header),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 (201 when created) with the revision in ETag, without the body")),
    responses((status = 200, body = ItemView), (status = 201, body = ItemView),
        (status = 204, description = "set, under `Prefer: return=minimal`", headers(("ETag" = String, description = "the new revision"))),
        (status = 412, body = super::error::ErrorBody)))]
pub async fn set(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, item)): Path<(String, String, String, String)>,
    IfMatch(if_match): IfMatch,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<WriteItem>,
) -> ApiResult<Response> {
    let kind = container_kind(&collection)?;
    let mode = if kind == ObjectKind::List { ItemWriteMode::Update } else { ItemWriteMode::Upsert };
    let patch = ItemPatch { data: body.data, ttl: body.ttl, collection_ttl: body.collection_ttl, if_match };
    let (item, created) = state.engine.write_item(&p, &service, kind, &id, item_key(kind, &item)?, patch, mode).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    if minimal {
        return Ok(http::minimal(status, item.revision));
    }
    Ok(with_etag(status, item.revision, ItemView::from(item)))
}

#[utoipa::path(delete, path = "/api/v1/services/{service}/{collection}/{id}/items/{item}", tag = "items",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("item" = String, Path),
        ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 412, body = super::error::ErrorBody)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, item)): Path<(String, String, String, String)>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    let kind = container_kind(&collection)?;
    state.engine.remove_item(&p, &service, kind, &id, item_key(kind, &item)?, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}
