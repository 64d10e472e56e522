//! Wire structs of the twilsock face: frame headers in both directions, the tunnelled CDS
//! request, and the JSON bodies (object and item descriptors) the SDK reads.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A frame header from the client. Every method's fields are optional here; each handler
/// checks the ones it needs. Unknown fields (metadata, tweaks, …) are ignored. The method and
/// ids are borrowed from the frame where no escape needs undoing: most frames a client sends
/// are acknowledgements, read only for their method.
#[derive(Debug, Deserialize)]
pub struct Header<'a> {
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub payload_size: usize,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub payload_type: Option<Cow<'a, str>>,
    /// `init` and `update`: the access token.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub registrations: Option<Value>,
    /// `message`: the tunnelled CDS request. Boxed: most frames are acknowledgements without
    /// one, and a header without it inline is half the size to move.
    #[serde(default)]
    pub http_request: Option<Box<HttpRequest>>,
}

/// An optional string borrowed where it can be: serde borrows a `Cow` only as a field of its
/// own, not inside an `Option`.
fn borrowed<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Option::<Text<'de>>::deserialize(d).map(|text| text.map(|Text(t)| t))
}

/// A CDS request carried by a `message` frame.
#[derive(Debug, Deserialize)]
pub struct HttpRequest {
    #[serde(default)]
    pub host: Option<String>,
    pub path: String,
    pub method: String,
    /// Query parameters exactly as the client split them: values are still percent-encoded,
    /// and a repeated name gives an array.
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub headers: Option<Map<String, Value>>,
}

/// `status` in a reply or close: the transport-level outcome.
#[derive(Debug, Serialize)]
pub struct Status {
    pub code: u16,
    pub status: &'static str,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Status {
    pub const OK: Status = Status { code: 200, status: "OK", error_code: None, description: None };

    pub fn error(code: u16, status: &'static str, error_code: Option<u32>, description: impl Into<String>) -> Self {
        Status { code, status, error_code, description: Some(description.into()) }
    }
}

#[derive(Debug, Serialize)]
pub struct HttpStatus {
    pub code: u16,
    pub status: &'static str,
}

/// The reply to `init`.
#[derive(Debug, Serialize)]
pub struct InitReply<'a> {
    pub method: &'static str,
    pub id: &'a str,
    pub status: Status,
    pub continuation_token: String,
    pub capabilities: Vec<&'static str>,
    pub offline_storage: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_registrations: Option<&'a Value>,
}

/// A reply with no payload (to `update`, or an error reply to anything).
#[derive(Debug, Serialize)]
pub struct StatusReply<'a> {
    pub method: &'static str,
    pub id: &'a str,
    pub status: Status,
}

/// The reply to a `message`: the tunnelled HTTP response.
#[derive(Debug, Serialize)]
pub struct MessageReply<'a> {
    pub method: &'static str,
    pub id: &'a str,
    pub payload_type: &'static str,
    pub status: Status,
    pub http_status: HttpStatus,
    pub http_headers: Map<String, Value>,
}

/// A server-initiated frame: `notification`, `client_update` or `close`.
#[derive(Debug, Serialize)]
pub struct ServerFrame<'a> {
    pub method: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_update_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// The body of `POST /v4/Subscriptions`.
#[derive(Debug, Deserialize)]
pub struct SubscriptionsPoke {
    pub action: String,
    #[serde(default)]
    pub correlation_id: Option<Value>,
    #[serde(default)]
    pub requests: Vec<SubscriptionRequest>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionRequest {
    pub object_sid: String,
    #[serde(default)]
    pub object_type: Option<String>,
    /// The last event the client has seen of this object: where the replay starts.
    #[serde(default)]
    pub last_event_id: Option<Value>,
    /// Live queries (`object_type: "live_query"`): the index and the query the id names.
    #[serde(default)]
    pub index_name: Option<String>,
    #[serde(default)]
    pub query_string: Option<String>,
}

/// The body of object creates and updates; which fields count depends on the kind.
#[derive(Debug, Default, Deserialize)]
pub struct ObjectBody {
    #[serde(default)]
    pub unique_name: Option<String>,
    #[serde(default, deserialize_with = "ferrosync_protocol::value::read_optional_value")]
    pub data: Option<Value>,
    #[serde(default)]
    pub ttl: Option<Value>,
}

/// The body of item writes and stream publishes.
#[derive(Debug, Default, Deserialize)]
pub struct ItemBody {
    #[serde(default, deserialize_with = "ferrosync_protocol::value::read_optional_value")]
    pub data: Option<Value>,
    #[serde(default)]
    pub ttl: Option<Value>,
}

/// What every object's descriptor carries.
#[derive(Debug, Serialize)]
pub struct ObjectMeta {
    pub sid: String,
    pub unique_name: Option<String>,
    pub url: String,
    pub date_created: String,
    pub date_updated: String,
    pub date_expires: Option<String>,
    pub created_by: String,
}

/// An object's descriptor, whichever its kind; serialised as the kind's own view.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ObjectDescriptor {
    Document(DocumentView),
    Collection(CollectionView),
    Stream(StreamView),
}

#[derive(Debug, Serialize)]
pub struct DocumentView {
    #[serde(flatten)]
    pub meta: ObjectMeta,
    pub revision: String,
    pub last_event_id: u64,
    pub data: Value,
}

#[derive(Debug, Serialize)]
pub struct CollectionView {
    #[serde(flatten)]
    pub meta: ObjectMeta,
    pub revision: String,
    pub last_event_id: u64,
    pub links: Map<String, Value>,
    /// Maps opened with `Include=items`: the first page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemView>>,
}

#[derive(Debug, Serialize)]
pub struct StreamView {
    #[serde(flatten)]
    pub meta: ObjectMeta,
    pub links: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub url: String,
    pub revision: String,
    pub last_event_id: u64,
    pub data: Value,
    pub date_created: String,
    pub date_updated: String,
    pub date_expires: Option<String>,
    pub created_by: String,
}

#[derive(Debug, Serialize)]
pub struct ItemPage {
    pub items: Vec<ItemView>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize)]
pub struct PageMeta {
    pub previous_token: Option<String>,
    pub next_token: Option<String>,
}

/// The answer to a removal: where its event sits, so the SDK can order it against pushes.
#[derive(Debug, Serialize)]
pub struct RemovedView {
    pub last_event_id: u64,
    pub date_updated: String,
}
