//! REST bodies of the native API: requests (unknown fields refused) and response views.

use crate::json::JsonObject;
use crate::kinds::{ObjectKind, OpenMode, Order};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Optional unique name (≤ 320 characters, never shaped like a SID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// When set, identities need a permission grant on each object.
    #[serde(default)]
    pub acl_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    pub sid: String,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub acl_enabled: bool,
    pub revision: u64,
    pub date_created: String,
    pub date_updated: String,
}

/// Opens an object like the Sync client's `OpenOptions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenObject {
    /// Open by SID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Open by unique name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// `open_or_create` (default), `open_existing` or `create_new`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub mode: OpenMode,
    /// Seconds until the object expires; applies on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Initial data of a document; applies on create.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::value::read_optional_value")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateObject {
    /// New document data (documents only).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::value::read_optional_value")]
    pub data: Option<Value>,
    /// New TTL in seconds from now; 0 removes the expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectView {
    pub sid: String,
    pub service_sid: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: ObjectKind,
    pub unique_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    pub revision: u64,
    pub date_created: String,
    pub date_updated: String,
    pub date_expires: Option<String>,
    pub created_by: String,
}

impl ObjectView {
    /// The view's JSON, byte for byte what its `Serialize` writes (see [`crate::json`]).
    pub fn to_json(&self) -> Vec<u8> {
        let mut o = JsonObject::with_capacity(320);
        self.write_fields(&mut o);
        o.into_bytes()
    }

    /// Writes the view's fields into `o`, as its `Serialize` would (see [`crate::json`]).
    pub fn write_fields(&self, o: &mut JsonObject) {
        o.str("sid", &self.sid).str("service_sid", &self.service_sid).str("kind", self.kind.as_str());
        o.opt_str("unique_name", self.unique_name.as_deref());
        if let Some(data) = &self.data {
            o.value("data", data);
        }
        o.u64("revision", self.revision)
            .str("date_created", &self.date_created)
            .str("date_updated", &self.date_updated)
            .opt_str("date_expires", self.date_expires.as_deref())
            .str("created_by", &self.created_by);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddListItem {
    #[serde(deserialize_with = "crate::value::read_value")]
    pub data: Value,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Seconds until the list expires, counted from this write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMapItem {
    pub key: String,
    #[serde(deserialize_with = "crate::value::read_value")]
    pub data: Value,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WriteItem {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::value::read_optional_value")]
    pub data: Option<Value>,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemView {
    pub object_sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub data: Value,
    pub revision: u64,
    pub date_created: String,
    pub date_updated: String,
    pub date_expires: Option<String>,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    /// A JSON object of at most 4 KiB.
    #[serde(deserialize_with = "crate::value::read_value")]
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    pub sid: String,
    pub stream_sid: String,
    pub data: Value,
}

/// A write's answer when the writer asked for it minimal (`Prefer: return=minimal`, or
/// `"return":"minimal"` over the WebSocket): the new revision, and the index a list item was
/// added at, without the data the writer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Written {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub revision: u64,
}

/// A published message's answer when asked for it minimal: its SID alone, as a stream message
/// has no revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Published {
    pub sid: String,
}

/// The answer to an item's creation: the item, or [`Written`] when asked for it minimal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ItemCreated {
    Item(ItemView),
    Minimal(Written),
}

/// The answer to a publication: the message, or [`Published`] when asked for it minimal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum MessagePublished {
    Message(MessageView),
    Minimal(Published),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPermission {
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub manage: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionView {
    pub object_sid: String,
    pub identity: String,
    pub read: bool,
    pub write: bool,
    pub manage: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyView {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub date_created: String,
    /// Returned once, when the key is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Service SID or unique name the token grants access to.
    pub service: String,
    pub identity: String,
    /// Lifetime in seconds (default 3600, at most 86400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// API key that signs the token; the first key when absent (root credentials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub token: String,
    pub identity: String,
    pub service_sid: String,
    /// Expiry as seconds since the epoch.
    pub expires_at: i64,
}

/// Paging parameters of every listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageQuery {
    /// `asc` (default) or `desc`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// Start at this index or key (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// 1 to 1000, default 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// Continue from a previous page's `next_page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageMeta {
    pub page_size: u32,
    pub next_page_token: Option<String>,
    pub next_page_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageView<T> {
    pub items: Vec<T>,
    pub meta: PageMeta,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ChangesQuery {
    /// Continue after this token; absent means "from now" unless `from_start` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Start at the oldest event still retained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_start: Option<bool>,
    /// Seconds to wait when nothing is new (0 to 55, default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Most events returned (1 to 1000, default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only events of this object (SID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangesView {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub events: Vec<Box<serde_json::value::RawValue>>,
    /// Pass as `since` to continue.
    pub next: String,
}

/// The revision an entity tag names: bare, quoted or weak (`7`, `"7"`, `W/"7"`). Revisions are
/// the only entity tags the server gives, so a client echoes one back in whichever of these
/// forms its HTTP stack prefers.
pub fn revision_of_etag(value: &str) -> Option<u64> {
    let value = value.trim();
    value.strip_prefix("W/").unwrap_or(value).trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::revision_of_etag;

    #[test]
    fn an_entity_tag_names_a_revision_bare_quoted_or_weak_and_nothing_else() {
        for (tag, revision) in [("7", 7), ("\"7\"", 7), ("W/\"7\"", 7), (" \"12\" ", 12), ("0", 0)] {
            assert_eq!(revision_of_etag(tag), Some(revision), "{tag}");
        }
        for tag in ["", "\"\"", "x", "\"7x\"", "-1", "W/W/\"7\"", "7 8", "18446744073709551616"] {
            assert_eq!(revision_of_etag(tag), None, "{tag}");
        }
    }
}
