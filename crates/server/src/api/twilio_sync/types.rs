//! Wire views of Twilio Sync v1: snake_case JSON with exactly the spec's fields, absolute `url`
//! and `links`, `revision` as a string and dates in whole seconds.

use ferrosync_core::model::{Item, ObjectKind, Permission, Service, StreamMessage, SyncObject};
use ferrosync_core::timestamp::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::Value;

/// Where resources live: `scheme://host/twilio/sync/v1`, and the account that owns them.
pub struct Urls {
    pub base: String,
    pub account_sid: String,
}

/// Characters kept as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The path segment of a kind's collection.
pub const fn collection(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Document => "Documents",
        ObjectKind::List => "Lists",
        ObjectKind::Map => "Maps",
        ObjectKind::Stream => "Streams",
    }
}

impl Urls {
    pub fn service(&self, sid: &str) -> String {
        format!("{}/Services/{sid}", self.base)
    }

    pub fn object(&self, o: &SyncObject) -> String {
        self.object_at(o.service_sid.as_str(), o.kind, o.sid.as_str())
    }

    pub fn object_at(&self, service_sid: &str, kind: ObjectKind, sid: &str) -> String {
        format!("{}/{}/{sid}", self.service(service_sid), collection(kind))
    }
}

fn date(t: Timestamp) -> String {
    t.to_iso_seconds()
}

#[derive(Serialize)]
pub struct ServiceLinks {
    documents: String,
    lists: String,
    maps: String,
    streams: String,
}

#[derive(Serialize)]
pub struct ServiceView {
    sid: String,
    unique_name: Option<String>,
    account_sid: String,
    friendly_name: Option<String>,
    date_created: String,
    date_updated: String,
    url: String,
    webhook_url: Option<String>,
    webhooks_from_rest_enabled: bool,
    reachability_webhooks_enabled: bool,
    acl_enabled: bool,
    reachability_debouncing_enabled: bool,
    reachability_debouncing_window: u32,
    links: ServiceLinks,
}

impl ServiceView {
    pub fn new(urls: &Urls, s: Service) -> Self {
        let url = urls.service(s.sid.as_str());
        ServiceView {
            links: ServiceLinks {
                documents: format!("{url}/Documents"),
                lists: format!("{url}/Lists"),
                maps: format!("{url}/Maps"),
                streams: format!("{url}/Streams"),
            },
            sid: s.sid.to_string(),
            unique_name: s.unique_name,
            account_sid: urls.account_sid.clone(),
            friendly_name: s.friendly_name,
            date_created: date(s.date_created),
            date_updated: date(s.date_updated),
            url,
            webhook_url: s.settings.webhook_url,
            webhooks_from_rest_enabled: s.settings.webhooks_from_rest_enabled,
            reachability_webhooks_enabled: s.settings.reachability_webhooks_enabled,
            acl_enabled: s.acl_enabled,
            reachability_debouncing_enabled: s.settings.reachability_debouncing_enabled,
            reachability_debouncing_window: s.settings.reachability_debouncing_window,
        }
    }
}

/// A Document, List, Map or Stream: the fields they share, plus each kind's own (Documents
/// have `data`, Streams have no `revision`) and links.
#[derive(Serialize)]
pub struct ObjectView {
    sid: String,
    unique_name: Option<String>,
    account_sid: String,
    service_sid: String,
    url: String,
    links: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    date_expires: Option<String>,
    date_created: String,
    date_updated: String,
    created_by: String,
}

