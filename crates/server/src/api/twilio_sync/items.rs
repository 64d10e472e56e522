//! `/Services/{ServiceSid}/{Lists|Maps}/{Sid}/Items[/{Index|Key}]`. A map key may hold `/`:
//! the helper libraries send it unescaped, so the item segment takes the rest of the path.

use super::error::fail;
use super::extract::IfMatch;
use super::objects::kind_of;
use super::services::{MAX_PAGE_SIZE, service_sid};
use super::types::{ItemView, Urls};
use crate::api::http::with_etag;
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{Subject, TwilioError, TwilioResult};
use crate::api::twilio::paging::Listing;
use crate::api::twilio::params::{Form, Params, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ferrosync_core::engine::ItemPatch;
use ferrosync_core::model::{Item, ItemKey, ObjectKind};
use ferrosync_core::page::{Cursor, Order};
use ferrosync_core::store::ItemWriteMode;
use serde_json::Value;
use std::sync::Arc;

fn container(collection: &str, path: &str) -> TwilioResult<ObjectKind> {
    match kind_of(collection, path)? {
        k @ (ObjectKind::List | ObjectKind::Map) => Ok(k),
        _ => Err(TwilioError::not_found(path)),
    }
}

fn subject(kind: ObjectKind) -> Subject {
    if kind == ObjectKind::List { Subject::ListItem } else { Subject::MapItem }
}

fn item_key(kind: ObjectKind, raw: &str, path: &str) -> TwilioResult<ItemKey> {
    match kind {
        // A segment that is no index names no item.
        ObjectKind::List => raw.parse::<u64>().map(ItemKey::Index).map_err(|_| TwilioError::not_found(path)),
        _ => Ok(ItemKey::Key(raw.to_owned())),
    }
}

/// `ItemTtl`, with `Ttl` as its alias.
fn item_ttl(f: &Params) -> TwilioResult<Option<u64>> {
    Ok(f.ttl("ItemTtl")?.or(f.ttl("Ttl")?))
}

fn respond(status: StatusCode, urls: &Urls, service_sid: &str, kind: ObjectKind, item: Item) -> Response {
    let revision = item.revision;
    with_etag(status, revision, ItemView::new(urls, service_sid, kind, item))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let path = uri.path();
    let kind = container(&collection, path)?;
    let data = f.json("Data")?.ok_or_else(|| TwilioError::invalid("Data", "is required"))?;
    let ttl = item_ttl(&f)?;
    let collection_ttl = f.ttl("CollectionTtl")?;
    let sid = service_sid(&state, &p, &service, path).await?;
    let item = match kind {
        ObjectKind::List => state.engine.add_list_item(&p, &service, &id, data, ttl, collection_ttl).await,
        _ => {
            let key = f.required("Key")?.to_owned();
            let patch = ItemPatch { data: Some(data), ttl, collection_ttl, if_match: None };
            state
                .engine
                .write_item(&p, &service, kind, &id, ItemKey::Key(key), patch, ItemWriteMode::Create)
                .await
                .map(|(item, _)| item)
        }
    }
    .map_err(fail(path, subject(kind)))?;
    Ok(respond(StatusCode::CREATED, &urls, &sid, kind, item))
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
    let kind = container(&collection, path)?;
    let base = format!("{}{path}", crate::api::http::origin(&headers).unwrap_or_default());
    let mut listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let order = match q.get("Order") {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => return Err(TwilioError::invalid("Order", format!("must be asc or desc, got '{other}'"))),
    };
    let exclusive = match q.get("Bounds") {
        None | Some("inclusive") => false,
        Some("exclusive") => true,
        Some(other) => {
            return Err(TwilioError::invalid("Bounds", format!("must be inclusive or exclusive, got '{other}'")));
        }
    };
    let from = q
        .get("From")
        .map(|raw| match kind {
            ObjectKind::List => raw
                .parse::<u64>()
                .map(Cursor::Index)
                .map_err(|_| TwilioError::invalid("From", format!("must be a list item index, got '{raw}'"))),
            _ => Ok(Cursor::Key(raw.to_owned())),
        })
        .transpose()?;
    for name in ["Order", "From", "Bounds"] {
        if let Some(v) = q.get(name) {
            listing.filter(name, v);
        }
    }
    let sid = service_sid(&state, &p, &service, path).await?;
    let cursor = |i: &Item| match &i.key {
        Some(k) if kind == ObjectKind::Map => Cursor::Key(k.clone()),
        _ => Cursor::Index(i.index.unwrap_or_default()),
    };
    let fetched = listing
        .fetch(order, from, exclusive, cursor, |req| state.engine.items(&p, &service, kind, &id, req))
        .await
        .map_err(|e| if e.status == 404 { TwilioError::not_found(path) } else { e })?;
    Ok(Json(listing.respond("items", fetched.map(|i| ItemView::new(&urls, &sid, kind, i)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id, raw)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Response> {
    let path = uri.path();
    let kind = container(&collection, path)?;
    let key = item_key(kind, &raw, path)?;
    let sid = service_sid(&state, &p, &service, path).await?;
    let item = state.engine.item(&p, &service, kind, &id, &key).await.map_err(fail(path, subject(kind)))?;
    Ok(respond(StatusCode::OK, &urls, &sid, kind, item))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, collection, id, raw)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
    IfMatch(if_match): IfMatch,
    Form(f): Form,
) -> TwilioResult<Response> {
    let path = uri.path();
    let kind = container(&collection, path)?;
    let key = item_key(kind, &raw, path)?;
    let data = f.json("Data")?;
    let ttl = item_ttl(&f)?;
    let collection_ttl = f.ttl("CollectionTtl")?;
    if data.is_none() && ttl.is_none() {
        // CollectionTtl rides along with a change to the item, never alone.
        return Err(TwilioError::invalid("Data or ItemTtl", "at least one is required to update an item"));
    }
    let sid = service_sid(&state, &p, &service, path).await?;
    let patch = ItemPatch { data, ttl, collection_ttl, if_match };
    let (item, _) = state
        .engine
        .write_item(&p, &service, kind, &id, key, patch, ItemWriteMode::Update)
        .await
        .map_err(fail(path, subject(kind)))?;
    Ok(respond(StatusCode::OK, &urls, &sid, kind, item))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, collection, id, raw)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
    IfMatch(if_match): IfMatch,
) -> TwilioResult<StatusCode> {
    let path = uri.path();
    let kind = container(&collection, path)?;
    let key = item_key(kind, &raw, path)?;
    state.engine.remove_item(&p, &service, kind, &id, key, if_match).await.map_err(fail(path, subject(kind)))?;
    Ok(StatusCode::NO_CONTENT)
}
