//! Rooms as objects of the Matrix service: a room's timeline is a List (`<room id>/timeline`,
//! one item per event, in order, kept for `/messages`), its current state a Map
//! (`<room id>/state`, keyed by event type and state key), and each user's memberships a Map
//! (`<user id>/rooms`, keyed by room id). Every write is a change-log event of the service, so
//! `/sync` and the native API read rooms from the same history.
//!
//! [`authorize`] holds the rules an event must pass against the room's current state: who may
//! join, invite, kick and ban, and the power levels every other event needs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// An event about to enter a room (the server has given it its id and time).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEventDraft {
    pub event_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub content: Value,
    /// Milliseconds since the epoch.
    pub origin_server_ts: i64,
}

impl RoomEventDraft {
    /// The event as clients see it (the client-server event format).
    pub fn to_json(&self, room_id: &str) -> Value {
        let mut event = json!({
            "event_id": self.event_id,
            "type": self.event_type,
            "sender": self.sender,
            "origin_server_ts": self.origin_server_ts,
            "content": self.content,
            "room_id": room_id,
        });
        if let Some(key) = &self.state_key {
            event["state_key"] = json!(key);
        }
        event
    }
}

/// A client's transaction id for a send: per user and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub user_id: String,
    pub device_id: String,
    pub txn_id: String,
}

impl Txn {
    /// The Map holding a user's transaction ids, and this one's key in it.
    pub fn entry(&self) -> (String, String) {
        (format!("{}/txns", self.user_id), format!("{}\t{}", self.device_id, self.txn_id))
    }
}

/// A room's state as far as [`authorize`] reads it, loaded for one event.
#[derive(Debug, Default)]
pub struct StateSlice(pub BTreeMap<(String, String), Value>);

impl RoomState for StateSlice {
    fn content(&self, event_type: &str, state_key: &str) -> Option<Value> {
        self.0.get(&(event_type.to_owned(), state_key.to_owned())).cloned()
    }
}

/// The state entries [`authorize`] reads for `event`.
pub fn entries_for(event: &RoomEventDraft) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = ["m.room.create", "m.room.power_levels", "m.room.join_rules"]
        .iter()
        .map(|t| ((*t).to_owned(), String::new()))
        .collect();
    keys.push(("m.room.member".into(), event.sender.clone()));
    if event.event_type == "m.room.member"
        && let Some(target) = &event.state_key
    {
        keys.push(("m.room.member".into(), target.clone()));
    }
    keys
}

/// The Map of room aliases (`#name:server` → the room and who made the alias).
pub const ALIASES: &str = "aliases";

pub fn timeline_name(room_id: &str) -> String {
    format!("{room_id}/timeline")
}

pub fn state_name(room_id: &str) -> String {
    format!("{room_id}/state")
}

pub fn memberships_name(user_id: &str) -> String {
    format!("{user_id}/rooms")
}

/// The key of a state event in the state Map.
pub fn state_entry(event_type: &str, state_key: &str) -> String {
    format!("{event_type}\t{state_key}")
}

/// The room's current state, as the rules read it: the content of a state event.
pub trait RoomState {
    fn content(&self, event_type: &str, state_key: &str) -> Option<Value>;

    fn membership(&self, user_id: &str) -> Option<String> {
        self.content("m.room.member", user_id).and_then(|c| c["membership"].as_str().map(str::to_owned))
    }
}

/// `m.room.power_levels`, with the spec's defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PowerLevels {
    pub ban: i64,
    pub kick: i64,
    pub invite: i64,
    pub redact: i64,
    pub events_default: i64,
    pub state_default: i64,
    pub users_default: i64,
    pub events: BTreeMap<String, i64>,
    pub users: BTreeMap<String, i64>,
}

impl Default for PowerLevels {
    fn default() -> Self {
        PowerLevels {
            ban: 50,
            kick: 50,
            invite: 0,
            redact: 50,
            events_default: 0,
            state_default: 50,
            users_default: 0,
            events: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }
}

impl PowerLevels {
    /// The room's levels; without a power levels event the creator holds 100 and everyone
    /// else 0, as the spec's rules say.
    pub fn of(state: &dyn RoomState) -> PowerLevels {
        match state.content("m.room.power_levels", "") {
            Some(content) => serde_json::from_value(content).unwrap_or_default(),
            None => {
                let mut levels = PowerLevels { state_default: 0, ..Default::default() };
                if let Some(creator) =
                    state.content("m.room.create", "").and_then(|c| c["creator"].as_str().map(str::to_owned))
                {
                    levels.users.insert(creator, 100);
                }
                levels
            }
        }
    }

    pub fn user(&self, user_id: &str) -> i64 {
        self.users.get(user_id).copied().unwrap_or(self.users_default)
    }

