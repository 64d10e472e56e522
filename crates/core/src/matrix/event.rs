//! Room events as stored and as served. A timeline item holds the client-format event plus
//! two private fields the server reads back: the state event it replaced (so state "as of the
//! start of a timeline" can be rebuilt) and the sending device's transaction id (echoed only to
//! that device). [`for_client`] is the one way an event leaves the server.

use serde_json::{Map, Value, json};

/// The state event a state event replaced, without its own history.
pub const PREV_STATE: &str = "_prev_state";
/// `{device_id, txn_id}` of the send that made the event.
pub const TXN: &str = "_txn";

/// Event ids name the room and the event's place in its timeline, so an id leads straight to
/// the event: `$<room's opaque part>_<index>`.
pub fn event_id_for(room_id: &str, index: u64) -> String {
    format!("${}_{index}", opaque(room_id))
}

/// The timeline index an event id of `room_id` names.
pub fn event_index(room_id: &str, event_id: &str) -> Option<u64> {
    let (room, index) = event_id.strip_prefix('$')?.rsplit_once('_')?;
    if room != opaque(room_id) {
        return None;
    }
    index.parse().ok()
}

fn opaque(room_id: &str) -> &str {
    let id = room_id.strip_prefix('!').unwrap_or(room_id);
    id.split_once(':').map_or(id, |(local, _)| local)
}

/// Who is looking, for the parts of an event that depend on it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    /// Milliseconds since the epoch, for `unsigned.age`.
    pub now_ms: i64,
}

