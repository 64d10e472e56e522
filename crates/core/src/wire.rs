//! Domain values as the native API's wire views ([`ferrosync_protocol::rest`]). The
//! conversions live here, beside the domain types, so every face that shows them (the REST
//! handlers, the WebSocket replies) shares one.

use crate::index::{IndexDef, IndexSource};
use crate::model::{ApiKey, Item, Permission, Service, StreamMessage, SyncObject};
use ferrosync_protocol::query::IndexView;
use ferrosync_protocol::rest::{ApiKeyView, ItemView, MessageView, ObjectView, PermissionView, ServiceView};

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

impl From<SyncObject> for ObjectView {
    fn from(o: SyncObject) -> Self {
        ObjectView {
            sid: o.sid.into_string(),
            service_sid: o.service_sid.into_string(),
            kind: o.kind,
            unique_name: o.unique_name,
            data: o.data.map(std::sync::Arc::unwrap_or_clone),
            revision: o.revision,
            date_created: o.date_created.to_rfc3339(),
            date_updated: o.date_updated.to_rfc3339(),
            date_expires: o.date_expires.map(|t| t.to_rfc3339()),
            created_by: o.created_by,
        }
    }
}

impl From<Item> for ItemView {
    fn from(i: Item) -> Self {
        ItemView {
            object_sid: i.object_sid.into_string(),
            index: i.index,
            key: i.key,
            data: std::sync::Arc::unwrap_or_clone(i.data),
            revision: i.revision,
            date_created: i.date_created.to_rfc3339(),
            date_updated: i.date_updated.to_rfc3339(),
            date_expires: i.date_expires.map(|t| t.to_rfc3339()),
            created_by: i.created_by,
        }
    }
}

impl From<StreamMessage> for MessageView {
    fn from(m: StreamMessage) -> Self {
        MessageView { sid: m.sid.into_string(), stream_sid: m.stream_sid.into_string(), data: m.data }
    }
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

impl From<IndexDef> for IndexView {
    fn from(d: IndexDef) -> Self {
        let (map, map_prefix) = match d.source {
            IndexSource::Map(m) => (Some(m), None),
            IndexSource::MapPrefix(p) => (None, Some(p)),
        };
        IndexView { name: d.name, map, map_prefix, fields: d.fields }
    }
}
