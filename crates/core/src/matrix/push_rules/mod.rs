//! Matrix push rules (the Client-Server API's "Push Notifications" module): the spec's
//! predefined rules for a user, and the user's changes on top of them.
//!
//! A user's changes are one JSON object in their account data (`m.push_rules`), shaped like a
//! ruleset: `{"global": {"override": [...], "content": [...], ...}}`. In each list, a rule whose
//! id does not start with a dot is one of the user's own rules, in priority order (most
//! important first); an entry whose id starts with a dot only carries the `enabled` and
//! `actions` the user set on that predefined rule. Only what differs from the predefined rules is
//! kept, so the object stays small (account data has a size limit) and a later version of the
//! predefined rules reaches every user. What clients see is [`effective_ruleset`].

use serde_json::{Map, Value, json};

/// The account data type holding a user's changes.
pub const ACCOUNT_DATA_TYPE: &str = "m.push_rules";

/// The kinds of rule, in the order they are evaluated.
pub const KINDS: [&str; 5] = ["override", "content", "room", "sender", "underride"];

/// Rule ids a client may choose.
pub const MAX_RULE_ID_CHARS: usize = 255;

/// Why a push rule request was refused; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRuleError {
    #[error("kind must be one of override, underride, sender, room or content, got '{0}'")]
    UnknownKind(String),
    #[error("rule_id {0}")]
    InvalidRuleId(String),
    /// A member of the request body; `message` starts with the member's path.
    #[error("{message}")]
    InvalidBody { field: &'static str, message: String },
    /// `before` or `after` does not name one of the user's own rules of that kind.
    #[error("{field} names '{rule_id}', which is not a user-defined {kind} rule")]
    AnchorNotFound { field: &'static str, kind: String, rule_id: String },
    #[error("there is no {kind} push rule '{rule_id}'")]
    NotFound { kind: String, rule_id: String },
    #[error("rule_id '{0}' is a server-default rule: it cannot be deleted, only disabled")]
    DefaultRule(String),
}

impl PushRuleError {
    /// The request field at fault (`None` for a rule that does not exist).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PushRuleError::UnknownKind(_) => Some("kind"),
            PushRuleError::InvalidRuleId(_) | PushRuleError::DefaultRule(_) => Some("rule_id"),
            PushRuleError::InvalidBody { field, .. } | PushRuleError::AnchorNotFound { field, .. } => Some(field),
            PushRuleError::NotFound { .. } => None,
        }
    }
}

/// The localpart of `@localpart:server` (the whole string if it is not of that form).
fn localpart(user_id: &str) -> &str {
    user_id.strip_prefix('@').and_then(|rest| rest.split_once(':')).map_or(user_id, |(local, _)| local)
}

fn event_match(key: &str, pattern: &str) -> Value {
    json!({ "kind": "event_match", "key": key, "pattern": pattern })
}

fn predefined(rule_id: &str, enabled: bool, conditions: Value, actions: Value) -> Value {
    json!({ "rule_id": rule_id, "default": true, "enabled": enabled, "conditions": conditions, "actions": actions })
}

fn sound(value: &str) -> Value {
    json!({ "set_tweak": "sound", "value": value })
}

fn highlight() -> Value {
    json!({ "set_tweak": "highlight" })
}

