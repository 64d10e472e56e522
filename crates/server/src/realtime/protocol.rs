//! Frames of the native WebSocket protocol (JSON text frames, `type`-tagged).

use ferrosync_core::model::{ObjectKind, OpenMode};
use ferrosync_core::page::Order;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Close code sent when the access token expires.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code sent when authentication fails or never arrives.
pub const CLOSE_UNAUTHENTICATED: u16 = 4003;
/// Close code sent to a consumer whose queue overflowed; it resumes from the tokens it was sent.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// What a client sends. Every request carries an `id` echoed in its reply.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Authenticate {
        token: String,
    },
    Subscribe {
        id: u64,
        kind: ObjectKind,
        object: String,
        since: Option<String>,
    },
    /// A live query: the items of index `index` matching `query` now (or, with `since`, from
    /// that point of the log), then every change to them.
    SubscribeQuery {
        id: u64,
        index: String,
        query: String,
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
        sid: Option<String>,
        unique_name: Option<String>,
        #[serde(default)]
        mode: OpenMode,
        ttl: Option<u64>,
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
        data: Option<Value>,
        ttl: Option<u64>,
        if_match: Option<u64>,
    },
    Remove {
        id: u64,
        kind: ObjectKind,
        object: String,
        if_match: Option<u64>,
    },
    AddItem {
        id: u64,
        list: String,
        data: Value,
        #[serde(alias = "item_ttl")]
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
    },
    SetItem {
        id: u64,
        kind: ObjectKind,
        object: String,
        index: Option<u64>,
        key: Option<String>,
        data: Option<Value>,
        #[serde(alias = "item_ttl")]
        ttl: Option<u64>,
        collection_ttl: Option<u64>,
        if_match: Option<u64>,
    },
    RemoveItem {
        id: u64,
        kind: ObjectKind,
        object: String,
        index: Option<u64>,
        key: Option<String>,
        if_match: Option<u64>,
    },
    GetItems {
        id: u64,
        kind: ObjectKind,
        object: String,
        order: Option<Order>,
        page_size: Option<u32>,
        page_token: Option<String>,
    },
    Publish {
        id: u64,
        stream: String,
        data: Value,
    },
    UpdateToken {
        id: u64,
        token: String,
    },
    Ping {
        id: u64,
    },
}

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

/// What the server sends besides event frames (which are pre-serialised by the hub).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Connected {
        connection_id: u64,
        identity: &'a str,
        service_sid: &'a str,
        expires_at: i64,
    },
    Reply {
        id: u64,
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<crate::api::native::error::ErrorBody>,
    },
    /// A client frame that could not be read; `id` is absent when the frame had none.
    Error {
        id: Option<u64>,
        error: crate::api::native::error::ErrorBody,
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

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ResumePoint {
    pub object_sid: String,
    pub since: String,
}
