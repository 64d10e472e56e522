//! Change-log events as the form parameters of Twilio Sync's webhooks: the common ones
//! (`AccountSid`, `ServiceSid`, `EventType`, `Identity`, `DateCreated`) and each event type's own.

use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::ServiceSettings;
use ferrosync_core::sid::Sid;

/// A webhook's form parameters, in the order they are sent.
pub type Params = Vec<(&'static str, String)>;

/// The identity events made with server credentials carry (Twilio's "system").
pub const SYSTEM_IDENTITY: &str = "system";

/// The Twilio event type of a change-log event; `None` for changes Twilio has no webhook for
/// (permissions, and TTL-only updates of lists, maps and streams).
pub fn event_type(kind: EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::DocumentCreated => "document_created",
        EventKind::DocumentUpdated => "document_updated",
        EventKind::DocumentRemoved => "document_removed",
        EventKind::ListCreated => "list_created",
        EventKind::ListRemoved => "list_removed",
        EventKind::ListItemAdded => "list_item_added",
        EventKind::ListItemUpdated => "list_item_updated",
        EventKind::ListItemRemoved => "list_item_removed",
        EventKind::MapCreated => "map_created",
        EventKind::MapRemoved => "map_removed",
        EventKind::MapItemAdded => "map_item_added",
        EventKind::MapItemUpdated => "map_item_updated",
        EventKind::MapItemRemoved => "map_item_removed",
        EventKind::StreamCreated => "stream_created",
        EventKind::StreamRemoved => "stream_removed",
        EventKind::StreamMessagePublished => "stream_message_published",
        EventKind::ListUpdated
        | EventKind::MapUpdated
        | EventKind::StreamUpdated
        | EventKind::PermissionUpdated
        | EventKind::PermissionRemoved => return None,
    })
}

/// Whether the service wants this event: changes made with server credentials (REST, native
/// admin, expiry) only when `webhooks_from_rest_enabled`, identities' changes always.
pub fn wanted(event: &Event, settings: &ServiceSettings) -> bool {
    event_type(event.kind).is_some() && (event.identity != SYSTEM_IDENTITY || settings.webhooks_from_rest_enabled)
}

/// The parameters of `event`'s webhook, or `None` when Twilio has no webhook for it.
pub fn for_event(account_sid: &Sid, event: &Event) -> Option<Params> {
    let event_type = event_type(event.kind)?;
    let mut p: Params = vec![
        ("AccountSid", account_sid.to_string()),
        ("ServiceSid", event.service_sid.to_string()),
        ("EventType", event_type.to_owned()),
        ("Identity", event.identity.clone()),
        ("DateCreated", event.date.to_iso_seconds()),
    ];
    let object = event.object_sid.to_string();
    let name = event.unique_name.clone();
    let data = || event.data.as_ref().map(|d| d.to_string());
    let revision = event.revision.to_string();
    match event.kind {
        EventKind::DocumentCreated | EventKind::DocumentUpdated | EventKind::DocumentRemoved => {
            p.push(("DocumentSid", object));
            push_opt(&mut p, "DocumentUniqueName", name);
            p.push(("DocumentRevision", revision));
            // Not sent for document_removed.
            push_opt(&mut p, "DocumentData", data());
        }
        EventKind::ListCreated | EventKind::ListRemoved => {
            p.push(("ListSid", object));
            push_opt(&mut p, "ListUniqueName", name);
            p.push(("ListRevision", revision));
        }
        EventKind::ListItemAdded | EventKind::ListItemUpdated | EventKind::ListItemRemoved => {
            p.push(("ListSid", object));
            push_opt(&mut p, "ListUniqueName", name);
            push_opt(&mut p, "ItemIndex", event.item_index.map(|i| i.to_string()));
            p.push(("ItemRevision", revision));
            push_opt(&mut p, "ItemData", data());
            p.push(("EventId", event.seq.to_string()));
        }
        EventKind::MapCreated | EventKind::MapRemoved => {
            p.push(("MapSid", object));
            push_opt(&mut p, "MapUniqueName", name);
            p.push(("MapRevision", revision));
        }
        EventKind::MapItemAdded | EventKind::MapItemUpdated | EventKind::MapItemRemoved => {
            p.push(("MapSid", object));
            push_opt(&mut p, "MapUniqueName", name);
            push_opt(&mut p, "ItemKey", event.item_key.clone());
            p.push(("ItemRevision", revision));
            push_opt(&mut p, "ItemData", data());
            p.push(("EventId", event.seq.to_string()));
        }
        EventKind::StreamCreated | EventKind::StreamRemoved => {
            p.push(("StreamSid", object));
            push_opt(&mut p, "StreamUniqueName", name);
        }
        EventKind::StreamMessagePublished => {
            p.push(("StreamSid", object));
            push_opt(&mut p, "StreamUniqueName", name);
            push_opt(&mut p, "MessageSid", event.message_sid.as_ref().map(ToString::to_string));
            push_opt(&mut p, "MessageData", data());
        }
        EventKind::ListUpdated
        | EventKind::MapUpdated
        | EventKind::StreamUpdated
        | EventKind::PermissionUpdated
        | EventKind::PermissionRemoved => return None,
    }
    Some(p)
}

