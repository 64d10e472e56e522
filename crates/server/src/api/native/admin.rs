//! `/admin/…`: read-only views for operators (the web console) of what the Cognito and Matrix
//! faces keep, which their own wire APIs show only to their own clients (SigV4-signed calls
//! per pool, Matrix users' access tokens). Server credentials only: the account or an API key.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, QueryParams};
use super::services::base_url;
use super::types::{PageMeta, PageView};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use ferrosync_core::ErrorCode;
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{CognitoIdentity, Dataset, IdentityPool, Record};
use ferrosync_core::matrix::MatrixUser;
use ferrosync_core::model::ObjectKind;
use ferrosync_core::page::{Page, PageRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Rows per page of every admin listing: at most what the Cognito operations allow.
const MAX_PAGE_SIZE: u32 = 60;
const DEFAULT_PAGE_SIZE: u32 = 50;

/// Paging of the admin listings (always in id order).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminPageQuery {
    /// 1 to 60, default 50.
    pub page_size: Option<u32>,
    /// Continue from a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl AdminPageQuery {
    fn size(&self) -> ApiResult<u32> {
        match self.page_size.unwrap_or(DEFAULT_PAGE_SIZE) {
            n @ 1..=MAX_PAGE_SIZE => Ok(n),
            n => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("page_size: must be between 1 and {MAX_PAGE_SIZE}, got {n}"),
            )),
        }
    }

    fn request(&self, state: &AppState) -> ApiResult<PageRequest> {
        Ok(PageRequest::new(None, None, self.page_token.as_deref(), Some(self.size()?), state.engine.limits())?)
    }
}

/// An identity pool and its Cognito Sync side, in brief.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CognitoPoolView {
    /// `<region>:<uuid>`.
    pub id: String,
    pub name: String,
    /// The service holding the pool's datasets (each dataset is a Map of it).
    pub service_sid: String,
    pub allow_unauthenticated_identities: bool,
    pub developer_provider_name: Option<String>,
    /// Provider name → application id.
    pub supported_login_providers: BTreeMap<String, String>,
    pub date_created: String,
    pub date_updated: String,
}

