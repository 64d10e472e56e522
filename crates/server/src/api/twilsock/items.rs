//! List and map items: queries with paging, push (lists), put (maps, an upsert), update,
//! fetch and remove.

use super::error::{self, CdsError, Target};
use super::request::{CdsReply, CdsRequest, Cx, at_position, date, revision, ttl};
use super::types::{ItemBody, ItemPage, ItemView, PageMeta, RemovedView};
use ferrosync_core::engine::{ItemPatch, Logged};
use ferrosync_core::error::NotFoundKind;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, SyncObject};
use ferrosync_core::page::{Cursor, Order, PageRequest, PageToken};
use ferrosync_core::store::ItemWriteMode;
use ferrosync_core::{CoreError, Timestamp};

/// Twilio answers at most 100 items a page, whatever larger size is asked for.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 50;

/// `GET {links.items}`: one item (`Index` / `Key`) or a page (`From`, `PageSize`, `Order`,
/// `PageToken`), expired items hidden. `meta` says whether items lie before and after.
pub async fn query(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Item(kind);
    let core = |e| error::from_core(e, target);
    let single = match kind {
        ObjectKind::List => req.params.get("Index").map(|i| parse_index(i).map(ItemKey::Index)).transpose()?,
        _ => req.params.get("Key").map(|k| ItemKey::Key(k.to_owned())),
    };
    let object = cx.engine.object(cx.principal, cx.svc(), kind, id).await.map_err(core)?;
    let sid = object.sid.clone();
    let page = match single {
        Some(key) => {
            let read = || async { one(cx, &object, &key).await };
            let (found, position) = at_position(cx, target, |_| sid.clone(), read).await?;
            let items = found.into_iter().map(|i| view(cx, kind, i, position)).collect();
            ItemPage { items, meta: PageMeta { previous_token: None, next_token: None } }
        }
        None => {
            let request = page_request(cx, req, kind)?;
            let read = || async { page(cx, &object, request.clone()).await };
            let ((items, meta), position) = at_position(cx, target, |_| sid.clone(), read).await?;
            ItemPage { items: items.into_iter().map(|i| view(cx, kind, i, position)).collect(), meta }
        }
    };
    Ok(CdsReply::json(200, &page))
}

/// The first page of a map, for `Include=items`.
pub async fn first_page(cx: &Cx<'_>, object: &SyncObject) -> Result<Vec<Item>, CoreError> {
    let request = PageRequest { order: Order::Asc, from: None, after: None, limit: DEFAULT_PAGE };
    Ok(page(cx, object, request).await?.0)
}

/// `GET {item.url}`.
pub async fn fetch(cx: &Cx<'_>, kind: ObjectKind, id: &str, key: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Item(kind);
    let key = item_key(kind, key)?;
    let read = || async { cx.engine.item(cx.principal, cx.svc(), kind, id, &key).await };
    let (item, position) = at_position(cx, target, |i: &Item| i.object_sid.clone(), read).await?;
    let revision = item.revision;
    Ok(CdsReply::json(200, &view(cx, kind, item, position)).with_etag(revision))
}

/// `POST {links.items}` on a list: appends.
pub async fn push(cx: &Cx<'_>, req: &CdsRequest<'_>, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Item(ObjectKind::List);
    let body: ItemBody = req.json()?;
    let data = body.data.ok_or_else(|| error::bad_request("data is required"))?;
    let logged = cx
        .engine
        .add_list_item_logged(cx.principal, cx.svc(), id, data, ttl(body.ttl.as_ref())?, None)
        .await
        .map_err(|e| error::from_core(e, target))?;
    Ok(written(cx, ObjectKind::List, 201, logged))
}