/// The predefined rules of one kind, in the spec's order.
fn default_rules(kind: &str, user_id: &str) -> Vec<Value> {
    match kind {
        "override" => vec![
            predefined(".m.rule.master", false, json!([]), json!([])),
            predefined(
                ".m.rule.suppress_notices",
                true,
                json!([event_match("content.msgtype", "m.notice")]),
                json!([]),
            ),
            predefined(
                ".m.rule.invite_for_me",
                true,
                json!([
                    event_match("type", "m.room.member"),
                    event_match("content.membership", "invite"),
                    event_match("state_key", user_id),
                ]),
                json!(["notify", sound("default")]),
            ),
            predefined(".m.rule.member_event", true, json!([event_match("type", "m.room.member")]), json!([])),
            predefined(
                ".m.rule.is_user_mention",
                true,
                json!([{ "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id }]),
                json!(["notify", sound("default"), highlight()]),
            ),
            predefined(
                ".m.rule.contains_display_name",
                true,
                json!([{ "kind": "contains_display_name" }]),
                json!(["notify", sound("default"), highlight()]),
            ),
            predefined(
                ".m.rule.is_room_mention",
                true,
                json!([
                    { "kind": "event_property_is", "key": "content.m\\.mentions.room", "value": true },
                    { "kind": "sender_notification_permission", "key": "room" },
                ]),
                json!(["notify", highlight()]),
            ),
            predefined(
                ".m.rule.roomnotif",
                true,
                json!([
                    event_match("content.body", "@room"),
                    { "kind": "sender_notification_permission", "key": "room" },
                ]),
                json!(["notify", highlight()]),
            ),
            predefined(
                ".m.rule.tombstone",
                true,
                json!([event_match("type", "m.room.tombstone"), event_match("state_key", "")]),
                json!(["notify", highlight()]),
            ),
            predefined(".m.rule.reaction", true, json!([event_match("type", "m.reaction")]), json!([])),
            predefined(
                ".m.rule.room.server_acl",
                true,
                json!([event_match("type", "m.room.server_acl"), event_match("state_key", "")]),
                json!([]),
            ),
            predefined(
                ".m.rule.suppress_edits",
                true,
                json!([{ "kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace" }]),
                json!([]),
            ),
        ],
        "content" => vec![json!({
            "rule_id": ".m.rule.contains_user_name",
            "default": true,
            "enabled": true,
            "pattern": localpart(user_id),
            "actions": ["notify", sound("default"), highlight()],
        })],
        "underride" => vec![
            predefined(
                ".m.rule.call",
                true,
                json!([event_match("type", "m.call.invite")]),
                json!(["notify", sound("ring")]),
            ),
            predefined(
                ".m.rule.encrypted_room_one_to_one",
                true,
                json!([{ "kind": "room_member_count", "is": "2" }, event_match("type", "m.room.encrypted")]),
                json!(["notify", sound("default")]),
            ),
            predefined(
                ".m.rule.room_one_to_one",
                true,
                json!([{ "kind": "room_member_count", "is": "2" }, event_match("type", "m.room.message")]),
                json!(["notify", sound("default")]),
            ),
            predefined(".m.rule.message", true, json!([event_match("type", "m.room.message")]), json!(["notify"])),
            predefined(".m.rule.encrypted", true, json!([event_match("type", "m.room.encrypted")]), json!(["notify"])),
        ],
        _ => Vec::new(),
    }
}

/// The spec's predefined ruleset for a user, before any change of theirs.
pub fn default_ruleset(user_id: &str) -> Value {
    let global: Map<String, Value> =
        KINDS.iter().map(|kind| ((*kind).to_owned(), Value::Array(default_rules(kind, user_id)))).collect();
    json!({ "global": global })
}

fn check_kind(kind: &str) -> Result<(), PushRuleError> {
    if KINDS.contains(&kind) { Ok(()) } else { Err(PushRuleError::UnknownKind(kind.to_owned())) }
}

fn rule_id_of(rule: &Value) -> Option<&str> {
    rule.get("rule_id").and_then(Value::as_str)
}

fn is_default_id(rule_id: &str) -> bool {
    rule_id.starts_with('.')
}

/// One kind's stored list, split into the user's own rules (in priority order) and their
/// changes to predefined rules.
#[derive(Debug, Default)]
struct StoredKind {
    own: Vec<Map<String, Value>>,
    changes: Vec<Map<String, Value>>,
}

/// A stored object, read leniently: entries that are not objects with a string `rule_id` are
/// skipped, so a damaged object costs its damaged rules, not the whole ruleset.
#[derive(Debug, Default)]
struct Stored {
    kinds: Vec<(&'static str, StoredKind)>,
}

impl Stored {
    fn read(stored: Option<&Value>) -> Stored {
        let global = stored.and_then(|s| s.get("global"));
        let kinds = KINDS
            .iter()
            .map(|kind| {
                let mut lists = StoredKind::default();
                let entries = global.and_then(|g| g.get(*kind)).and_then(Value::as_array).into_iter().flatten();
                for entry in entries {
                    let Some(obj) = entry.as_object() else { continue };
                    let Some(id) = obj.get("rule_id").and_then(Value::as_str) else { continue };
                    if is_default_id(id) {
                        lists.changes.push(obj.clone());
                    } else {
                        lists.own.push(obj.clone());
                    }
                }
                (*kind, lists)
            })
            .collect();
        Stored { kinds }
    }

    fn kind_mut(&mut self, kind: &str) -> &mut StoredKind {
        let at = self.kinds.iter().position(|(k, _)| *k == kind).unwrap_or_default();
        &mut self.kinds[at].1
    }

    fn kind(&self, kind: &str) -> Option<&StoredKind> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, lists)| lists)
    }

    fn write(self) -> Value {
        let global: Map<String, Value> = self
            .kinds
            .into_iter()
            .map(|(kind, lists)| {
                let all = lists.own.into_iter().chain(lists.changes).map(Value::Object).collect();
                (kind.to_owned(), Value::Array(all))
            })
            .collect();
        json!({ "global": global })
    }
}

/// A stored rule of the user's own as clients see it; `None` when it is unusable.
fn own_rule_out(kind: &str, stored: &Map<String, Value>) -> Option<Value> {
    let rule_id = stored.get("rule_id").and_then(Value::as_str)?;
    let mut out = Map::new();
    out.insert("rule_id".into(), json!(rule_id));
    out.insert("default".into(), json!(false));
    out.insert("enabled".into(), json!(stored.get("enabled").and_then(Value::as_bool).unwrap_or(true)));
    out.insert("actions".into(), stored.get("actions").filter(|a| a.is_array()).cloned().unwrap_or(json!([])));
    match kind {
        "override" | "underride" => {
            out.insert(
                "conditions".into(),
                stored.get("conditions").filter(|c| c.is_array()).cloned().unwrap_or(json!([])),
            );
        }
        "content" => {
            out.insert("pattern".into(), json!(stored.get("pattern").and_then(Value::as_str)?));
        }
        _ => {}
    }
    Some(Value::Object(out))
}

/// A predefined rule with the user's change to it, if any.
fn changed_default(mut rule: Value, changes: &[Map<String, Value>]) -> Value {
    let id = rule_id_of(&rule).unwrap_or_default().to_owned();
    if let Some(change) = changes.iter().find(|c| c.get("rule_id").and_then(Value::as_str) == Some(id.as_str())) {
        if let Some(enabled) = change.get("enabled").filter(|e| e.is_boolean()) {
            rule["enabled"] = enabled.clone();
        }
        if let Some(actions) = change.get("actions").filter(|a| a.is_array()) {
            rule["actions"] = actions.clone();
        }
    }
    rule
}

/// One kind's effective rules, in priority order.
fn effective_kind(user_id: &str, stored: &Stored, kind: &str) -> Vec<Value> {
    let empty = StoredKind::default();
    let lists = stored.kind(kind).unwrap_or(&empty);
    let own = lists.own.iter().filter_map(|r| own_rule_out(kind, r));
    let mut defaults = default_rules(kind, user_id).into_iter().map(|r| changed_default(r, &lists.changes));
    // The master rule outranks every other rule, the user's own included; the other predefined
    // rules rank below the user's.
    let master = if kind == "override" { defaults.next() } else { None };
    master.into_iter().chain(own).chain(defaults).collect()
}

/// The ruleset clients see: the predefined rules with the user's changes applied.
pub fn effective_ruleset(user_id: &str, stored: Option<&Value>) -> Value {
    let stored = Stored::read(stored);
    let global: Map<String, Value> =
        KINDS.iter().map(|kind| ((*kind).to_owned(), Value::Array(effective_kind(user_id, &stored, kind)))).collect();
    json!({ "global": global })
}

/// One effective rule.
pub fn effective_rule(
    user_id: &str,
    stored: Option<&Value>,
    kind: &str,
    rule_id: &str,
) -> Result<Value, PushRuleError> {
    check_kind(kind)?;
    effective_kind(user_id, &Stored::read(stored), kind)
        .into_iter()
        .find(|r| rule_id_of(r) == Some(rule_id))
        .ok_or_else(|| not_found(kind, rule_id))
}

fn not_found(kind: &str, rule_id: &str) -> PushRuleError {
    PushRuleError::NotFound { kind: kind.to_owned(), rule_id: rule_id.to_owned() }
}

fn invalid(field: &'static str, message: impl Into<String>) -> PushRuleError {
    PushRuleError::InvalidBody { field, message: message.into() }
}

mod edit;

pub use edit::{delete_rule, put_rule, set_actions, set_enabled, validate_actions};

#[cfg(test)]
mod tests;
