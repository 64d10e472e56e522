//! Frames of the native WebSocket protocol (`/api/v1/connect`): JSON text frames tagged by
//! `type`. Every client request carries an `id` that its `reply` echoes.

use crate::error::ErrorBody;
use crate::event::Event;
use crate::json::JsonObject;
use crate::kinds::{ObjectKind, OpenMode, Order};
use crate::query::{QueryEvent, QueryItemView};
use crate::rest::{ItemView, ObjectView};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Close code sent when the access token expires.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code sent when authentication fails or never arrives.
pub const CLOSE_UNAUTHENTICATED: u16 = 4003;
/// Close code sent to a consumer whose queue overflowed; it resumes from the tokens it was sent.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Authenticate {
        token: String,
    },
    /// Events of one object from `since` (or from now), after a reply carrying its snapshot.
    Subscribe {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// A live query: the items of index `index` matching `query` now (or, with `since`, from
    /// that point of the log), then every change to them.
    SubscribeQuery {
        id: u64,
        index: String,
        query: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    UnsubscribeQuery {
        id: u64,
        query_id: String,
    },
    Unsubscribe {
        id: u64,
        kind: ObjectKind,
        object: String,
    },
    Open {
        id: u64,
        kind: ObjectKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unique_name: Option<String>,
        #[serde(default)]
        mode: OpenMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::value::read_optional_value"
        )]
        data: Option<Value>,
    },
    Get {
        id: u64,
        kind: ObjectKind,
        object: String,
    },
    Update {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::value::read_optional_value"
        )]
        data: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
        #[serde(default, rename = "return", skip_serializing_if = "Return::is_representation")]
        returning: Return,
    },
    Remove {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
    },
    AddItem {
        id: u64,
        list: String,
        #[serde(deserialize_with = "crate::value::read_value")]
        data: Value,
        #[serde(default, alias = "item_ttl", skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collection_ttl: Option<u64>,
        #[serde(default, rename = "return", skip_serializing_if = "Return::is_representation")]
        returning: Return,
    },
    SetItem {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::value::read_optional_value"
        )]
        data: Option<Value>,
        #[serde(default, alias = "item_ttl", skip_serializing_if = "Option::is_none")]
        ttl: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collection_ttl: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
        #[serde(default, rename = "return", skip_serializing_if = "Return::is_representation")]
        returning: Return,
    },
    RemoveItem {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
    },
    GetItems {
        id: u64,
        kind: ObjectKind,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<Order>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_token: Option<String>,
    },
    Publish {
        id: u64,
        stream: String,
        #[serde(deserialize_with = "crate::value::read_value")]
        data: Value,
        #[serde(default, rename = "return", skip_serializing_if = "Return::is_representation")]
        returning: Return,
    },
    UpdateToken {
        id: u64,
        token: String,
    },
    Ping {
        id: u64,
    },
}

/// What the reply to a write (`update`, `add_item`, `set_item`, `publish`) carries, as HTTP's
/// `Prefer: return=…` (RFC 7240): the object, item or message as written, or only what the
/// server chose for it (a revision, a list index, a message SID), for a client that already
/// holds the data it sent and would otherwise be sent it back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Return {
    #[default]
    Representation,
    Minimal,
}

impl Return {
    pub fn is_representation(&self) -> bool {
        *self == Return::Representation
    }
}

/// The body of a write's reply under [`Return::Minimal`], as over HTTP.
pub use crate::rest::{Published, Written};

impl ClientFrame {
    pub fn id(&self) -> Option<u64> {
        match self {
            ClientFrame::Authenticate { .. } => None,
            ClientFrame::Subscribe { id, .. }
            | ClientFrame::SubscribeQuery { id, .. }
            | ClientFrame::UnsubscribeQuery { id, .. }
            | ClientFrame::Unsubscribe { id, .. }
            | ClientFrame::Open { id, .. }
            | ClientFrame::Get { id, .. }
            | ClientFrame::Update { id, .. }
            | ClientFrame::Remove { id, .. }
            | ClientFrame::AddItem { id, .. }
            | ClientFrame::SetItem { id, .. }
            | ClientFrame::RemoveItem { id, .. }
            | ClientFrame::GetItems { id, .. }
            | ClientFrame::Publish { id, .. }
            | ClientFrame::UpdateToken { id, .. }
            | ClientFrame::Ping { id } => Some(*id),
        }
    }
}

