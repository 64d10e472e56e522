//! Documents, lists, maps and streams themselves: open (GET), create (POST to the
//! collection), update data or TTL (POST to the object), remove (DELETE).

use super::error::{self, CdsError, Target};
use super::items;
use super::request::{CdsReply, CdsRequest, Cx, at_position, date, revision, ttl};
use super::types::{
    CollectionView, DocumentView, ItemView, ObjectBody, ObjectDescriptor, ObjectMeta, RemovedView, StreamView,
};
use ferrosync_core::engine::{Logged, ObjectPatch, OpenRequest};
use ferrosync_core::model::{ObjectKind, OpenMode, SyncObject};
use ferrosync_core::sid::looks_like_sid;
use ferrosync_core::{CoreError, Timestamp};
use serde_json::{Map, Value};

/// `GET /v3/{kind}/{id}`: the descriptor, with the change-log position it reflects.
pub async fn fetch(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Object(kind);
    let with_items = kind == ObjectKind::Map && req.params.get("Include") == Some("items");
    let read = || async move {
        let object = cx.engine.object(cx.principal, cx.svc(), kind, id).await?;
        let first_page = if with_items { Some(items::first_page(cx, &object).await?) } else { None };
        Ok::<_, CoreError>((object, first_page))
    };
    let ((object, first_page), position) = at_position(cx, target, |(o, _)| o.sid.clone(), read).await?;
    let revision = object.revision;
    let items = first_page.map(|page| page.into_iter().map(|i| items::view(cx, kind, i, position)).collect());
    Ok(CdsReply::json(200, &view(cx, object, position, items)).with_etag(revision))
}

/// `POST /v3/{kind}`: creates; a taken unique name is 409 (the SDK's open_or_create then
/// opens it).
pub async fn create(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind) -> Result<CdsReply, CdsError> {
    let target = Target::Object(kind);
    let body: ObjectBody = req.json()?;
    // The SDK sends the id it was given as the unique name, whatever it is: a SID of this
    // kind creates the object under that SID.
    let (sid, unique_name) = match body.unique_name {
        Some(n) if looks_like_sid(&n) => (Some(n), None),
        other => (None, other),
    };
    let data = match kind {
        ObjectKind::Document => Some(body.data.filter(|d| !d.is_null()).unwrap_or_else(|| Value::Object(Map::new()))),
        _ => None,
    };
    let open = OpenRequest { sid, unique_name, mode: OpenMode::CreateNew, ttl: ttl(body.ttl.as_ref())?, data };
    let logged =
        cx.engine.open_logged(cx.principal, cx.svc(), kind, open).await.map_err(|e| error::from_core(e, target))?;
    let items = (kind == ObjectKind::Map).then(Vec::new);
    Ok(written(cx, 201, logged.map(|(object, _)| object), items))
}

/// `POST /v3/{kind}/{id}`: new data (documents, optionally If-Match) and/or a new TTL.
pub async fn update(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Object(kind);
    let core = |e| error::from_core(e, target);
    let body: ObjectBody = req.json()?;
    let data = if kind == ObjectKind::Document { body.data.filter(|d| !d.is_null()) } else { None };
    let if_match = req.if_match.as_deref().map(revision).transpose().map_err(core)?;
    let patch = ObjectPatch { data, ttl: ttl(body.ttl.as_ref())?, if_match };
    let logged = cx.engine.update_object_logged(cx.principal, cx.svc(), kind, id, patch).await.map_err(core)?;
    Ok(written(cx, 200, logged, None))
}

/// `DELETE /v3/{kind}/{id}`.
pub async fn remove(cx: &Cx<'_>, req: &CdsRequest<'_>, kind: ObjectKind, id: &str) -> Result<CdsReply, CdsError> {
    let target = Target::Object(kind);
    let core = |e| error::from_core(e, target);
    let if_match = req.if_match.as_deref().map(revision).transpose().map_err(core)?;
    let logged = cx.engine.remove_object_logged(cx.principal, cx.svc(), kind, id, if_match).await.map_err(core)?;
    let removed = RemovedView { last_event_id: logged.seq.unwrap_or_default(), date_updated: date(Timestamp::now()) };
    Ok(CdsReply::json(200, &removed).wrote(logged.seq))
}

/// The descriptor of an object of any kind.
fn view(cx: &Cx<'_>, o: SyncObject, position: u64, items: Option<Vec<ItemView>>) -> ObjectDescriptor {
    let urls = cx.urls;
    let (kind, sid, revision) = (o.kind, o.sid.clone(), o.revision.to_string());
    let meta = ObjectMeta {
        url: urls.object(kind, &sid),
        sid: sid.to_string(),
        unique_name: o.unique_name,
        date_created: date(o.date_created),
        date_updated: date(o.date_updated),
        date_expires: o.date_expires.map(date),
        created_by: o.created_by,
    };
    let mut links = Map::new();
    match kind {
        ObjectKind::Document => {
            let data = o.data.map(std::sync::Arc::unwrap_or_clone).unwrap_or_else(|| Value::Object(Map::new()));
            ObjectDescriptor::Document(DocumentView { meta, revision, last_event_id: position, data })
        }
        ObjectKind::List | ObjectKind::Map => {
            links.insert("items".into(), urls.items(kind, &sid).into());
            if kind == ObjectKind::List {
                links.insert("context".into(), urls.link(kind, &sid, "Context").into());
            }
            ObjectDescriptor::Collection(CollectionView { meta, revision, last_event_id: position, links, items })
        }
        ObjectKind::Stream => {
            links.insert("messages".into(), urls.link(kind, &sid, "Messages").into());
            ObjectDescriptor::Stream(StreamView { meta, links })
        }
    }
}

/// The answer to a write: the object's descriptor at the position of the write's event.
fn written(cx: &Cx<'_>, status: u16, logged: Logged<SyncObject>, items: Option<Vec<ItemView>>) -> CdsReply {
    let revision = logged.value.revision;
    let position = logged.seq.unwrap_or_default();
    CdsReply::json(status, &view(cx, logged.value, position, items)).with_etag(revision).wrote(logged.seq)
}
