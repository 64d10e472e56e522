//! Change-log events as they travel: in long-poll answers, WebSocket `event` frames and webhooks.

use crate::json::JsonObject;
use crate::kinds::ObjectKind;
use crate::sid::Sid;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    DocumentCreated,
    DocumentUpdated,
    DocumentRemoved,
    ListCreated,
    ListUpdated,
    ListRemoved,
    ListItemAdded,
    ListItemUpdated,
    ListItemRemoved,
    MapCreated,
    MapUpdated,
    MapRemoved,
    MapItemAdded,
    MapItemUpdated,
    MapItemRemoved,
    StreamCreated,
    StreamUpdated,
    StreamRemoved,
    StreamMessagePublished,
    PermissionUpdated,
    PermissionRemoved,
}

impl EventKind {
    /// The name the event's `type` carries.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::DocumentCreated => "document_created",
            EventKind::DocumentUpdated => "document_updated",
            EventKind::DocumentRemoved => "document_removed",
            EventKind::ListCreated => "list_created",
            EventKind::ListUpdated => "list_updated",
            EventKind::ListRemoved => "list_removed",
            EventKind::ListItemAdded => "list_item_added",
            EventKind::ListItemUpdated => "list_item_updated",
            EventKind::ListItemRemoved => "list_item_removed",
            EventKind::MapCreated => "map_created",
            EventKind::MapUpdated => "map_updated",
            EventKind::MapRemoved => "map_removed",
            EventKind::MapItemAdded => "map_item_added",
            EventKind::MapItemUpdated => "map_item_updated",
            EventKind::MapItemRemoved => "map_item_removed",
            EventKind::StreamCreated => "stream_created",
            EventKind::StreamUpdated => "stream_updated",
            EventKind::StreamRemoved => "stream_removed",
            EventKind::StreamMessagePublished => "stream_message_published",
            EventKind::PermissionUpdated => "permission_updated",
            EventKind::PermissionRemoved => "permission_removed",
        }
    }

    pub fn created(kind: ObjectKind) -> Self {
        match kind {
            ObjectKind::Document => EventKind::DocumentCreated,
            ObjectKind::List => EventKind::ListCreated,
            ObjectKind::Map => EventKind::MapCreated,
            ObjectKind::Stream => EventKind::StreamCreated,
        }
    }

    pub fn updated(kind: ObjectKind) -> Self {
        match kind {
            ObjectKind::Document => EventKind::DocumentUpdated,
            ObjectKind::List => EventKind::ListUpdated,
            ObjectKind::Map => EventKind::MapUpdated,
            ObjectKind::Stream => EventKind::StreamUpdated,
        }
    }

    pub fn removed(kind: ObjectKind) -> Self {
        match kind {
            ObjectKind::Document => EventKind::DocumentRemoved,
            ObjectKind::List => EventKind::ListRemoved,
            ObjectKind::Map => EventKind::MapRemoved,
            ObjectKind::Stream => EventKind::StreamRemoved,
        }
    }

    pub fn item_added(kind: ObjectKind) -> Self {
        if kind == ObjectKind::List { EventKind::ListItemAdded } else { EventKind::MapItemAdded }
    }

    pub fn item_updated(kind: ObjectKind) -> Self {
        if kind == ObjectKind::List { EventKind::ListItemUpdated } else { EventKind::MapItemUpdated }
    }

    pub fn item_removed(kind: ObjectKind) -> Self {
        if kind == ObjectKind::List { EventKind::ListItemRemoved } else { EventKind::MapItemRemoved }
    }
}