impl ClientFrame {
    /// Reads a frame as `serde_json::from_str` would. The object operations every write sends
    /// (`get`, `update`, `remove`) are read straight into their variant: the derived reader
    /// of a tagged enum first copies every field into a buffer of its own, which costs more
    /// than the rest of reading. Any other frame, and one of those that this shape does not
    /// fit exactly, goes through the derived reader, which also gives the error.
    pub fn parse(text: &str) -> Result<ClientFrame, serde_json::Error> {
        if let Ok(op) = serde_json::from_str::<ObjectOp<'_>>(text)
            && let Some(frame) = op.into_frame()
        {
            return Ok(frame);
        }
        serde_json::from_str(text)
    }
}

/// `get`, `update` and `remove` frames, with each optional field's presence kept, so that a
/// field the variant does not have is told apart from one it may leave out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectOp<'a> {
    #[serde(rename = "type", borrow)]
    op: &'a str,
    id: u64,
    kind: ObjectKind,
    object: String,
    #[serde(default, deserialize_with = "present")]
    data: Option<Option<crate::value::Read>>,
    #[serde(default, deserialize_with = "present")]
    ttl: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    if_match: Option<Option<u64>>,
    #[serde(default, rename = "return", deserialize_with = "present")]
    returning: Option<Option<Return>>,
}

impl ObjectOp<'_> {
    fn into_frame(self) -> Option<ClientFrame> {
        let ObjectOp { op, id, kind, object, data, ttl, if_match, returning } = self;
        match (op, &data, &ttl, &if_match, returning) {
            ("get", None, None, None, None) => Some(ClientFrame::Get { id, kind, object }),
            // A `null` preference is the derived reader's to refuse.
            ("update", .., None | Some(Some(_))) => Some(ClientFrame::Update {
                id,
                kind,
                object,
                data: data.flatten().map(|crate::value::Read(data)| data),
                ttl: ttl.flatten(),
                if_match: if_match.flatten(),
                returning: returning.flatten().unwrap_or_default(),
            }),
            ("remove", None, None, _, None) => {
                Some(ClientFrame::Remove { id, kind, object, if_match: if_match.flatten() })
            }
            _ => None,
        }
    }
}

/// A field that is there, even as `null`: `Some`, where an absent one defaults to `None`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Connected {
        connection_id: u64,
        identity: String,
        service_sid: String,
        expires_at: i64,
    },
    Reply {
        id: u64,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    /// A change to a subscribed object or live query. The server frames these once per event
    /// and shares the bytes among subscribers.
    Event {
        event: Box<Delivered>,
    },
    /// A client frame that could not be read; `id` is absent when the frame had none.
    Error {
        #[serde(default)]
        id: Option<u64>,
        error: ErrorBody,
    },
    TokenAboutToExpire {
        expires_at: i64,
    },
    TokenExpired,
    /// Sent before closing a consumer that fell behind: resume each object from its token.
    Overflow {
        resume: Vec<ResumePoint>,
    },
}

/// A `reply` frame as the server writes a success: its body serialised straight from the
/// reply's view, not built as a `Value` first. Read back, it is a [`ServerFrame::Reply`].
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "reply")]
pub struct ReplyFrame<'a, B: Serialize> {
    pub id: u64,
    pub status: u16,
    pub body: &'a B,
}

impl<B: Serialize> ReplyFrame<'_, B> {
    /// The frame's JSON up to its body's first field, `capacity` bytes reserved in all.
    fn open(&self, capacity: usize) -> JsonObject {
        let mut o = JsonObject::with_capacity(capacity);
        o.str("type", "reply").u64("id", self.id).u64("status", u64::from(self.status)).begin("body");
        o
    }
}

impl ReplyFrame<'_, ObjectView> {
    /// The frame's JSON, byte for byte what its `Serialize` writes, without escaping its names,
    /// SIDs and dates one byte at a time (see [`crate::json`]): it answers every write.
    pub fn to_json(&self) -> Vec<u8> {
        let mut o = self.open(384);
        self.body.write_fields(&mut o);
        o.end();
        o.into_bytes()
    }
}

impl ReplyFrame<'_, Written> {
    /// The frame's JSON, byte for byte what its `Serialize` writes (see [`crate::json`]).
    pub fn to_json(&self) -> Vec<u8> {
        let mut o = self.open(80);
        if let Some(index) = self.body.index {
            o.u64("index", index);
        }
        o.u64("revision", self.body.revision).end();
        o.into_bytes()
    }
}

/// The body of an `event` frame: a change-log event of a subscribed object, or what a change
/// did to a live query's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Delivered {
    Object(Event),
    Query(QueryEvent),
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ResumePoint {
    pub object_sid: String,
    pub since: String,
}

/// The reply body of `subscribe`: the object as of `since` (absent when it was removed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscribed {
    pub object: Option<ObjectView>,
    pub since: String,
}

/// The reply body of `subscribe_query`: the results as of `since`, empty when resuming.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuerySubscribed {
    pub query_id: String,
    pub items: Vec<QueryItemView>,
    pub since: String,
}