    /// The level an event of this type needs.
    pub fn for_event(&self, event_type: &str, is_state: bool) -> i64 {
        self.events.get(event_type).copied().unwrap_or(if is_state { self.state_default } else { self.events_default })
    }
}

/// Whether `event` may enter a room in `state`; the reason when not.
pub fn authorize(event: &RoomEventDraft, state: &dyn RoomState) -> Result<(), String> {
    if event.event_type == "m.room.create" {
        return Err("the room exists already".into());
    }
    let levels = PowerLevels::of(state);
    let sender_level = levels.user(&event.sender);
    let sender_membership = state.membership(&event.sender);
    let joined = sender_membership.as_deref() == Some("join");
    if event.event_type == "m.room.member" {
        let target = event.state_key.as_deref().unwrap_or_default();
        let wanted = event.content["membership"].as_str().unwrap_or_default();
        let current = state.membership(target);
        let target_level = levels.user(target);
        return match wanted {
            "join" => {
                if target != event.sender {
                    return Err("only a user can join for itself".into());
                }
                match current.as_deref() {
                    Some("ban") => Err(format!("{target} is banned from the room")),
                    Some("join" | "invite") => Ok(()),
                    _ => {
                        let rule = state.content("m.room.join_rules", "");
                        let rule = rule.as_ref().and_then(|c| c["join_rule"].as_str()).unwrap_or("invite");
                        let creator = state.content("m.room.create", "");
                        let is_creator_first_join = current.is_none()
                            && creator.as_ref().and_then(|c| c["creator"].as_str()) == Some(target)
                            && state.content("m.room.power_levels", "").is_none();
                        if rule == "public" || is_creator_first_join {
                            Ok(())
                        } else {
                            Err("the room is not public and you were not invited".into())
                        }
                    }
                }
            }
            "invite" => {
                if !joined {
                    return Err(format!("{} is not in the room", event.sender));
                }
                match current.as_deref() {
                    Some("join") => Err(format!("{target} is already in the room")),
                    Some("ban") => Err(format!("{target} is banned from the room")),
                    _ if sender_level < levels.invite => Err(format!(
                        "inviting needs power level {}, {} has {sender_level}",
                        levels.invite, event.sender
                    )),
                    _ => Ok(()),
                }
            }
            "knock" => {
                if target != event.sender {
                    return Err("only a user can knock for itself".into());
                }
                let rule = state.content("m.room.join_rules", "");
                let rule = rule.as_ref().and_then(|c| c["join_rule"].as_str()).unwrap_or("invite");
                match current.as_deref() {
                    Some("ban") => Err(format!("{target} is banned from the room")),
                    Some("join" | "invite") => Err(format!("{target} is already in the room or invited")),
                    _ if rule == "knock" || rule == "knock_restricted" => Ok(()),
                    _ => Err("the room does not take knocks".into()),
                }
            }
            "leave" if target == event.sender => match current.as_deref() {
                Some("join" | "invite" | "knock") => Ok(()),
                _ => Err(format!("{target} is not in the room")),
            },
            "leave" => {
                if !joined {
                    return Err(format!("{} is not in the room", event.sender));
                }
                let needed = if current.as_deref() == Some("ban") { levels.ban } else { levels.kick };
                if sender_level < needed || sender_level <= target_level {
                    Err(format!("{} may not remove {target} (power level {sender_level})", event.sender))
                } else {
                    Ok(())
                }
            }
            "ban" => {
                if !joined {
                    return Err(format!("{} is not in the room", event.sender));
                }
                if sender_level < levels.ban || sender_level <= target_level {
                    Err(format!("{} may not ban {target} (power level {sender_level})", event.sender))
                } else {
                    Ok(())
                }
            }
            other => Err(format!("'{other}' is not a membership this server accepts")),
        };
    }
    if !joined {
        return Err(format!("{} is not in the room", event.sender));
    }
    let is_state = event.state_key.is_some();
    let needed = levels.for_event(&event.event_type, is_state);
    if sender_level < needed {
        return Err(format!(
            "sending {} needs power level {needed}, {} has {sender_level}",
            event.event_type, event.sender
        ));
    }
    if let Some(key) = &event.state_key
        && key.starts_with('@')
        && key != &event.sender
    {
        return Err("a state key that is a user id may only be set by that user".into());
    }
    if event.event_type == "m.room.power_levels" {
        let new: PowerLevels = serde_json::from_value(event.content.clone())
            .map_err(|e| format!("the power levels are not valid: {e}"))?;
        for (user, level) in &new.users {
            let before = levels.user(user);
            if *level != before && (*level > sender_level || (before >= sender_level && user != &event.sender)) {
                return Err(format!("{} may not change {user}'s power level to {level}", event.sender));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct State(BTreeMap<(String, String), Value>);

    impl RoomState for State {
        fn content(&self, event_type: &str, state_key: &str) -> Option<Value> {
            self.0.get(&(event_type.to_owned(), state_key.to_owned())).cloned()
        }
    }

    fn room(join_rule: &str) -> State {
        let mut s = BTreeMap::new();
        s.insert(("m.room.create".into(), String::new()), json!({ "creator": "@alice:x" }));
        s.insert(("m.room.member".into(), "@alice:x".into()), json!({ "membership": "join" }));
        s.insert(("m.room.power_levels".into(), String::new()), json!({ "users": { "@alice:x": 100 } }));
        s.insert(("m.room.join_rules".into(), String::new()), json!({ "join_rule": join_rule }));
        State(s)
    }

    fn member(sender: &str, target: &str, membership: &str) -> RoomEventDraft {
        RoomEventDraft {
            event_id: "$e".into(),
            event_type: "m.room.member".into(),
            state_key: Some(target.into()),
            sender: sender.into(),
            content: json!({ "membership": membership }),
            origin_server_ts: 0,
        }
    }

    fn message(sender: &str, event_type: &str, state_key: Option<&str>) -> RoomEventDraft {
        RoomEventDraft {
            event_id: "$m".into(),
            event_type: event_type.into(),
            state_key: state_key.map(str::to_owned),
            sender: sender.into(),
            content: json!({ "body": "hi", "msgtype": "m.text" }),
            origin_server_ts: 0,
        }
    }

    #[test]
    fn joining_follows_the_join_rule_and_invites() {
        assert!(authorize(&member("@bob:x", "@bob:x", "join"), &room("public")).is_ok());
        assert!(authorize(&member("@bob:x", "@bob:x", "join"), &room("invite")).is_err());
        let mut invited = room("invite");
        invited.0.insert(("m.room.member".into(), "@bob:x".into()), json!({ "membership": "invite" }));
        assert!(authorize(&member("@bob:x", "@bob:x", "join"), &invited).is_ok());
        assert!(authorize(&member("@alice:x", "@bob:x", "join"), &room("public")).is_err(), "not for others");
    }

    #[test]
    fn knocking_needs_a_knock_room() {
        assert!(authorize(&member("@bob:x", "@bob:x", "knock"), &room("knock")).is_ok());
        assert!(authorize(&member("@bob:x", "@bob:x", "knock"), &room("invite")).is_err());
        assert!(authorize(&member("@alice:x", "@bob:x", "knock"), &room("knock")).is_err(), "not for others");
        let mut knocked = room("knock");
        knocked.0.insert(("m.room.member".into(), "@bob:x".into()), json!({ "membership": "knock" }));
        assert!(
            authorize(&member("@alice:x", "@bob:x", "invite"), &knocked).is_ok(),
            "a knock is answered by an invite"
        );
        assert!(authorize(&member("@bob:x", "@bob:x", "leave"), &knocked).is_ok(), "and can be withdrawn");
    }

    #[test]
    fn kicks_and_bans_need_power() {
        let mut r = room("public");
        r.0.insert(("m.room.member".into(), "@bob:x".into()), json!({ "membership": "join" }));
        assert!(authorize(&member("@alice:x", "@bob:x", "ban"), &r).is_ok());
        assert!(authorize(&member("@bob:x", "@alice:x", "ban"), &r).is_err(), "bob has 0");
        assert!(authorize(&member("@bob:x", "@alice:x", "leave"), &r).is_err(), "no kicking upwards");
        assert!(authorize(&member("@bob:x", "@bob:x", "leave"), &r).is_ok(), "leaving is always allowed");
        r.0.insert(("m.room.member".into(), "@carol:x".into()), json!({ "membership": "ban" }));
        assert!(authorize(&member("@carol:x", "@carol:x", "join"), &r).is_err(), "banned");
    }

    #[test]
    fn events_need_membership_and_their_level() {
        let mut r = room("public");
        r.0.insert(("m.room.member".into(), "@bob:x".into()), json!({ "membership": "join" }));
        assert!(authorize(&message("@bob:x", "m.room.message", None), &r).is_ok());
        assert!(authorize(&message("@dan:x", "m.room.message", None), &r).is_err(), "not joined");
        assert!(authorize(&message("@bob:x", "m.room.topic", Some("")), &r).is_err(), "state needs 50");
        assert!(authorize(&message("@alice:x", "m.room.topic", Some("")), &r).is_ok());
        assert!(authorize(&message("@alice:x", "x.profile", Some("@bob:x")), &r).is_err(), "another user's key");
        let mut promote = message("@alice:x", "m.room.power_levels", Some(""));
        promote.content = json!({ "users": { "@alice:x": 100, "@bob:x": 50 } });
        assert!(authorize(&promote, &r).is_ok());
        let mut usurp = message("@alice:x", "m.room.power_levels", Some(""));
        usurp.content = json!({ "users": { "@alice:x": 100, "@bob:x": 101 } });
        assert!(authorize(&usurp, &r).is_err(), "nobody above oneself");
    }
}
