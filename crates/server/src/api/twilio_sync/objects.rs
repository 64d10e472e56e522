//! `/Services/{ServiceSid}/{Documents|Lists|Maps|Streams}[/{Sid}]`: the four kinds share one
//! set of handlers; the collection segment names the kind.

use super::error::fail;
use super::extract::IfMatch;
use super::services::MAX_PAGE_SIZE;
use super::types::{ObjectView, Urls};
use crate::api::http::with_etag;
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{Subject, TwilioError, TwilioResult};
use crate::api::twilio::paging::Listing;
use crate::api::twilio::params::{Form, Params, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrosync_core::engine::{ObjectPatch, OpenRequest};
use ferrosync_core::model::{ObjectKind, OpenMode, SyncObject};
use ferrosync_core::page::{Cursor, Order};
use serde_json::Value;
use std::sync::Arc;

/// The kind a collection segment names; anything else is not a route.
pub fn kind_of(collection: &str, path: &str) -> TwilioResult<ObjectKind> {
    match collection {
        "Documents" => Ok(ObjectKind::Document),
        "Lists" => Ok(ObjectKind::List),
        "Maps" => Ok(ObjectKind::Map),
        "Streams" => Ok(ObjectKind::Stream),
        _ => Err(TwilioError::not_found(path)),
    }
}

fn subject(kind: ObjectKind) -> Subject {
    if kind == ObjectKind::Document { Subject::Document } else { Subject::Other }
}

/// The TTL parameter of a kind: Lists and Maps take `CollectionTtl`, with `Ttl` as an alias
/// that yields when both are sent.
fn ttl(kind: ObjectKind, f: &Params) -> TwilioResult<Option<u64>> {
    match kind {
        ObjectKind::List | ObjectKind::Map => Ok(f.ttl("CollectionTtl")?.or(f.ttl("Ttl")?)),
        _ => f.ttl("Ttl"),
    }
}

/// Documents, Lists and Maps answer with `ETag: <revision>`; Streams have no revision.
fn respond(status: StatusCode, urls: &Urls, object: SyncObject) -> Response {
    match object.kind {
        ObjectKind::Stream => (status, Json(ObjectView::new(urls, object))).into_response(),
        _ => with_etag(status, object.revision, ObjectView::new(urls, object)),
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let kind = kind_of(&collection, uri.path())?;
    let req = OpenRequest {
        sid: None,
        unique_name: f.string("UniqueName"),
        mode: OpenMode::CreateNew,
        ttl: ttl(kind, &f)?,
        data: if kind == ObjectKind::Document { f.json("Data")? } else { None },
    };
    let (object, _) = state.engine.open(&p, &service, kind, req).await.map_err(fail(uri.path(), subject(kind)))?;
    Ok(respond(StatusCode::CREATED, &urls, object))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection)): Path<(String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let kind = kind_of(&collection, uri.path())?;
    let base = format!("{}{}", crate::api::http::origin(&headers).unwrap_or_default(), uri.path());
    let listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(
            Order::Asc,
            None,
            false,
            |o: &SyncObject| Cursor::Key(o.sid.to_string()),
            |req| state.engine.objects(&p, &service, kind, req),
        )
        .await
        .map_err(|e| if e.status == 404 { TwilioError::not_found(uri.path()) } else { e })?;
    let key = collection.to_ascii_lowercase();
    Ok(Json(listing.respond(&key, fetched.map(|o| ObjectView::new(&urls, o)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Response> {
    let kind = kind_of(&collection, uri.path())?;
    let object = state.engine.object(&p, &service, kind, &id).await.map_err(fail(uri.path(), subject(kind)))?;
    Ok(respond(StatusCode::OK, &urls, object))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    IfMatch(if_match): IfMatch,
    Form(f): Form,
) -> TwilioResult<Response> {
    let kind = kind_of(&collection, uri.path())?;
    let data = if kind == ObjectKind::Document { f.json("Data")? } else { None };
    let ttl = ttl(kind, &f)?;
    if data.is_none() && ttl.is_none() {
        let wanted = match kind {
            ObjectKind::Document => "Data or Ttl",
            ObjectKind::List | ObjectKind::Map => "CollectionTtl or Ttl",
            ObjectKind::Stream => "Ttl",
        };
        return Err(TwilioError::invalid(wanted, "at least one is required to update"));
    }
    let patch = ObjectPatch { data, ttl, if_match };
    let object =
        state.engine.update_object(&p, &service, kind, &id, patch).await.map_err(fail(uri.path(), subject(kind)))?;
    Ok(respond(StatusCode::OK, &urls, object))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, collection, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    IfMatch(if_match): IfMatch,
) -> TwilioResult<StatusCode> {
    let kind = kind_of(&collection, uri.path())?;
    state.engine.remove_object(&p, &service, kind, &id, if_match).await.map_err(fail(uri.path(), subject(kind)))?;
    Ok(StatusCode::NO_CONTENT)
}
