//! Change-log events as they travel: in long-poll answers, WebSocket `event` frames and webhooks.

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

/// One entry of a service's change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Resume token: a reader that saw this event passes it to continue after it.
    pub token: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub service_sid: Sid,
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
    pub data: Option<Value>,
    /// The data before this change, for updates and removals of items and documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_expires: Option<Timestamp>,
    pub date: Timestamp,
    pub identity: String,
    /// Why a removal happened when it was not asked for (`expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
