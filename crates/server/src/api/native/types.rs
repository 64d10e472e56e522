//! Wire types of the native API: request bodies (unknown fields refused) and response views.

use ferrosync_core::model::{ApiKey, Item, ObjectKind, OpenMode, Permission, Service, StreamMessage, SyncObject};
use ferrosync_core::page::{Order, Page};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Optional unique name (≤ 320 characters, never shaped like a SID).
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    /// When set, identities need a permission grant on each object.
    #[serde(default)]
    pub acl_enabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub acl_enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub sid: String,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub acl_enabled: bool,
    pub revision: u64,
    pub date_created: String,
    pub date_updated: String,
}

impl From<Service> for ServiceView {
    fn from(s: Service) -> Self {
        ServiceView {
            sid: s.sid.to_string(),
            unique_name: s.unique_name,
            friendly_name: s.friendly_name,
            acl_enabled: s.acl_enabled,
            revision: s.revision,
            date_created: s.date_created.to_rfc3339(),
            date_updated: s.date_updated.to_rfc3339(),
        }
    }
}

/// Opens an object like the Sync client's `OpenOptions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenObject {
    /// Open by SID.
    pub sid: Option<String>,
    /// Open by unique name.
    pub unique_name: Option<String>,
    /// `open_or_create` (default), `open_existing` or `create_new`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub mode: OpenMode,
    /// Seconds until the object expires; applies on create.
    pub ttl: Option<u64>,
    /// Initial data of a document; applies on create.
    pub data: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateObject {
    /// New document data (documents only).
    pub data: Option<Value>,
    /// New TTL in seconds from now; 0 removes the expiry.
    pub ttl: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectView {
    pub sid: String,
    pub service_sid: String,
    #[schema(value_type = String)]
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

impl From<SyncObject> for ObjectView {
    fn from(o: SyncObject) -> Self {
        ObjectView {
            sid: o.sid.to_string(),
            service_sid: o.service_sid.to_string(),
            kind: o.kind,
            unique_name: o.unique_name,
            data: o.data,
            revision: o.revision,
            date_created: o.date_created.to_rfc3339(),
            date_updated: o.date_updated.to_rfc3339(),
            date_expires: o.date_expires.map(|t| t.to_rfc3339()),
            created_by: o.created_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddListItem {
    pub data: Value,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    pub ttl: Option<u64>,
    /// Seconds until the list expires, counted from this write.
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMapItem {
    pub key: String,
    pub data: Value,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    pub ttl: Option<u64>,
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteItem {
    pub data: Option<Value>,
    /// Seconds until the item expires (also accepted as `item_ttl`).
    #[serde(alias = "item_ttl")]
    pub ttl: Option<u64>,
    pub collection_ttl: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
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

impl From<Item> for ItemView {
    fn from(i: Item) -> Self {
        ItemView {
            object_sid: i.object_sid.to_string(),
            index: i.index,
            key: i.key,
            data: i.data,
            revision: i.revision,
            date_created: i.date_created.to_rfc3339(),
            date_updated: i.date_updated.to_rfc3339(),
            date_expires: i.date_expires.map(|t| t.to_rfc3339()),
            created_by: i.created_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    /// A JSON object of at most 4 KiB.
    pub data: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub sid: String,
    pub stream_sid: String,
    pub data: Value,
}

impl From<StreamMessage> for MessageView {
    fn from(m: StreamMessage) -> Self {
        MessageView { sid: m.sid.to_string(), stream_sid: m.stream_sid.to_string(), data: m.data }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermission {
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub manage: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    pub object_sid: String,
    pub identity: String,
    pub read: bool,
    pub write: bool,
    pub manage: bool,
}

impl From<Permission> for PermissionView {
    fn from(p: Permission) -> Self {
        PermissionView {
            object_sid: p.object_sid.to_string(),
            identity: p.identity,
            read: p.read,
            write: p.write,
            manage: p.manage,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub friendly_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub date_created: String,
    /// Returned once, when the key is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            sid: k.sid.to_string(),
            friendly_name: k.friendly_name,
            date_created: k.date_created.to_rfc3339(),
            secret: (!k.secret.is_empty()).then_some(k.secret),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Service SID or unique name the token grants access to.
    pub service: String,
    pub identity: String,
    /// Lifetime in seconds (default 3600, at most 86400).
    pub ttl: Option<u64>,
    /// API key that signs the token; the first key when absent (root credentials only).
    pub api_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub token: String,
    pub identity: String,
    pub service_sid: String,
    /// Expiry as seconds since the epoch.
    pub expires_at: i64,
}

/// Paging parameters of every listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `asc` (default) or `desc`.
    #[param(value_type = Option<String>)]
    pub order: Option<Order>,
    /// Start at this index or key (inclusive).
    pub from: Option<String>,
    /// 1 to 1000, default 50.
    pub page_size: Option<u32>,
    /// Continue from a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    pub page_size: u32,
    pub next_page_token: Option<String>,
    pub next_page_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageView<T> {
    pub items: Vec<T>,
    pub meta: PageMeta,
}

impl<T> PageView<T> {
    pub fn new<S>(page: Page<S>, page_size: u32, base_url: &str) -> Self
    where
        T: From<S>,
    {
        let token = page.next.map(|t| t.encode());
        let url = token.as_ref().map(|t| format!("{base_url}?page_size={page_size}&page_token={t}"));
        PageView {
            items: page.items.into_iter().map(T::from).collect(),
            meta: PageMeta { page_size, next_page_token: token, next_page_url: url },
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Continue after this token; absent means "from now" unless `from_start` is set.
    pub since: Option<String>,
    /// Start at the oldest event still retained.
    pub from_start: Option<bool>,
    /// Seconds to wait when nothing is new (0 to 55, default 0).
    pub timeout: Option<u64>,
    /// Most events returned (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// Only events of this object (SID).
    pub object: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesView {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<serde_json::value::RawValue>>,
    /// Pass as `since` to continue.
    pub next: String,
}
