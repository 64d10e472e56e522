//! How the data commands print: documents, items and events as JSON.

use super::*;

pub(super) fn document_json(doc: &ferrosync_client::Document) -> Value {
    let mut out = Map::new();
    out.insert("sid".into(), doc.sid().into());
    out.insert("unique_name".into(), doc.unique_name().into());
    out.insert("revision".into(), doc.revision().into());
    out.insert("data".into(), doc.data());
    if let Some(expires) = doc.date_expires() {
        out.insert("date_expires".into(), expires.into());
    }
    Value::Object(out)
}

pub(super) fn insert_key(out: &mut Map<String, Value>, key: &ItemKey) {
    match key {
        ItemKey::Index(i) => out.insert("index".into(), (*i).into()),
        ItemKey::Key(k) => out.insert("key".into(), k.as_str().into()),
    };
}

pub(super) fn item_json(item: &Item) -> Value {
    let mut out = Map::new();
    insert_key(&mut out, &item.key);
    out.insert("data".into(), item.data.clone());
    out.insert("revision".into(), item.revision.into());
    if let Some(expires) = &item.date_expires {
        out.insert("date_expires".into(), expires.as_str().into());
    }
    Value::Object(out)
}

/// One change as a flat JSON object: `kind`, where (`index`/`key`), `data`, `revision`, and
/// the log position `seq`, the `identity` that made it and `is_local`.
pub(super) fn event_json(e: &SyncEvent) -> Value {
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    match &e.kind {
        SyncEventKind::Updated { data, previous, revision } => {
            put("kind", "updated".into());
            put("data", data.clone());
            put("revision", (*revision).into());
            put("previous", previous.clone().unwrap_or(Value::Null));
        }
        SyncEventKind::ItemAdded { item } => {
            put("kind", "item_added".into());
            if let Value::Object(fields) = item_json(item) {
                out.extend(fields);
            }
        }
        SyncEventKind::ItemUpdated { item, previous } => {
            put("kind", "item_updated".into());
            put("previous", previous.clone().unwrap_or(Value::Null));
            if let Value::Object(fields) = item_json(item) {
                out.extend(fields);
            }
        }
        SyncEventKind::ItemRemoved { key, previous, reason } => {
            put("kind", "item_removed".into());
            put("previous", previous.clone().unwrap_or(Value::Null));
            put("reason", reason.clone().into());
            insert_key(&mut out, key);
        }
        SyncEventKind::MessagePublished { message_sid, data } => {
            put("kind", "message_published".into());
            put("message_sid", message_sid.as_str().into());
            put("data", data.clone());
        }
        SyncEventKind::Removed { reason } => {
            put("kind", "removed".into());
            put("reason", reason.clone().into());
        }
    }
    out.insert("object_sid".into(), e.object_sid.as_str().into());
    out.insert("seq".into(), e.seq.into());
    out.insert("identity".into(), e.identity.as_str().into());
    out.insert("is_local".into(), e.is_local.into());
    Value::Object(out)
}

pub(super) fn print_pretty(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    print_text(&text).map(drop)
}

/// Prints one line and flushes it, so a reader sees each event as it happens. False when
/// stdout is closed.
pub fn print_line(value: &Value) -> anyhow::Result<bool> {
    print_text(&serde_json::to_string(value)?)
}

pub fn print_text(text: &str) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: SyncEventKind) -> SyncEvent {
        SyncEvent {
            kind,
            is_local: false,
            object_sid: "MPx".into(),
            identity: "alice".into(),
            seq: 7,
            token: "t".into(),
        }
    }

    #[test]
    fn events_print_as_flat_objects() {
        let item = Item { key: ItemKey::Key("k".into()), data: json!({"a": 1}), revision: 2, date_expires: None };
        assert_eq!(
            event_json(&event(SyncEventKind::ItemUpdated { item, previous: Some(json!({"a": 0})) })),
            json!({"kind": "item_updated", "key": "k", "data": {"a": 1}, "revision": 2, "previous": {"a": 0},
                   "object_sid": "MPx", "seq": 7, "identity": "alice", "is_local": false})
        );
        let removed = event_json(&event(SyncEventKind::ItemRemoved {
            key: ItemKey::Index(3),
            previous: None,
            reason: Some("expired".into()),
        }));
        assert_eq!(removed["index"], 3);
        assert_eq!(removed["reason"], "expired");
        let doc = event_json(&event(SyncEventKind::Updated { data: json!({}), previous: None, revision: 4 }));
        assert_eq!((doc["kind"].as_str(), doc["revision"].as_u64()), (Some("updated"), Some(4)));
    }
}
