//! Change-log events → twilsock `notification` frames. An event's id is its sequence number in
//! the service's change log: increasing per object, as the SDK needs, and the cursor a client
//! resumes from.

use super::frame;
use super::request::{Urls, date};
use super::types::ServerFrame;
use bytes::Bytes;
use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::{ObjectKind, SyncObject};
use ferrosync_core::store::StoredEvent;
use serde_json::{Map, Value, json};

/// The strictly ordered event stream: replays and stream messages travel here.
pub const SYNC_EVENT: &str = "twilio.sync.event";

/// How a notification reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Pushed as it happens.
    Live,
    /// Replayed from the log when a subscription is established.
    Replay,
}

/// The frame for `stored`, or `None` for events the SDK has no use for (creations,
/// permission changes, container TTL changes).
pub fn render(stored: &StoredEvent, urls: &Urls, channel: Channel) -> Option<Bytes> {
    let event: Event = match serde_json::from_str(stored.json.get()) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(seq = stored.seq, error = %e, "a stored event does not parse; not sent over twilsock");
            return None;
        }
    };
    let (event_type, body) = payload(&event, urls)?;
    let message_type = match (channel, event.object_kind) {
        (Channel::Live, ObjectKind::Document) => "com.twilio.rtd.cds.document",
        (Channel::Live, ObjectKind::List) => "com.twilio.rtd.cds.list",
        (Channel::Live, ObjectKind::Map) => "com.twilio.rtd.cds.map",
        _ => SYNC_EVENT,
    };
    // Shared by every connection that receives this event: derived from the event, not random.
    let sid = event.object_sid.as_str();
    let id = format!("TM{}{:016x}", sid.get(2..18).unwrap_or("0000000000000000"), event.seq);
    let payload = json!({ "event_type": event_type, "event": body }).to_string();
    Some(notification(&id, message_type, payload.as_bytes()))
}

/// A document's current state as a `document_updated` at `position`, for a client whose last
/// seen event is older than the retained log.
pub fn snapshot(document: &SyncObject, position: u64) -> Bytes {
    let event = json!({
        "document_sid": document.sid,
        "id": position,
        "document_revision": document.revision.to_string(),
        "document_data": document.data.as_deref().cloned().unwrap_or_else(|| Value::Object(Map::new())),
        "date_created": date(document.date_updated),
    });
    let payload = json!({ "event_type": "document_updated", "event": event }).to_string();
    notification(&super::connection::server_frame_id(), SYNC_EVENT, payload.as_bytes())
}

/// A `notification` frame.
pub fn notification(id: &str, message_type: &str, payload: &[u8]) -> Bytes {
    let header = ServerFrame {
        method: "notification",
        id,
        message_type: Some(message_type),
        payload_type: Some("application/json"),
        client_update_type: None,
        status: None,
    };
    frame::encode(&header, payload)
}

