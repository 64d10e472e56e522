//! The small enums every layer names: object kinds, open modes and listing order.

use crate::sid::{Sid, SidKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Document,
    List,
    Map,
    Stream,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 4] = [ObjectKind::Document, ObjectKind::List, ObjectKind::Map, ObjectKind::Stream];

    pub const fn sid_kind(self) -> SidKind {
        match self {
            ObjectKind::Document => SidKind::Document,
            ObjectKind::List => SidKind::List,
            ObjectKind::Map => SidKind::Map,
            ObjectKind::Stream => SidKind::Stream,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Document => "document",
            ObjectKind::List => "list",
            ObjectKind::Map => "map",
            ObjectKind::Stream => "stream",
        }
    }

    pub fn from_sid(sid: &Sid) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.sid_kind() == sid.kind())
    }

    /// Stable small integer for storage.
    pub const fn code(self) -> i64 {
        match self {
            ObjectKind::Document => 1,
            ObjectKind::List => 2,
            ObjectKind::Map => 3,
            ObjectKind::Stream => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// How an open call treats an existing or missing object (the Sync client's `OpenOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenMode {
    #[default]
    OpenOrCreate,
    OpenExisting,
    CreateNew,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}