/// One entry of a service's change log. Its sequence number, token and service come first:
/// they are the head of its JSON, which the embedded store does not keep but rebuilds from the
/// row's id and its own epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Resume token: a reader that saw this event passes it to continue after it.
    pub token: String,
    pub service_sid: Sid,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub object_sid: Sid,
    pub object_kind: ObjectKind,
    pub unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_sid: Option<Sid>,
    pub revision: u64,
    pub data: Option<std::sync::Arc<Value>>,
    /// The data before this change, for updates and removals of items and documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_data: Option<std::sync::Arc<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_expires: Option<Timestamp>,
    pub date: Timestamp,
    pub identity: String,
    /// Why a removal happened when it was not asked for (`expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event {
    /// The event's JSON, byte for byte what its `Serialize` writes, in a fraction of the time:
    /// the writer serialises every event it appends, and most of an event's text is field
    /// names, SIDs, its token and dates, which never need escaping (see [`crate::json`]).
    pub fn to_json(&self) -> String {
        self.to_json_marking_data().0
    }

    /// [`Event::to_json`], and where in it the value of `data` is, when the event has data: a
    /// store writing the object's row can take the object's data from there rather than
    /// serialise it again.
    pub fn to_json_marking_data(&self) -> (String, Option<std::ops::Range<usize>>) {
        let mut o = JsonObject::with_capacity(384);
        o.u64("seq", self.seq)
            .str("token", &self.token)
            .str("service_sid", self.service_sid.as_str())
            .str("type", self.kind.as_str())
            .str("object_sid", self.object_sid.as_str())
            .str("object_kind", self.object_kind.as_str())
            .opt_str("unique_name", self.unique_name.as_deref());
        if let Some(index) = self.item_index {
            o.u64("item_index", index);
        }
        if let Some(key) = &self.item_key {
            o.str("item_key", key);
        }
        if let Some(sid) = &self.message_sid {
            o.str("message_sid", sid.as_str());
        }
        o.u64("revision", self.revision);
        let data = match &self.data {
            Some(data) => Some(o.value_at("data", data)),
            None => {
                o.null("data");
                None
            }
        };
        if let Some(previous) = &self.previous_data {
            o.value("previous_data", previous);
        }
        if let Some(expires) = self.date_expires {
            o.str("date_expires", &expires.to_rfc3339());
        }
        o.str("date", &self.date.to_rfc3339()).str("identity", &self.identity);
        if let Some(reason) = &self.reason {
            o.str("reason", reason);
        }
        (o.finish(), data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::SidKind;
    use serde_json::json;

    fn event(kind: EventKind) -> Event {
        Event {
            seq: 7,
            token: "MS5hYmMuSVMwMTIzLjc".into(),
            kind,
            service_sid: Sid::new(SidKind::Service),
            object_sid: Sid::new(SidKind::Document),
            object_kind: ObjectKind::Document,
            unique_name: None,
            item_index: None,
            item_key: None,
            message_sid: None,
            revision: 3,
            data: None,
            previous_data: None,
            date_expires: None,
            date: Timestamp(1_764_800_000_123),
            identity: "alice".into(),
            reason: None,
        }
    }

    #[test]
    fn kind_names_are_the_serialised_ones() {
        use EventKind::*;
        let all = [
            DocumentCreated,
            DocumentUpdated,
            DocumentRemoved,
            ListCreated,
            ListUpdated,
            ListRemoved,
            ListItemAdded,
            ListItemUpdated,
            ListItemRemoved,
            MapCreated,
            MapUpdated,
            MapRemoved,
            MapItemAdded,
            MapItemUpdated,
            MapItemRemoved,
            StreamCreated,
            StreamUpdated,
            StreamRemoved,
            StreamMessagePublished,
            PermissionUpdated,
            PermissionRemoved,
        ];
        for kind in all {
            assert_eq!(serde_json::to_value(kind).expect("serialises"), json!(kind.as_str()));
        }
    }

    #[test]
    fn to_json_writes_what_serialize_writes() {
        let mut every_field = event(EventKind::ListItemUpdated);
        every_field.unique_name = Some("name \"quoted\" \\ \u{1}".into());
        every_field.item_index = Some(u64::MAX);
        every_field.item_key = Some("key\nline".into());
        every_field.message_sid = Some(Sid::new(SidKind::StreamMessage));
        every_field.data = Some(json!({ "text": "é\t☃", "n": [1, 2.5, null, false], "deep": { "a": {} } }).into());
        every_field.previous_data = Some(json!("before").into());
        every_field.date_expires = Some(Timestamp(1_764_800_100_000));
        every_field.identity = "id/with\"quote".into();
        every_field.reason = Some("expired".into());
        let mut null_data = event(EventKind::DocumentRemoved);
        null_data.data = Some(Value::Null.into());
        null_data.date = Timestamp(0);
        for e in [event(EventKind::DocumentUpdated), every_field, null_data] {
            assert_eq!(e.to_json(), serde_json::to_string(&e).expect("serialises"));
            // Where the data is marked, the text there is the data as serialised alone.
            let (text, data) = e.to_json_marking_data();
            assert_eq!(text, e.to_json());
            let marked = data.map(|at| text[at].to_owned());
            assert_eq!(marked, e.data.as_deref().map(Value::to_string), "{text}");
        }
    }
}