impl From<IdentityPool> for CognitoPoolView {
    fn from(p: IdentityPool) -> Self {
        CognitoPoolView {
            id: p.id,
            name: p.spec.name,
            service_sid: p.service_sid.to_string(),
            allow_unauthenticated_identities: p.spec.allow_unauthenticated_identities,
            developer_provider_name: p.spec.developer_provider_name,
            supported_login_providers: p.spec.supported_login_providers,
            date_created: p.date_created.to_rfc3339(),
            date_updated: p.date_updated.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CognitoLoginView {
    pub provider: String,
    pub user: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CognitoIdentityView {
    pub id: String,
    pub pool_id: String,
    pub logins: Vec<CognitoLoginView>,
    /// Set when the identity lost its last login or was merged into another one.
    pub disabled: bool,
    pub merged_into: Option<String>,
    pub date_created: String,
    pub date_updated: String,
}

impl From<CognitoIdentity> for CognitoIdentityView {
    fn from(i: CognitoIdentity) -> Self {
        CognitoIdentityView {
            id: i.id,
            pool_id: i.pool_id,
            logins: i.logins.into_iter().map(|l| CognitoLoginView { provider: l.provider, user: l.user }).collect(),
            disabled: i.disabled,
            merged_into: i.merged_into,
            date_created: i.date_created.to_rfc3339(),
            date_updated: i.date_updated.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CognitoDatasetView {
    pub name: String,
    pub identity_id: String,
    pub pool_id: String,
    /// The Map of the pool's service holding the records.
    pub map_sid: Option<String>,
    pub sync_count: u64,
    /// Live records (tombstones are not counted).
    pub num_records: u64,
    /// UTF-8 bytes of the live records' keys and values.
    pub data_storage: u64,
    pub last_modified_by: String,
    pub date_created: String,
    pub date_modified: String,
}

impl From<Dataset> for CognitoDatasetView {
    fn from(d: Dataset) -> Self {
        CognitoDatasetView {
            name: d.name,
            identity_id: d.identity_id,
            pool_id: d.pool_id,
            map_sid: d.map_sid.map(|s| s.to_string()),
            sync_count: d.sync_count,
            num_records: d.num_records,
            data_storage: d.data_storage,
            last_modified_by: d.last_modified_by,
            date_created: d.date_created.to_rfc3339(),
            date_modified: d.date_modified.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CognitoRecordView {
    pub key: String,
    /// `null` for a removed record (a tombstone kept for clients that synced it).
    pub value: Option<String>,
    pub deleted: bool,
    pub sync_count: u64,
    pub last_modified: String,
    pub last_modified_by: String,
    pub device_last_modified: Option<String>,
}

impl From<Record> for CognitoRecordView {
    fn from(r: Record) -> Self {
        CognitoRecordView {
            deleted: r.value.is_none(),
            key: r.key,
            value: r.value,
            sync_count: r.sync_count,
            last_modified: r.last_modified.to_rfc3339(),
            last_modified_by: r.last_modified_by,
            device_last_modified: r.device_last_modified.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatrixUserView {
    /// `@localpart:server`.
    pub user_id: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub deactivated: bool,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    pub date_created: String,
}

impl From<MatrixUser> for MatrixUserView {
    fn from(u: MatrixUser) -> Self {
        MatrixUserView {
            user_id: u.user_id,
            display_name: u.display_name,
            avatar_url: u.avatar_url,
            deactivated: u.deactivated,
            has_password: u.password_hash.is_some(),
            date_created: u.date_created.to_rfc3339(),
        }
    }
}

/// A room as the public room directory describes rooms, whether published there or not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatrixRoomView {
    pub room_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub canonical_alias: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    pub num_joined_members: u64,
    pub join_rule: String,
    pub world_readable: bool,
    pub guest_can_join: bool,
    /// Listed in the public room directory.
    pub published: bool,
}

/// Refuses identities (access tokens, Cognito credentials) before the engine is asked.
fn operator(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "the admin endpoints need server credentials (the account or an API key)",
        ))
    }
}

/// A native page from a core page of `S`, viewed as `T`.
fn page_of<S, T: From<S>>(page: Page<S>, size: u32, headers: &HeaderMap, uri: &axum::http::Uri) -> Json<PageView<T>> {
    Json(super::types::page_view(page, size, &base_url(headers, uri)))
}

/// A native page whose next token the engine already gave (listings it pages itself).
fn encoded_page<T>(
    items: Vec<T>,
    next: Option<String>,
    size: u32,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> PageView<T> {
    let url = next.as_ref().map(|t| format!("{}?page_size={size}&page_token={t}", base_url(headers, uri)));
    PageView { items, meta: PageMeta { page_size: size, next_page_token: next, next_page_url: url } }
}

#[utoipa::path(get, path = "/api/v1/admin/cognito/pools", tag = "admin", params(AdminPageQuery),
    responses((status = 200, body = PageView<CognitoPoolView>), (status = 403, body = super::error::ErrorBody)))]
pub async fn cognito_pools(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<CognitoPoolView>>> {
    operator(&p)?;
    let size = q.size()?;
    let page = state.engine.identity_pools(&p, size, q.page_token.as_deref()).await?;
    let next = page.next.map(|t| t.encode());
    let items = page.items.into_iter().map(Into::into).collect();
    Ok(Json(encoded_page(items, next, size, &headers, &uri)))
}

#[utoipa::path(get, path = "/api/v1/admin/cognito/pools/{pool}", tag = "admin",
    params(("pool" = String, Path, description = "identity pool id")),
    responses((status = 200, body = CognitoPoolView), (status = 404, body = super::error::ErrorBody)))]
pub async fn cognito_pool(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(pool): Path<String>,
) -> ApiResult<Json<CognitoPoolView>> {
    operator(&p)?;
    Ok(Json(state.engine.identity_pool(&p, &pool).await?.into()))
}

#[utoipa::path(get, path = "/api/v1/admin/cognito/pools/{pool}/identities", tag = "admin",
    params(("pool" = String, Path, description = "identity pool id"), AdminPageQuery),
    responses((status = 200, body = PageView<CognitoIdentityView>), (status = 404, body = super::error::ErrorBody)))]
pub async fn cognito_identities(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(pool): Path<String>,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<CognitoIdentityView>>> {
    operator(&p)?;
    let size = q.size()?;
    let page = state.engine.cognito_identities(&p, &pool, size, q.page_token.as_deref(), false).await?;
    let next = page.next.map(|t| t.encode());
    let items = page.items.into_iter().map(Into::into).collect();
    Ok(Json(encoded_page(items, next, size, &headers, &uri)))
}

#[utoipa::path(get, path = "/api/v1/admin/cognito/pools/{pool}/identities/{identity}/datasets", tag = "admin",
    params(("pool" = String, Path), ("identity" = String, Path, description = "identity id"), AdminPageQuery),
    responses((status = 200, body = PageView<CognitoDatasetView>), (status = 404, body = super::error::ErrorBody)))]
pub async fn cognito_datasets(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((pool, identity)): Path<(String, String)>,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<CognitoDatasetView>>> {
    operator(&p)?;
    let size = q.size()?;
    // An identity of another pool (or none) is NotFound, not an empty list.
    let found = state.engine.cognito_identity(&p, &identity).await?;
    if found.pool_id != pool {
        return Err(ApiError::new(ErrorCode::NotFound, format!("identity {identity} is not in pool {pool}")));
    }
    let page = state.engine.datasets(&p, &pool, &identity, Some(size), q.page_token.as_deref()).await?;
    let next = page.next.map(|t| t.encode());
    let items = page.items.into_iter().map(Into::into).collect();
    Ok(Json(encoded_page(items, next, size, &headers, &uri)))
}

/// A dataset's records, tombstones included, by key: the items of its Map, read as they are
/// (unlike ListRecords, this opens no sync session and counts in no usage).
#[utoipa::path(get, path = "/api/v1/admin/cognito/pools/{pool}/identities/{identity}/datasets/{dataset}/records", tag = "admin",
    params(("pool" = String, Path), ("identity" = String, Path), ("dataset" = String, Path, description = "dataset name"), AdminPageQuery),
    responses((status = 200, body = PageView<CognitoRecordView>), (status = 404, body = super::error::ErrorBody)))]
pub async fn cognito_records(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((pool, identity, dataset)): Path<(String, String, String)>,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<CognitoRecordView>>> {
    operator(&p)?;
    let page = q.request(&state)?;
    let size = page.limit;
    let pool = state.engine.identity_pool(&p, &pool).await?;
    let found = state.engine.dataset(&p, &pool.id, &identity, &dataset).await?;
    let Some(map) = found.map_sid else {
        return Ok(page_of(Page::<Record> { items: Vec::new(), next: None }, size, &headers, &uri));
    };
    let items = state.engine.items(&p, pool.service_sid.as_str(), ObjectKind::Map, map.as_str(), page).await?;
    let records = items.items.iter().map(Record::from_item).collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(Page { items: records, next: items.next }, size, &headers, &uri))
}

#[utoipa::path(get, path = "/api/v1/admin/matrix/users", tag = "admin", params(AdminPageQuery),
    responses((status = 200, body = PageView<MatrixUserView>), (status = 403, body = super::error::ErrorBody)))]
pub async fn matrix_users(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<MatrixUserView>>> {
    operator(&p)?;
    let page = q.request(&state)?;
    let size = page.limit;
    Ok(page_of(state.engine.matrix_users(&p, page).await?, size, &headers, &uri))
}

#[utoipa::path(get, path = "/api/v1/admin/matrix/rooms", tag = "admin", params(AdminPageQuery),
    responses((status = 200, body = PageView<MatrixRoomView>), (status = 403, body = super::error::ErrorBody)))]
pub async fn matrix_rooms(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    QueryParams(q): QueryParams<AdminPageQuery>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<PageView<MatrixRoomView>>> {
    operator(&p)?;
    let page = q.request(&state)?;
    let size = page.limit;
    let rooms = state.engine.matrix_rooms(&p, page).await?;
    let items = rooms
        .items
        .into_iter()
        .map(serde_json::from_value::<MatrixRoomView>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("a room's description is malformed: {e}")))?;
    let next = rooms.next.map(|t| t.encode());
    Ok(Json(encoded_page(items, next, size, &headers, &uri)))
}