/// The event as a client gets it: private fields dropped, `unsigned.age` set,
/// `unsigned.transaction_id` for the device that sent it, and `room_id` only where the
/// endpoint's format has it.
pub fn for_client(stored: &Value, viewer: &Viewer<'_>, with_room_id: bool) -> Value {
    let Some(obj) = stored.as_object() else { return stored.clone() };
    let mut out = Map::with_capacity(obj.len() + 1);
    for (k, v) in obj {
        if k.starts_with('_') || (!with_room_id && k == "room_id") {
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    let mut unsigned = out.remove("unsigned").and_then(|u| u.as_object().cloned()).unwrap_or_default();
    if let Some(ts) = obj.get("origin_server_ts").and_then(Value::as_i64) {
        unsigned.insert("age".into(), json!((viewer.now_ms - ts).max(0)));
    }
    if let Some(txn) = obj.get(TXN)
        && obj.get("sender").and_then(Value::as_str) == Some(viewer.user_id)
        && txn["device_id"].as_str() == Some(viewer.device_id)
    {
        unsigned.insert("transaction_id".into(), txn["txn_id"].clone());
    }
    out.insert("unsigned".into(), Value::Object(unsigned));
    Value::Object(out)
}

/// The state event `stored` replaced, rebuilt from what was kept with it.
pub fn replaced_state(stored: &Value) -> Option<&Value> {
    stored.get(PREV_STATE).filter(|v| v.is_object())
}

/// What a stored state event keeps of the one it replaces: the event without its own history.
pub fn as_prev_state(stored: &Value) -> Value {
    let mut prev = stored.clone();
    if let Some(obj) = prev.as_object_mut() {
        obj.retain(|k, _| !k.starts_with('_') && k != "unsigned");
    }
    prev
}

/// Strips an event as the redaction algorithm says (room versions 10 and 11: the content
/// keys each type keeps) and records the redaction in `unsigned.redacted_because`.
pub fn redacted(event: &mut Value, because: Value) {
    let keep: &[&str] = match event["type"].as_str().unwrap_or_default() {
        "m.room.member" => &["membership", "join_authorised_via_users_server"],
        "m.room.create" => &["creator", "room_version", "m.federate", "predecessor", "type"],
        "m.room.join_rules" => &["join_rule", "allow"],
        "m.room.power_levels" => {
            &["ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"]
        }
        "m.room.history_visibility" => &["history_visibility"],
        "m.room.redaction" => &["redacts"],
        _ => &[],
    };
    if let Some(content) = event.get_mut("content").and_then(Value::as_object_mut) {
        content.retain(|k, _| keep.contains(&k.as_str()));
    }
    if let Some(obj) = event.as_object_mut() {
        obj.remove(PREV_STATE);
        let unsigned = obj.entry("unsigned").or_insert_with(|| json!({}));
        if let Some(u) = unsigned.as_object_mut() {
            u.retain(|k, _| k == "replaces_state");
            u.insert("redacted_because".into(), because);
        }
    }
}

/// A state event as invites and knocks show the room: type, state key, sender, content.
pub fn stripped(stored: &Value) -> Value {
    json!({
        "type": stored["type"],
        "state_key": stored["state_key"],
        "sender": stored["sender"],
        "content": stored["content"],
    })
}

/// `type` and `state_key` of a state event.
pub fn state_key_of(stored: &Value) -> Option<(&str, &str)> {
    Some((stored["type"].as_str()?, stored.get("state_key")?.as_str()?))
}

/// Keeps only the listed fields (dot paths; `\.` is a literal dot), as a filter's
/// `event_fields` asks.
pub fn project(event: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for field in fields {
        let path = split_path(field);
        let mut source = event;
        let mut found = true;
        for part in &path {
            match source.get(part.as_str()) {
                Some(v) => source = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut target = &mut out;
        for (n, part) in path.iter().enumerate() {
            let Some(obj) = target.as_object_mut() else { break };
            if n + 1 == path.len() {
                obj.insert(part.clone(), source.clone());
                break;
            }
            target = obj.entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

fn split_path(field: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(last) = parts.last_mut()
                {
                    last.push(next);
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_lead_to_their_place_in_the_room() {
        let id = event_id_for("!abc123:example.org", 42);
        assert_eq!(id, "$abc123_42");
        assert_eq!(event_index("!abc123:example.org", &id), Some(42));
        assert_eq!(event_index("!other:example.org", &id), None, "another room's event");
        assert_eq!(event_index("!abc123:example.org", "$abc123_x"), None);
        assert_eq!(event_index("!abc123:example.org", "abc123_1"), None);
    }

    #[test]
    fn clients_get_no_private_fields_and_only_their_own_transaction_ids() {
        let stored = json!({
            "event_id": "$r_1", "type": "m.room.message", "sender": "@a:x", "room_id": "!r:x",
            "origin_server_ts": 1000, "content": { "body": "hi" },
            TXN: { "device_id": "D1", "txn_id": "t1" },
        });
        let mine = for_client(&stored, &Viewer { user_id: "@a:x", device_id: "D1", now_ms: 1500 }, false);
        assert_eq!(mine["unsigned"], json!({ "age": 500, "transaction_id": "t1" }));
        assert!(mine.get("room_id").is_none() && mine.get(TXN).is_none());
        let other_device = for_client(&stored, &Viewer { user_id: "@a:x", device_id: "D2", now_ms: 1500 }, true);
        assert_eq!(other_device["unsigned"], json!({ "age": 500 }));
        assert_eq!(other_device["room_id"], "!r:x");
    }

    #[test]
    fn redaction_keeps_what_the_algorithm_keeps() {
        let mut message =
            json!({ "type": "m.room.message", "content": { "body": "secret" }, "unsigned": { "age": 1 } });
        redacted(&mut message, json!({ "event_id": "$x_9" }));
        assert_eq!(message["content"], json!({}));
        assert_eq!(message["unsigned"], json!({ "redacted_because": { "event_id": "$x_9" } }));
        let mut member = json!({ "type": "m.room.member", "content": { "membership": "join", "displayname": "M" } });
        redacted(&mut member, json!({}));
        assert_eq!(member["content"], json!({ "membership": "join" }));
    }

    #[test]
    fn event_fields_keep_only_the_listed_paths() {
        let event = json!({ "type": "t", "content": { "body": "b", "a.b": 1, "x": 2 }, "sender": "@s:x" });
        let fields = vec!["type".to_owned(), "content.body".to_owned(), "content.a\\.b".to_owned(), "nope".to_owned()];
        assert_eq!(project(&event, &fields), json!({ "type": "t", "content": { "body": "b", "a.b": 1 } }));
    }
}