/// The reply body of `get_items`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemsPage {
    pub items: Vec<ItemView>,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> ObjectView {
        ObjectView {
            sid: "ET00000000000000000000000000000001".into(),
            service_sid: "IS00000000000000000000000000000001".into(),
            kind: ObjectKind::Document,
            unique_name: Some("board \"main\"".into()),
            data: Some(serde_json::json!({ "n": 7, "tags": ["a", "b"], "nested": { "z": null } })),
            revision: 12,
            date_created: "2026-12-03T00:00:00Z".into(),
            date_updated: "2026-12-03T00:00:01Z".into(),
            date_expires: None,
            created_by: "alice".into(),
        }
    }

    /// The server writes replies from their views; a client reads them as the generic frame,
    /// and must find the same reply it would have found in a frame built through a `Value`.
    #[test]
    fn a_reply_written_from_its_view_reads_back_as_the_reply_frame() {
        let view = object();
        let direct = serde_json::to_vec(&ReplyFrame { id: 41, status: 201, body: &view }).expect("serialises");
        let through_value = ServerFrame::Reply {
            id: 41,
            status: 201,
            body: Some(serde_json::to_value(&view).expect("serialises")),
            error: None,
        };
        let read: ServerFrame = serde_json::from_slice(&direct).expect("reads back");
        let (ServerFrame::Reply { id, status, body, error }, ServerFrame::Reply { body: expected, .. }) =
            (read, through_value)
        else {
            panic!("not a reply frame: {}", String::from_utf8_lossy(&direct));
        };
        assert_eq!((id, status, error.is_none()), (41, 201, true));
        assert_eq!(body, expected);
        assert_eq!(serde_json::from_value::<ObjectView>(body.expect("a body")).expect("an object view").revision, 12);
    }

    #[test]
    fn an_object_reply_written_directly_is_the_serialised_one() {
        let mut every_field = object();
        every_field.unique_name = Some("a \"name\"\n".into());
        every_field.data = Some(serde_json::json!({ "text": "tab\there", "n": [1.5, -2, null] }));
        every_field.date_expires = Some("2026-12-04T13:00:00.5Z".into());
        every_field.created_by = "who\\am-I".into();
        let mut bare = object();
        bare.data = None;
        bare.unique_name = None;
        for view in [object(), every_field, bare] {
            assert_eq!(view.to_json(), serde_json::to_vec(&view).expect("serialises"));
            let frame = ReplyFrame { id: u64::MAX, status: 201, body: &view };
            assert_eq!(
                String::from_utf8(frame.to_json()).expect("utf-8"),
                serde_json::to_string(&frame).expect("serialises")
            );
        }
    }

    #[test]
    fn frames_read_directly_are_read_as_the_derived_reader_reads_them() {
        let object = r#""kind":"document","object":"ET00000000000000000000000000000001""#;
        let frames = [
            format!(r#"{{"type":"update","id":7,{object},"data":{{"n":1}},"if_match":3}}"#),
            format!(r#"{{"id":7,{object},"data":{{"n":1}},"ttl":60,"type":"update"}}"#),
            format!(r#"{{"type":"update","id":7,{object},"data":null,"ttl":null,"if_match":null}}"#),
            format!(r#"{{"type":"update","id":7,{object}}}"#),
            format!(r#"{{"type":"update","id":7,{object},"data":{{}},"return":"minimal"}}"#),
            format!(r#"{{"type":"update","id":7,{object},"return":"representation","if_match":1}}"#),
            format!(r#"{{"type":"get","id":1,{object}}}"#),
            format!(r#"{{"type":"remove","id":2,{object},"if_match":9}}"#),
            format!(r#"{{"type":"remove","id":2,{object},"if_match":null}}"#),
            format!(r#"{{"type":"unsubscribe","id":3,{object}}}"#),
            format!(r#"{{"type":"subscribe","id":3,{object},"since":"abc"}}"#),
            r#"{"type":"set_item","id":4,"kind":"map","object":"m","key":"k","data":{},"if_match":1}"#.to_owned(),
            r#"{"type":"set_item","id":4,"kind":"list","object":"l","index":0,"data":{},"return":"minimal"}"#
                .to_owned(),
            r#"{"type":"ping","id":5}"#.to_owned(),
            r#"{"type":"authenticate","token":"t"}"#.to_owned(),
            // Each of these must be refused as the derived reader refuses it.
            format!(r#"{{"type":"get","id":1,{object},"data":null}}"#),
            format!(r#"{{"type":"get","id":1,{object},"if_match":1}}"#),
            format!(r#"{{"type":"remove","id":2,{object},"ttl":5}}"#),
            format!(r#"{{"type":"remove","id":2,{object},"data":{{}}}}"#),
            format!(r#"{{"type":"get","id":1,{object},"return":"minimal"}}"#),
            format!(r#"{{"type":"remove","id":2,{object},"return":"minimal"}}"#),
            format!(r#"{{"type":"update","id":7,{object},"return":null}}"#),
            format!(r#"{{"type":"update","id":7,{object},"return":"none"}}"#),
            format!(r#"{{"type":"update","id":7,{object},"extra":1}}"#),
            format!(r#"{{"type":"update","id":7,{object},"id":8}}"#),
            format!(r#"{{"type":"update","id":-1,{object}}}"#),
            r#"{"type":"update","id":7,"kind":"table","object":"x"}"#.to_owned(),
            // An escaped name is read, but cannot be borrowed: the derived reader takes it.
            format!(r#"{{"type":"upd\u0061te","id":7,{object}}}"#),
            format!(r#"{{"type":"teleport","id":7,{object}}}"#),
            r#"{"id":7}"#.to_owned(),
            "not json".to_owned(),
        ];
        let mut direct = 0;
        for text in &frames {
            let derived = serde_json::from_str::<ClientFrame>(text);
            let parsed = ClientFrame::parse(text);
            assert_eq!(format!("{parsed:?}"), format!("{derived:?}"), "{text}");
            direct +=
                usize::from(serde_json::from_str::<ObjectOp<'_>>(text).ok().and_then(ObjectOp::into_frame).is_some());
        }
        assert_eq!(direct, 9, "the get, update and remove frames above are read directly");
    }

    #[test]
    fn a_write_asks_for_its_reply_in_full_unless_it_says_minimal() {
        let object = r#""kind":"document","object":"settings""#;
        let returning = |text: &str| match ClientFrame::parse(text).expect("reads") {
            ClientFrame::Update { returning, .. } | ClientFrame::SetItem { returning, .. } => returning,
            other => panic!("not a write: {other:?}"),
        };
        assert_eq!(returning(&format!(r#"{{"type":"update","id":1,{object},"data":{{}}}}"#)), Return::Representation);
        assert_eq!(returning(&format!(r#"{{"type":"update","id":1,{object},"return":"minimal"}}"#)), Return::Minimal);
        let item = r#"{"type":"set_item","id":2,"kind":"map","object":"m","key":"k","data":{},"return":"minimal"}"#;
        assert_eq!(returning(item), Return::Minimal);
        let added = r#"{"type":"add_item","id":3,"list":"l","data":{},"return":"minimal"}"#;
        assert!(matches!(ClientFrame::parse(added), Ok(ClientFrame::AddItem { returning: Return::Minimal, .. })));
        let published = r#"{"type":"publish","id":4,"stream":"s","data":{},"return":"minimal"}"#;
        assert!(matches!(ClientFrame::parse(published), Ok(ClientFrame::Publish { returning: Return::Minimal, .. })));
        let plain = r#"{"type":"publish","id":5,"stream":"s","data":{}}"#;
        assert!(matches!(
            ClientFrame::parse(plain),
            Ok(ClientFrame::Publish { returning: Return::Representation, .. })
        ));
        let unknown = r#"{"type":"add_item","id":6,"list":"l","data":{},"return":"nothing"}"#;
        assert!(ClientFrame::parse(unknown).is_err(), "an unknown preference is refused");
        // Written back, the default is left out, so a server that predates the field reads it.
        let frame = ClientFrame::parse(&format!(r#"{{"type":"update","id":1,{object}}}"#)).expect("reads");
        assert!(!serde_json::to_string(&frame).expect("serialises").contains("return"));
        let minimal = Written { index: None, revision: 4 };
        assert_eq!(serde_json::to_string(&minimal).expect("serialises"), r#"{"revision":4}"#);
        let added = Written { index: Some(7), revision: 0 };
        assert_eq!(serde_json::to_string(&added).expect("serialises"), r#"{"index":7,"revision":0}"#);
        for (id, status, index, revision) in [(0, 200, None, 0), (u64::MAX, 201, None, u64::MAX), (3, 201, Some(0), 0)]
        {
            let frame = ReplyFrame { id, status, body: &Written { index, revision } };
            assert_eq!(frame.to_json(), serde_json::to_vec(&frame).expect("serialises"), "written directly");
        }
    }

    #[test]
    fn an_empty_reply_body_is_an_empty_object() {
        let direct = serde_json::to_string(&ReplyFrame { id: 1, status: 204, body: &serde_json::Map::new() })
            .expect("serialises");
        assert_eq!(direct, r#"{"type":"reply","id":1,"status":204,"body":{}}"#);
    }
}