/// The parameters of a reachability webhook (`endpoint_connected` / `endpoint_disconnected`).
pub fn for_reachability(account_sid: &Sid, event: &super::ReachabilityEvent) -> Params {
    vec![
        ("AccountSid", account_sid.to_string()),
        ("ServiceSid", event.service.to_string()),
        ("EventType", event.kind.event_type().to_owned()),
        ("Identity", event.identity.clone()),
        ("EndpointId", event.endpoint_id.clone()),
        ("DateCreated", event.at.to_iso_seconds()),
    ]
}

fn push_opt(p: &mut Params, name: &'static str, value: Option<String>) {
    if let Some(v) = value {
        p.push((name, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::log::EventDraft;
    use ferrosync_core::model::ObjectKind;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::timestamp::Timestamp;
    use serde_json::json;

    fn event(kind: EventKind, identity: &str) -> Event {
        let object_kind = match kind {
            EventKind::MapItemAdded => ObjectKind::Map,
            EventKind::ListItemRemoved => ObjectKind::List,
            _ => ObjectKind::Document,
        };
        EventDraft {
            kind,
            object_sid: Sid::new(object_kind.sid_kind()),
            object_kind,
            unique_name: Some("board".into()),
            item_index: (object_kind == ObjectKind::List).then_some(4),
            item_key: (object_kind == ObjectKind::Map).then(|| "k/1".to_owned()),
            message_sid: None,
            revision: 7,
            data: (kind != EventKind::ListItemRemoved).then(|| json!({"a": 1}).into()),
            previous_data: None,
            date_expires: None,
            date: Timestamp(1_438_286_400_000),
            identity: identity.into(),
            reason: None,
        }
        .into_event("epoch", Sid::new(SidKind::Service), 12)
    }

    fn names(p: &Params) -> Vec<&str> {
        p.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn each_event_carries_its_twilio_parameters() {
        let account = Sid::random(SidKind::Account);
        let doc = for_event(&account, &event(EventKind::DocumentUpdated, "alice")).expect("a webhook");
        assert_eq!(
            names(&doc),
            [
                "AccountSid",
                "ServiceSid",
                "EventType",
                "Identity",
                "DateCreated",
                "DocumentSid",
                "DocumentUniqueName",
                "DocumentRevision",
                "DocumentData"
            ]
        );
        assert!(doc.contains(&("DocumentData", r#"{"a":1}"#.to_owned())));
        assert!(doc.contains(&("DateCreated", "2015-07-30T20:00:00Z".to_owned())));

        let removed = for_event(&account, &event(EventKind::ListItemRemoved, "alice")).expect("a webhook");
        assert!(removed.contains(&("ItemIndex", "4".to_owned())));
        assert!(removed.contains(&("EventId", "12".to_owned())));
        assert!(!names(&removed).contains(&"ItemData"), "no data for a removal");

        let map = for_event(&account, &event(EventKind::MapItemAdded, "alice")).expect("a webhook");
        assert!(map.contains(&("ItemKey", "k/1".to_owned())));
        assert!(map.contains(&("ItemRevision", "7".to_owned())));

        assert!(for_event(&account, &event(EventKind::PermissionUpdated, "alice")).is_none());
    }

    #[test]
    fn server_made_changes_need_webhooks_from_rest() {
        let mut settings = ServiceSettings::default();
        assert!(wanted(&event(EventKind::DocumentCreated, "alice"), &settings));
        assert!(!wanted(&event(EventKind::DocumentCreated, SYSTEM_IDENTITY), &settings));
        settings.webhooks_from_rest_enabled = true;
        assert!(wanted(&event(EventKind::DocumentCreated, SYSTEM_IDENTITY), &settings));
        assert!(!wanted(&event(EventKind::PermissionUpdated, "alice"), &settings));
    }
}