/// `PUT {links.items}/{key}` on a map: an upsert answering 201 when it created the item.
/// `If-Match: -1` means "only if it does not exist"; any If-Match on a missing item is a
/// revision mismatch (a 404 here would make the SDK think the whole map was removed).
pub async fn put(cx: &Cx<'_>, req: &CdsRequest<'_>, id: &str, key: &str) -> Result<CdsReply, CdsError> {
    let (mode, if_match) = match req.if_match.as_deref().map(str::trim) {
        Some("-1" | "\"-1\"") => (ItemWriteMode::Create, None),
        Some(v) => (ItemWriteMode::Upsert, Some(v)),
        None => (ItemWriteMode::Upsert, None),
    };
    write(cx, req, ObjectKind::Map, id, key, mode, if_match).await
}

/// `POST {item.url}`: new data and/or TTL for an existing item.
pub async fn update(
    cx: &Cx<'_>,
    req: &CdsRequest<'_>,
    kind: ObjectKind,
    id: &str,
    key: &str,
) -> Result<CdsReply, CdsError> {
    write(cx, req, kind, id, key, ItemWriteMode::Update, req.if_match.as_deref()).await
}

async fn write(
    cx: &Cx<'_>,
    req: &CdsRequest<'_>,
    kind: ObjectKind,
    id: &str,
    key: &str,
    mode: ItemWriteMode,
    if_match: Option<&str>,
) -> Result<CdsReply, CdsError> {
    let target = Target::Item(kind);
    let core = |e| error::from_core(e, target);
    let body: ItemBody = req.json()?;
    let key = item_key(kind, key)?;
    let if_match = if_match.map(revision).transpose().map_err(core)?;
    if mode == ItemWriteMode::Create && body.data.is_none() {
        return Err(error::bad_request("data is required"));
    }
    let patch = ItemPatch { data: body.data, ttl: ttl(body.ttl.as_ref())?, collection_ttl: None, if_match };
    let result = cx.engine.write_item_logged(cx.principal, cx.svc(), kind, id, key, patch, mode).await;
    let logged = match result {
        Ok(logged) => logged,
        Err(CoreError::NotFound { what: NotFoundKind::Item, .. } | CoreError::ItemAlreadyExists { .. })
            if kind == ObjectKind::Map && (if_match.is_some() || mode == ItemWriteMode::Create) =>
        {
            return Err(CdsError::new(
                error::code::MAP_ITEM_REVISION_MISMATCH,
                "the map item's revision does not match If-Match",
            ));
        }
        Err(e) => return Err(core(e)),
    };
    let status = if logged.value.1 { 201 } else { 200 };
    Ok(written(cx, kind, status, logged.map(|(item, _)| item)))
}

/// `DELETE {item.url}`.
pub async fn remove(
    cx: &Cx<'_>,
    req: &CdsRequest<'_>,
    kind: ObjectKind,
    id: &str,
    key: &str,
) -> Result<CdsReply, CdsError> {
    let target = Target::Item(kind);
    let core = |e| error::from_core(e, target);
    let key = item_key(kind, key)?;
    let if_match = req.if_match.as_deref().map(revision).transpose().map_err(core)?;
    let logged = cx.engine.remove_item_logged(cx.principal, cx.svc(), kind, id, key, if_match).await.map_err(core)?;
    let removed = RemovedView { last_event_id: logged.seq.unwrap_or_default(), date_updated: date(Timestamp::now()) };
    Ok(CdsReply::json(200, &removed).wrote(logged.seq))
}

/// An item's descriptor; `position` is the change-log position it reflects (its event id).
pub fn view(cx: &Cx<'_>, kind: ObjectKind, item: Item, position: u64) -> ItemView {
    let key = item.item_key();
    ItemView {
        url: cx.urls.item(kind, &item.object_sid, &key),
        index: item.index,
        key: item.key,
        revision: item.revision.to_string(),
        last_event_id: position,
        data: std::sync::Arc::unwrap_or_clone(item.data),
        date_created: date(item.date_created),
        date_updated: date(item.date_updated),
        date_expires: item.date_expires.map(date),
        created_by: item.created_by,
    }
}

/// The answer to a write: the item's descriptor at the position of the write's event.
fn written(cx: &Cx<'_>, kind: ObjectKind, status: u16, logged: Logged<Item>) -> CdsReply {
    let revision = logged.value.revision;
    let position = logged.seq.unwrap_or_default();
    CdsReply::json(status, &view(cx, kind, logged.value, position)).with_etag(revision).wrote(logged.seq)
}

