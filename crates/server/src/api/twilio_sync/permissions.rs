//! `/Services/{ServiceSid}/{Documents|Lists|Maps}/{Sid}/Permissions[/{Identity}]`.

use super::error::fail;
use super::objects::kind_of;
use super::services::{MAX_PAGE_SIZE, service_sid};
use super::types::{PermissionView, Urls};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{Subject, TwilioError, TwilioResult};
use crate::api::twilio::paging::{Listing, page_in_memory};
use crate::api::twilio::params::{Form, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use ferrosync_core::model::{ObjectKind, Permission};
use ferrosync_core::page::{Cursor, Order};
use serde_json::Value;
use std::sync::Arc;

/// Streams have no permissions.
fn kind(collection: &str, path: &str) -> TwilioResult<ObjectKind> {
    match kind_of(collection, path)? {
        ObjectKind::Stream => Err(TwilioError::not_found(path)),
        k => Ok(k),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let path = uri.path();
    let kind = kind(&collection, path)?;
    let base = format!("{}{path}", crate::api::http::origin(&headers).unwrap_or_default());
    let listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let sid = service_sid(&state, &p, &service, path).await?;
    let all = state.engine.permissions(&p, &service, kind, &id).await.map_err(fail(path, Subject::Other))?;
    let by_identity = |perm: &Permission| Cursor::Key(perm.identity.clone());
    let fetched = listing
        .fetch(Order::Asc, None, false, by_identity, |req| async move { Ok(page_in_memory(&all, by_identity, &req)) })
        .await?;
    Ok(Json(listing.respond("permissions", fetched.map(|perm| PermissionView::new(&urls, &sid, kind, perm)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<PermissionView>> {
    let path = uri.path();
    let kind = kind(&collection, path)?;
    let sid = service_sid(&state, &p, &service, path).await?;
    let perm = state.engine.permission(&p, &service, kind, &id, &identity).await.map_err(fail(path, Subject::Other))?;
    Ok(Json(PermissionView::new(&urls, &sid, kind, perm)))
}

/// Creates or replaces the grant; `Read`, `Write` and `Manage` are all required.
pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Json<PermissionView>> {
    let path = uri.path();
    let kind = kind(&collection, path)?;
    let flag = |name: &str| f.bool(name)?.ok_or_else(|| TwilioError::invalid(name, "is required (true or false)"));
    let (read, write, manage) = (flag("Read")?, flag("Write")?, flag("Manage")?);
    let sid = service_sid(&state, &p, &service, path).await?;
    let perm = state
        .engine
        .set_permission(&p, &service, kind, &id, &identity, read, write, manage)
        .await
        .map_err(fail(path, Subject::Other))?;
    Ok(Json(PermissionView::new(&urls, &sid, kind, perm)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, collection, id, identity)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    let path = uri.path();
    let kind = kind(&collection, path)?;
    state.engine.remove_permission(&p, &service, kind, &id, &identity).await.map_err(fail(path, Subject::Other))?;
    Ok(StatusCode::NO_CONTENT)
}
