//! `/services/{service}/{collection}/{id}/permissions[/{identity}]`.

use super::error::ApiResult;
use super::extract::{Auth, JsonBody};
use super::objects::kind_of;
use super::types::{PermissionView, SetPermission};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}/{id}/permissions", tag = "permissions",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<PermissionView>)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Vec<PermissionView>>> {
    let list = state.engine.permissions(&p, &service, kind_of(&collection)?, &id).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/api/v1/services/{service}/{collection}/{id}/permissions/{identity}", tag = "permissions",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("identity" = String, Path)),
    responses((status = 200, body = PermissionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
) -> ApiResult<Json<PermissionView>> {
    Ok(Json(state.engine.permission(&p, &service, kind_of(&collection)?, &id, &identity).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/services/{service}/{collection}/{id}/permissions/{identity}", tag = "permissions",
    request_body = SetPermission,
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("identity" = String, Path)),
    responses((status = 200, body = PermissionView)))]
pub async fn set(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<SetPermission>,
) -> ApiResult<Json<PermissionView>> {
    let kind = kind_of(&collection)?;
    let perm =
        state.engine.set_permission(&p, &service, kind, &id, &identity, body.read, body.write, body.manage).await?;
    Ok(Json(perm.into()))
}

#[utoipa::path(delete, path = "/api/v1/services/{service}/{collection}/{id}/permissions/{identity}", tag = "permissions",
    params(("service" = String, Path), ("collection" = String, Path), ("id" = String, Path), ("identity" = String, Path)),
    responses((status = 204)))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    state.engine.remove_permission(&p, &service, kind_of(&collection)?, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}