fn item_key(kind: ObjectKind, raw: &str) -> Result<ItemKey, CdsError> {
    match kind {
        ObjectKind::List => parse_index(raw).map(ItemKey::Index),
        _ => Ok(ItemKey::Key(raw.to_owned())),
    }
}

fn parse_index(raw: &str) -> Result<u64, CdsError> {
    raw.parse().map_err(|_| CdsError::new(error::LIST_ITEM_NOT_FOUND, format!("'{raw}' is not a list item index")))
}

fn page_request(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind) -> Result<PageRequest, CdsError> {
    let order = match req.params.get("Order").map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => return Err(error::bad_request(format!("Order must be asc or desc, got '{other}'"))),
    };
    let size = match req.params.get("PageSize") {
        Some(s) => s.parse::<u32>().map_err(|_| error::bad_request(format!("PageSize must be a number, got '{s}'")))?,
        None => DEFAULT_PAGE,
    };
    let from = match req.params.get("From") {
        Some(f) if kind == ObjectKind::List => Some(Cursor::Index(parse_index(f)?)),
        Some(f) => Some(Cursor::Key(f.to_owned())),
        None => None,
    };
    let limit = size.clamp(1, MAX_PAGE);
    PageRequest::new(Some(order), from, req.params.get("PageToken"), Some(limit), cx.engine.limits())
        .map_err(|e| error::from_core(e, Target::Item(kind)))
}

async fn one(cx: &Cx<'_>, object: &SyncObject, key: &ItemKey) -> Result<Option<Item>, CoreError> {
    match cx.engine.item(cx.principal, cx.svc(), object.kind, object.sid.as_str(), key).await {
        Ok(item) if !expired(&item) => Ok(Some(item)),
        Ok(_) | Err(CoreError::NotFound { what: NotFoundKind::Item, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A page of unexpired items, and whether items lie before its first and after its last.
async fn page(cx: &Cx<'_>, object: &SyncObject, request: PageRequest) -> Result<(Vec<Item>, PageMeta), CoreError> {
    let engine = cx.engine;
    let id = object.sid.as_str();
    let order = request.order;
    let found = engine.items(cx.principal, cx.svc(), object.kind, id, request).await?;
    let next_token = found.next.map(|t| t.encode());
    let items: Vec<Item> = found.items.into_iter().filter(|i| !expired(i)).collect();
    let previous_token = match items.first() {
        Some(first) => {
            // One step the other way from the first item tells whether anything precedes it.
            let back = if order == Order::Asc { Order::Desc } else { Order::Asc };
            let cursor = cursor(first);
            let probe = PageRequest { order: back, from: None, after: Some(cursor.clone()), limit: 1 };
            let before = engine.items(cx.principal, cx.svc(), object.kind, id, probe).await?;
            (!before.items.is_empty()).then(|| PageToken { order: back, after: cursor }.encode())
        }
        None => None,
    };
    Ok((items, PageMeta { previous_token, next_token }))
}

fn cursor(item: &Item) -> Cursor {
    match item.item_key() {
        ItemKey::Index(i) => Cursor::Index(i),
        ItemKey::Key(k) => Cursor::Key(k),
    }
}

/// Expired items wait a moment for the sweeper; the SDK asks for them to be hidden meanwhile.
fn expired(item: &Item) -> bool {
    item.date_expires.is_some_and(|t| t <= Timestamp::now())
}

/// `GET {links.context}`: lists carry no context here; an empty one keeps the SDK content.
pub async fn context(cx: &Cx<'_>, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Object(ObjectKind::List);
    let read = || async { cx.engine.object(cx.principal, cx.svc(), ObjectKind::List, id).await };
    let (_, position) = at_position(cx, target, |o: &SyncObject| o.sid.clone(), read).await?;
    Ok(CdsReply::json(200, &serde_json::json!({ "data": {}, "last_event_id": position })))
}
