//! Matrix filters (`Filter`, `RoomFilter`, `RoomEventFilter`, `EventFilter`) as the spec
//! defines them, and how an event passes one. Members the spec does not name are ignored, as
//! servers do; members of the wrong type refuse the filter.

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest `limit` honoured; larger ones are lowered to it.
pub const MAX_LIMIT: u64 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    #[default]
    Client,
    Federation,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub senders: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_senders: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomEventFilter {
    #[serde(flatten)]
    pub events: EventFilter,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_rooms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains_url: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lazy_load_members: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_redundant_members: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unread_thread_notifications: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_rooms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_leave: bool,
    pub timeline: RoomEventFilter,
    pub state: RoomEventFilter,
    pub ephemeral: RoomEventFilter,
    pub account_data: RoomEventFilter,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_fields: Option<Vec<String>>,
    pub event_format: EventFormat,
    pub presence: EventFilter,
    pub account_data: EventFilter,
    pub room: RoomFilter,
}

impl Filter {
    /// Reads a filter from JSON, naming the member that does not fit.
    pub fn from_json(value: &Value) -> Result<Filter, CoreError> {
        if !value.is_object() {
            return Err(CoreError::invalid("filter", "must be a JSON object"));
        }
        let filter: Filter = serde_json::from_value(value.clone())
            .map_err(|e| CoreError::invalid("filter", format!("is not a valid filter: {e}")))?;
        filter.check_limits()?;
        Ok(filter)
    }

    fn check_limits(&self) -> Result<(), CoreError> {
        let limits = [
            ("presence.limit", self.presence.limit),
            ("account_data.limit", self.account_data.limit),
            ("room.timeline.limit", self.room.timeline.events.limit),
            ("room.state.limit", self.room.state.events.limit),
            ("room.ephemeral.limit", self.room.ephemeral.events.limit),
            ("room.account_data.limit", self.room.account_data.events.limit),
        ];
        for (name, limit) in limits {
            if limit == Some(0) {
                return Err(CoreError::invalid("filter", format!("{name} must be greater than 0")));
            }
        }
        Ok(())
    }

    /// Whether a room is wanted at all (the RoomFilter's own `rooms` / `not_rooms`).
    pub fn wants_room(&self, room_id: &str) -> bool {
        listed(&self.room.rooms, &self.room.not_rooms, room_id, false)
    }
}

/// `pattern` with `*` matching any run of characters (anywhere in it).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Included by `allow` (absent: everything) and not excluded by `deny` (which wins).
fn listed(allow: &Option<Vec<String>>, deny: &Option<Vec<String>>, value: &str, glob: bool) -> bool {
    let matches = |list: &Vec<String>| list.iter().any(|p| if glob { glob_match(p, value) } else { p == value });
    if deny.as_ref().is_some_and(matches) {
        return false;
    }
    allow.as_ref().is_none_or(matches)
}

impl EventFilter {
    pub fn matches(&self, event_type: &str, sender: &str) -> bool {
        listed(&self.types, &self.not_types, event_type, true)
            && listed(&self.senders, &self.not_senders, sender, false)
    }

    /// The limit to apply: the filter's (at most [`MAX_LIMIT`]), else `default`.
    /// For events with no sender to match (ephemeral events, account data).
    pub fn matches_type(&self, event_type: &str) -> bool {
        listed(&self.types, &self.not_types, event_type, true)
    }

    pub fn limit_or(&self, default: u64) -> u64 {
        self.limit.map_or(default, |l| l.min(MAX_LIMIT))
    }
}

impl RoomEventFilter {
    /// For events with no sender to match (typing, receipts, a room's account data).
    pub fn matches_type(&self, room_id: &str, event_type: &str) -> bool {
        listed(&self.rooms, &self.not_rooms, room_id, false) && self.events.matches_type(event_type)
    }

    /// Whether an event of `room_id` passes; `content` answers `contains_url`.
    pub fn matches(&self, room_id: &str, event_type: &str, sender: &str, content: &Value) -> bool {
        if !listed(&self.rooms, &self.not_rooms, room_id, false) || !self.events.matches(event_type, sender) {
            return false;
        }
        match self.contains_url {
            Some(wanted) => content.get("url").is_some() == wanted,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_any_run_of_characters() {
        assert!(glob_match("m.*", "m.room.message"));
        assert!(glob_match("*", ""));
        assert!(glob_match("m.room.*.x", "m.room.a.b.x"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("m.*.member", "m.room.message"));
        assert!(glob_match("*.member", "m.room.member"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn not_lists_win_over_lists() {
        let f = EventFilter {
            types: Some(vec!["m.room.*".into()]),
            not_types: Some(vec!["m.room.member".into()]),
            not_senders: Some(vec!["@spam:example.org".into()]),
            ..Default::default()
        };
        assert!(f.matches("m.room.message", "@a:example.org"));
        assert!(!f.matches("m.room.member", "@a:example.org"));
        assert!(!f.matches("m.presence", "@a:example.org"));
        assert!(!f.matches("m.room.message", "@spam:example.org"));
        assert!(EventFilter::default().matches("anything", "@anyone:x"));
    }

    #[test]
    fn room_event_filters_check_rooms_and_urls() {
        let f =
            RoomEventFilter { not_rooms: Some(vec!["!b:x".into()]), contains_url: Some(true), ..Default::default() };
        let with_url = json!({ "url": "mxc://x/y" });
        assert!(f.matches("!a:x", "m.room.message", "@u:x", &with_url));
        assert!(!f.matches("!a:x", "m.room.message", "@u:x", &json!({})));
        assert!(!f.matches("!b:x", "m.room.message", "@u:x", &with_url));
    }

    #[test]
    fn filters_read_from_json_name_what_is_wrong() {
        let f = Filter::from_json(&json!({
            "room": { "timeline": { "limit": 10, "types": ["m.room.message"] }, "state": { "lazy_load_members": true } },
            "presence": { "not_types": ["*"] },
            "event_format": "client",
            "unknown_member": 1
        }))
        .expect("a valid filter");
        assert_eq!(f.room.timeline.events.limit, Some(10));
        assert!(f.room.state.lazy_load_members);
        assert!(!f.presence.matches("m.presence", "@u:x"));
        for bad in [
            json!({ "room": { "timeline": { "limit": "ten" } } }),
            json!({ "room": { "timeline": { "limit": 0 } } }),
            json!({ "event_format": "binary" }),
            json!({ "presence": { "types": "m.presence" } }),
            json!([]),
        ] {
            assert!(Filter::from_json(&bad).is_err(), "{bad}");
        }
        assert_eq!(EventFilter { limit: Some(5000), ..Default::default() }.limit_or(10), MAX_LIMIT);
        assert_eq!(EventFilter::default().limit_or(10), 10);
    }
}