impl ObjectView {
    pub fn new(urls: &Urls, o: SyncObject) -> Self {
        let url = urls.object(&o);
        let link_names: &[&str] = match o.kind {
            ObjectKind::Document => &["permissions"],
            ObjectKind::List | ObjectKind::Map => &["items", "permissions"],
            ObjectKind::Stream => &["messages"],
        };
        let links = link_names
            .iter()
            .map(|name| {
                let mut segment = name.to_string();
                segment[..1].make_ascii_uppercase();
                (name.to_string(), Value::String(format!("{url}/{segment}")))
            })
            .collect();
        ObjectView {
            revision: (o.kind != ObjectKind::Stream).then(|| o.revision.to_string()),
            data: match o.kind {
                ObjectKind::Document => Some(
                    o.data.map(std::sync::Arc::unwrap_or_clone).unwrap_or_else(|| Value::Object(Default::default())),
                ),
                _ => None,
            },
            sid: o.sid.to_string(),
            unique_name: o.unique_name,
            account_sid: urls.account_sid.clone(),
            service_sid: o.service_sid.to_string(),
            url,
            links,
            date_expires: o.date_expires.map(date),
            date_created: date(o.date_created),
            date_updated: date(o.date_updated),
            created_by: o.created_by,
        }
    }
}

/// A List item (`index`, `list_sid`) or a Map item (`key`, `map_sid`).
#[derive(Serialize)]
pub struct ItemView {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    account_sid: String,
    service_sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_sid: Option<String>,
    url: String,
    revision: String,
    data: Value,
    date_expires: Option<String>,
    date_created: String,
    date_updated: String,
    created_by: String,
}

impl ItemView {
    /// `kind` is the kind of the item's container (List or Map).
    pub fn new(urls: &Urls, service_sid: &str, kind: ObjectKind, item: Item) -> Self {
        let container = item.object_sid.to_string();
        let (segment_value, list_sid, map_sid) = match kind {
            ObjectKind::List => (item.index.unwrap_or_default().to_string(), Some(container.clone()), None),
            _ => (segment(item.key.as_deref().unwrap_or_default()), None, Some(container.clone())),
        };
        ItemView {
            url: format!("{}/Items/{segment_value}", urls.object_at(service_sid, kind, &container)),
            index: item.index.filter(|_| kind == ObjectKind::List),
            key: item.key.filter(|_| kind == ObjectKind::Map),
            account_sid: urls.account_sid.clone(),
            service_sid: service_sid.to_owned(),
            list_sid,
            map_sid,
            revision: item.revision.to_string(),
            data: std::sync::Arc::unwrap_or_clone(item.data),
            date_expires: item.date_expires.map(date),
            date_created: date(item.date_created),
            date_updated: date(item.date_updated),
            created_by: item.created_by,
        }
    }
}

/// A permission on a Document (`document_sid`), List (`list_sid`) or Map (`map_sid`).
#[derive(Serialize)]
pub struct PermissionView {
    account_sid: String,
    service_sid: String,
    #[serde(flatten)]
    object: serde_json::Map<String, Value>,
    identity: String,
    read: bool,
    write: bool,
    manage: bool,
    url: String,
}

impl PermissionView {
    /// `kind` is the kind of the object the permission is on.
    pub fn new(urls: &Urls, service_sid: &str, kind: ObjectKind, p: Permission) -> Self {
        let field = match kind {
            ObjectKind::Document => "document_sid",
            ObjectKind::List => "list_sid",
            _ => "map_sid",
        };
        let object_sid = p.object_sid.to_string();
        let url = format!("{}/Permissions/{}", urls.object_at(service_sid, kind, &object_sid), segment(&p.identity));
        let mut object = serde_json::Map::new();
        object.insert(field.to_owned(), Value::String(object_sid));
        PermissionView {
            url,
            account_sid: urls.account_sid.clone(),
            service_sid: service_sid.to_owned(),
            object,
            identity: p.identity,
            read: p.read,
            write: p.write,
            manage: p.manage,
        }
    }
}

#[derive(Serialize)]
pub struct MessageView {
    sid: String,
    data: Value,
}

impl From<StreamMessage> for MessageView {
    fn from(m: StreamMessage) -> Self {
        MessageView { sid: m.sid.to_string(), data: m.data }
    }
}