/// The SDK's name and fields for an event.
fn payload(e: &Event, urls: &Urls) -> Option<(&'static str, Value)> {
    let sid = e.object_sid.to_string();
    let mut body = Map::new();
    body.insert("id".into(), e.seq.into());
    body.insert("date_created".into(), date(e.date).into());
    let item_key = || match (&e.item_index, &e.item_key) {
        (Some(i), _) => ferrosync_core::model::ItemKey::Index(*i),
        (None, Some(k)) => ferrosync_core::model::ItemKey::Key(k.clone()),
        (None, None) => ferrosync_core::model::ItemKey::Index(0),
    };
    let item = |body: &mut Map<String, Value>, data: Option<&Value>| {
        match (&e.item_index, &e.item_key) {
            (Some(i), _) => body.insert("item_index".into(), (*i).into()),
            (_, k) => body.insert("item_key".into(), k.clone().into()),
        };
        body.insert("item_url".into(), urls.item(e.object_kind, &e.object_sid, &item_key()).into());
        body.insert("item_revision".into(), e.revision.to_string().into());
        body.insert("item_data".into(), data.cloned().unwrap_or(Value::Null));
        body.insert("date_expires".into(), e.date_expires.map(date).into());
    };
    let name = match e.kind {
        EventKind::DocumentUpdated => {
            body.insert("document_sid".into(), sid.into());
            body.insert("document_revision".into(), e.revision.to_string().into());
            body.insert("document_data".into(), e.data.as_deref().cloned().unwrap_or(Value::Null));
            "document_updated"
        }
        EventKind::DocumentRemoved => {
            body.insert("document_sid".into(), sid.into());
            "document_removed"
        }
        EventKind::ListItemAdded
        | EventKind::ListItemUpdated
        | EventKind::ListItemRemoved
        | EventKind::MapItemAdded
        | EventKind::MapItemUpdated
        | EventKind::MapItemRemoved => {
            let (sid_field, name, data) = match e.kind {
                EventKind::ListItemAdded => ("list_sid", "list_item_added", &e.data),
                EventKind::ListItemUpdated => ("list_sid", "list_item_updated", &e.data),
                // The SDK reports a removed item's last data as the previous data.
                EventKind::ListItemRemoved => ("list_sid", "list_item_removed", &e.previous_data),
                EventKind::MapItemAdded => ("map_sid", "map_item_added", &e.data),
                EventKind::MapItemUpdated => ("map_sid", "map_item_updated", &e.data),
                _ => ("map_sid", "map_item_removed", &e.previous_data),
            };
            body.insert(sid_field.into(), sid.into());
            item(&mut body, data.as_deref());
            name
        }
        EventKind::ListRemoved => {
            body.insert("list_sid".into(), sid.into());
            "list_removed"
        }
        EventKind::MapRemoved => {
            body.insert("map_sid".into(), sid.into());
            "map_removed"
        }
        EventKind::StreamMessagePublished => {
            body.insert("stream_sid".into(), sid.into());
            body.insert("message_sid".into(), e.message_sid.as_ref().map(|s| s.to_string()).into());
            body.insert("message_data".into(), e.data.as_deref().cloned().unwrap_or(Value::Null));
            "stream_message_published"
        }
        EventKind::StreamRemoved => {
            body.insert("stream_sid".into(), sid.into());
            "stream_removed"
        }
        EventKind::DocumentCreated
        | EventKind::ListCreated
        | EventKind::ListUpdated
        | EventKind::MapCreated
        | EventKind::MapUpdated
        | EventKind::StreamCreated
        | EventKind::StreamUpdated
        | EventKind::PermissionUpdated
        | EventKind::PermissionRemoved => return None,
    };
    Some((name, Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::log::EventDraft;
    use ferrosync_core::sid::{Sid, SidKind};
    use ferrosync_core::store::EventJson;
    use ferrosync_core::timestamp::Timestamp;

    fn stored(kind: EventKind, object_kind: ObjectKind, index: Option<u64>, key: Option<&str>) -> StoredEvent {
        let object = Sid::new(object_kind.sid_kind());
        let draft = EventDraft {
            kind,
            object_sid: object.clone(),
            object_kind,
            unique_name: None,
            item_index: index,
            item_key: key.map(str::to_owned),
            message_sid: None,
            revision: 2,
            data: Some(json!({"new": true}).into()),
            previous_data: Some(json!({"old": true}).into()),
            date_expires: None,
            date: Timestamp(1_700_000_000_000),
            identity: "alice".into(),
            reason: None,
        };
        let event = draft.into_event("epoch", Sid::new(SidKind::Service), 42);
        let json = EventJson::of(&event);
        StoredEvent { seq: 42, object_sid: object, json }
    }

    fn parsed(bytes: &Bytes) -> (Value, Value) {
        let f = frame::parse(bytes, 1 << 20).expect("a valid frame");
        let header = json!({"method": f.header.method, "id": f.header.id});
        (header, serde_json::from_slice(f.payload).expect("json payload"))
    }

    #[test]
    fn events_become_the_notifications_the_sdk_reads() {
        let urls = Urls::for_host("h");
        let doc = stored(EventKind::DocumentUpdated, ObjectKind::Document, None, None);
        let (header, payload) = parsed(&render(&doc, &urls, Channel::Live).expect("sent"));
        assert_eq!(header["method"], "notification");
        assert_eq!(payload["event_type"], "document_updated");
        assert_eq!(payload["event"]["id"], 42);
        assert_eq!(payload["event"]["document_revision"], "2");
        assert_eq!(payload["event"]["document_data"], json!({"new": true}));

        let removed = stored(EventKind::ListItemRemoved, ObjectKind::List, Some(3), None);
        let (_, payload) = parsed(&render(&removed, &urls, Channel::Replay).expect("sent"));
        assert_eq!(payload["event_type"], "list_item_removed");
        assert_eq!(payload["event"]["item_index"], 3);
        assert_eq!(payload["event"]["item_data"], json!({"old": true}), "the data it had");

        let put = stored(EventKind::MapItemAdded, ObjectKind::Map, None, Some("k 1"));
        let (_, payload) = parsed(&render(&put, &urls, Channel::Live).expect("sent"));
        assert_eq!(payload["event"]["item_key"], "k 1");
        assert!(payload["event"]["item_url"].as_str().expect("url").ends_with("/Items/k%201"));

        let created = stored(EventKind::DocumentCreated, ObjectKind::Document, None, None);
        assert!(render(&created, &urls, Channel::Live).is_none());
    }
}
