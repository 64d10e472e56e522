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

/// Checks a list of actions and drops the historical `dont_notify` and `coalesce`, which the
/// spec says to ignore.
pub fn validate_actions(actions: Option<&Value>) -> Result<Value, PushRuleError> {
    let Some(actions) = actions else { return Err(invalid("actions", "actions is required")) };
    let Some(list) = actions.as_array() else { return Err(invalid("actions", "actions must be an array")) };
    let mut out = Vec::with_capacity(list.len());
    for (i, action) in list.iter().enumerate() {
        match action {
            Value::String(s) if s == "notify" => out.push(action.clone()),
            Value::String(s) if s == "dont_notify" || s == "coalesce" => {}
            Value::String(s) => return Err(invalid("actions", format!("actions[{i}] '{s}' is not a known action"))),
            Value::Object(o) if o.get("set_tweak").is_some_and(Value::is_string) => out.push(action.clone()),
            _ => {
                return Err(invalid(
                    "actions",
                    format!("actions[{i}] must be \"notify\" or an object with a string set_tweak"),
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

/// A value `event_property_is` and `event_property_contains` can compare: a string, an integer
/// within canonical JSON's range, a boolean or null.
fn is_canonical_scalar(v: &Value) -> bool {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    match v {
        Value::String(_) | Value::Bool(_) | Value::Null => true,
        Value::Number(n) => n.as_i64().is_some_and(|i| (-MAX_SAFE..=MAX_SAFE).contains(&i)),
        _ => false,
    }
}

/// `room_member_count`'s `is`: an optional `==`, `<`, `>`, `>=` or `<=`, then a decimal integer.
fn is_member_count(is: &str) -> bool {
    let digits = ["==", ">=", "<=", "<", ">"].iter().find_map(|op| is.strip_prefix(op)).unwrap_or(is);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Checks the conditions of an override or underride rule. Conditions of an unknown kind are
/// kept: the spec says they never match, which a client may rely on to park a rule.
fn validate_conditions(conditions: Option<&Value>) -> Result<Value, PushRuleError> {
    let Some(conditions) = conditions else { return Ok(json!([])) };
    let Some(list) = conditions.as_array() else {
        return Err(invalid("conditions", "conditions must be an array"));
    };
    for (i, c) in list.iter().enumerate() {
        let Some(kind) = c.get("kind").and_then(Value::as_str) else {
            return Err(invalid("conditions", format!("conditions[{i}] must be an object with a string kind")));
        };
        let string = |member: &str| c.get(member).is_some_and(Value::is_string);
        let problem = match kind {
            "event_match" if !string("key") => Some("key must be a string"),
            "event_match" if !string("pattern") => Some("pattern must be a string"),
            "event_property_is" | "event_property_contains" if !string("key") => Some("key must be a string"),
            "event_property_is" | "event_property_contains" if !c.get("value").is_some_and(is_canonical_scalar) => {
                Some("value must be a string, an integer, a boolean or null")
            }
            "sender_notification_permission" if !string("key") => Some("key must be a string"),
            "room_member_count" if !c.get("is").and_then(Value::as_str).is_some_and(is_member_count) => {
                Some("is must be a decimal integer, optionally after ==, <, >, >= or <=")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(invalid("conditions", format!("conditions[{i}].{problem}")));
        }
    }
    Ok(conditions.clone())
}

fn validate_new_rule_id(kind: &str, rule_id: &str) -> Result<(), PushRuleError> {
    let bad = |m: &str| Err(PushRuleError::InvalidRuleId(m.to_owned()));
    if rule_id.is_empty() {
        return bad("must not be empty");
    }
    if rule_id.chars().count() > MAX_RULE_ID_CHARS {
        return bad(&format!("must be at most {MAX_RULE_ID_CHARS} characters long"));
    }
    if is_default_id(rule_id) {
        return bad("must not start with '.': such ids are reserved for server-default rules");
    }
    if rule_id.contains(['/', '\\']) {
        return bad("must not contain '/' or '\\'");
    }
    // A room or sender rule applies to what its id names.
    match kind {
        "room" if !rule_id.starts_with('!') => bad("of a room rule must be a room id ('!…')"),
        "sender" if !rule_id.starts_with('@') => bad("of a sender rule must be a user id ('@…')"),
        _ => Ok(()),
    }
}

/// Where a rule goes among the user's own rules of its kind (index 0 is the most important).
fn position(
    own: &[Map<String, Value>],
    kind: &str,
    before: Option<&str>,
    after: Option<&str>,
    previous: Option<usize>,
) -> Result<usize, PushRuleError> {
    let index_of = |field: &'static str, id: &str| {
        own.iter()
            .position(|r| r.get("rule_id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| PushRuleError::AnchorNotFound { field, kind: kind.to_owned(), rule_id: id.to_owned() })
    };
    // With both, `before` decides: the spec places the rule next to the one `before` names.
    match (before, after) {
        (Some(b), _) => index_of("before", b),
        (None, Some(a)) => index_of("after", a).map(|i| i + 1),
        // An updated rule keeps its place; a new one becomes the most important.
        (None, None) => Ok(previous.unwrap_or(0).min(own.len())),
    }
}

/// Adds or replaces one of the user's own rules from a `PUT` body, and returns the new stored
/// object. A replaced rule keeps its `enabled` (and, without `before`/`after`, its place); a new
/// one is enabled.
pub fn put_rule(
    stored: Option<&Value>,
    kind: &str,
    rule_id: &str,
    body: &Value,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<Value, PushRuleError> {
    check_kind(kind)?;
    validate_new_rule_id(kind, rule_id)?;
    if !body.is_object() {
        return Err(invalid("body", "the body must be a JSON object"));
    }
    let actions = validate_actions(body.get("actions"))?;
    let mut rule = Map::new();
    rule.insert("rule_id".into(), json!(rule_id));
    rule.insert("actions".into(), actions);
    match kind {
        "override" | "underride" => {
            rule.insert("conditions".into(), validate_conditions(body.get("conditions"))?);
        }
        "content" => match body.get("pattern") {
            Some(Value::String(p)) if !p.is_empty() => {
                rule.insert("pattern".into(), json!(p));
            }
            Some(_) => return Err(invalid("pattern", "pattern must be a non-empty string")),
            None => return Err(invalid("pattern", "pattern is required for a content rule")),
        },
        _ => {}
    }

    let mut all = Stored::read(stored);
    let lists = all.kind_mut(kind);
    let previous = lists.own.iter().position(|r| r.get("rule_id").and_then(Value::as_str) == Some(rule_id));
    let enabled = previous.and_then(|i| lists.own.remove(i).get("enabled").and_then(Value::as_bool)).unwrap_or(true);
    rule.insert("enabled".into(), json!(enabled));
    let at = position(&lists.own, kind, before, after, previous)?;
    lists.own.insert(at, rule);
    Ok(all.write())
}

/// Deletes one of the user's own rules; predefined rules cannot be deleted.
pub fn delete_rule(stored: Option<&Value>, kind: &str, rule_id: &str) -> Result<Value, PushRuleError> {
    check_kind(kind)?;
    let mut all = Stored::read(stored);
    let lists = all.kind_mut(kind);
    if let Some(i) = lists.own.iter().position(|r| r.get("rule_id").and_then(Value::as_str) == Some(rule_id)) {
        lists.own.remove(i);
        return Ok(all.write());
    }
    // Predefined rule ids do not depend on the user.
    if default_rules(kind, "").iter().any(|r| rule_id_of(r) == Some(rule_id)) {
        return Err(PushRuleError::DefaultRule(rule_id.to_owned()));
    }
    Err(not_found(kind, rule_id))
}

/// Sets one member (`enabled` or `actions`) of any rule, the user's own or predefined.
fn set_member(
    user_id: &str,
    stored: Option<&Value>,
    kind: &str,
    rule_id: &str,
    member: &str,
    value: Value,
) -> Result<Value, PushRuleError> {
    check_kind(kind)?;
    let mut all = Stored::read(stored);
    let lists = all.kind_mut(kind);
    if let Some(own) = lists.own.iter_mut().find(|r| r.get("rule_id").and_then(Value::as_str) == Some(rule_id)) {
        own.insert(member.to_owned(), value);
        return Ok(all.write());
    }
    let Some(default) = default_rules(kind, user_id).into_iter().find(|r| rule_id_of(r) == Some(rule_id)) else {
        return Err(not_found(kind, rule_id));
    };
    let at = match lists.changes.iter().position(|c| c.get("rule_id").and_then(Value::as_str) == Some(rule_id)) {
        Some(at) => at,
        None => {
            lists.changes.push(Map::from_iter([("rule_id".to_owned(), json!(rule_id))]));
            lists.changes.len() - 1
        }
    };
    let change = &mut lists.changes[at];
    // Only what differs from the predefined rule is kept.
    if default.get(member) == Some(&value) {
        change.remove(member);
    } else {
        change.insert(member.to_owned(), value);
    }
    if !change.contains_key("enabled") && !change.contains_key("actions") {
        lists.changes.remove(at);
    }
    Ok(all.write())
}

/// Enables or disables any rule.
pub fn set_enabled(
    user_id: &str,
    stored: Option<&Value>,
    kind: &str,
    rule_id: &str,
    enabled: bool,
) -> Result<Value, PushRuleError> {
    set_member(user_id, stored, kind, rule_id, "enabled", json!(enabled))
}

/// Sets the actions of any rule; `actions` is the request's `actions` member (`None` when absent).
pub fn set_actions(
    user_id: &str,
    stored: Option<&Value>,
    kind: &str,
    rule_id: &str,
    actions: Option<&Value>,
) -> Result<Value, PushRuleError> {
    check_kind(kind)?;
    // An unknown rule is reported before a bad body.
    effective_rule(user_id, stored, kind, rule_id)?;
    let actions = validate_actions(actions)?;
    set_member(user_id, stored, kind, rule_id, "actions", actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "@alice:example.org";

    fn ids(ruleset: &Value, kind: &str) -> Vec<String> {
        ruleset["global"][kind]
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["rule_id"].as_str().expect("an id").to_owned())
            .collect()
    }

    fn rule<'a>(ruleset: &'a Value, kind: &str, id: &str) -> &'a Value {
        ruleset["global"][kind].as_array().expect("a list").iter().find(|r| r["rule_id"] == id).expect("the rule")
    }

    #[test]
    fn the_default_ruleset_is_the_specs() {
        let set = default_ruleset(ALICE);
        assert_eq!(
            ids(&set, "override"),
            [
                ".m.rule.master",
                ".m.rule.suppress_notices",
                ".m.rule.invite_for_me",
                ".m.rule.member_event",
                ".m.rule.is_user_mention",
                ".m.rule.contains_display_name",
                ".m.rule.is_room_mention",
                ".m.rule.roomnotif",
                ".m.rule.tombstone",
                ".m.rule.reaction",
                ".m.rule.room.server_acl",
                ".m.rule.suppress_edits",
            ]
        );
        assert_eq!(ids(&set, "content"), [".m.rule.contains_user_name"]);
        assert_eq!(
            ids(&set, "underride"),
            [
                ".m.rule.call",
                ".m.rule.encrypted_room_one_to_one",
                ".m.rule.room_one_to_one",
                ".m.rule.message",
                ".m.rule.encrypted",
            ]
        );
        assert_eq!(set["global"]["room"], json!([]));
        assert_eq!(set["global"]["sender"], json!([]));
        for kind in KINDS {
            for r in set["global"][kind].as_array().expect("a list") {
                assert_eq!(r["default"], true, "{r}");
                assert_eq!(r["enabled"], r["rule_id"] != ".m.rule.master", "{r}");
                assert!(r["actions"].is_array(), "{r}");
            }
        }
        assert_eq!(
            rule(&set, "override", ".m.rule.master"),
            &json!({ "rule_id": ".m.rule.master", "default": true, "enabled": false, "conditions": [], "actions": [] })
        );
        assert_eq!(rule(&set, "content", ".m.rule.contains_user_name")["pattern"], "alice");
        assert_eq!(rule(&set, "override", ".m.rule.invite_for_me")["conditions"][2]["pattern"], ALICE);
        assert_eq!(
            rule(&set, "override", ".m.rule.is_user_mention")["conditions"],
            json!([{ "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": ALICE }])
        );
        assert_eq!(
            rule(&set, "override", ".m.rule.suppress_edits")["conditions"],
            json!([{ "kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace" }])
        );
        assert_eq!(
            rule(&set, "underride", ".m.rule.call")["actions"],
            json!(["notify", { "set_tweak": "sound", "value": "ring" }])
        );
        assert_eq!(
            rule(&set, "underride", ".m.rule.encrypted_room_one_to_one")["conditions"],
            json!([
                { "kind": "room_member_count", "is": "2" },
                { "kind": "event_match", "key": "type", "pattern": "m.room.encrypted" },
            ])
        );
    }

    #[test]
    fn without_changes_the_effective_ruleset_is_the_default() {
        assert_eq!(effective_ruleset(ALICE, None), default_ruleset(ALICE));
        assert_eq!(effective_ruleset(ALICE, Some(&json!({}))), default_ruleset(ALICE));
        // Damaged entries are skipped, not fatal.
        let damaged = json!({ "global": { "override": [1, { "no": "id" }], "content": [{ "rule_id": "x" }] } });
        assert_eq!(effective_ruleset(ALICE, Some(&damaged)), default_ruleset(ALICE));
    }

    #[test]
    fn user_rules_rank_below_master_and_above_the_other_defaults() {
        let stored = put_rule(None, "override", "mine", &json!({ "actions": ["notify"] }), None, None).expect("put");
        let set = effective_ruleset(ALICE, Some(&stored));
        let order = ids(&set, "override");
        assert_eq!(&order[..3], [".m.rule.master", "mine", ".m.rule.suppress_notices"]);
        assert_eq!(
            rule(&set, "override", "mine"),
            &json!({ "rule_id": "mine", "default": false, "enabled": true, "conditions": [], "actions": ["notify"] })
        );
        let stored = put_rule(None, "underride", "low", &json!({ "actions": [] }), None, None).expect("put");
        assert_eq!(ids(&effective_ruleset(ALICE, Some(&stored)), "underride")[0], "low");
    }

    #[test]
    fn put_rule_places_rules_with_before_and_after() {
        let body = json!({ "actions": ["notify"] });
        let s = put_rule(None, "content", "a", &json!({ "pattern": "a", "actions": [] }), None, None).expect("a");
        let s = put_rule(Some(&s), "content", "b", &json!({ "pattern": "b", "actions": [] }), None, None).expect("b");
        // New rules without a position become the most important.
        assert_eq!(ids(&effective_ruleset(ALICE, Some(&s)), "content"), ["b", "a", ".m.rule.contains_user_name"]);
        let s = put_rule(Some(&s), "content", "c", &json!({ "pattern": "c", "actions": [] }), Some("a"), None)
            .expect("before");
        assert_eq!(ids(&effective_ruleset(ALICE, Some(&s)), "content")[..3], ["b", "c", "a"]);
        let s = put_rule(Some(&s), "content", "d", &json!({ "pattern": "d", "actions": [] }), None, Some("a"))
            .expect("after");
        assert_eq!(ids(&effective_ruleset(ALICE, Some(&s)), "content")[..4], ["b", "c", "a", "d"]);
        // `before` wins over `after`.
        let s = put_rule(Some(&s), "content", "e", &json!({ "pattern": "e", "actions": [] }), Some("b"), Some("d"))
            .expect("both");
        assert_eq!(ids(&effective_ruleset(ALICE, Some(&s)), "content")[..5], ["e", "b", "c", "a", "d"]);
        assert!(matches!(
            put_rule(Some(&s), "override", "x", &body, Some("nope"), None),
            Err(PushRuleError::AnchorNotFound { field: "before", .. })
        ));
        let err = put_rule(
            Some(&s),
            "content",
            "x",
            &json!({ "pattern": "x", "actions": [] }),
            None,
            Some(".m.rule.contains_user_name"),
        )
        .expect_err("a default rule is no anchor");
        assert_eq!(err.field(), Some("after"));
    }

    #[test]
    fn put_rule_updates_in_place_and_keeps_enabled() {
        let s = put_rule(None, "sender", "@bob:x", &json!({ "actions": [] }), None, None).expect("bob");
        let s = put_rule(Some(&s), "sender", "@carl:x", &json!({ "actions": [] }), None, None).expect("carl");
        let s = set_enabled(ALICE, Some(&s), "sender", "@bob:x", false).expect("disable");
        let s = put_rule(Some(&s), "sender", "@bob:x", &json!({ "actions": ["notify"] }), None, None).expect("update");
        let set = effective_ruleset(ALICE, Some(&s));
        assert_eq!(ids(&set, "sender"), ["@carl:x", "@bob:x"]);
        assert_eq!(
            rule(&set, "sender", "@bob:x"),
            &json!({ "rule_id": "@bob:x", "default": false, "enabled": false, "actions": ["notify"] })
        );
    }

    #[test]
    fn put_rule_refuses_bad_input_naming_the_field() {
        let ok = json!({ "actions": ["notify"] });
        let field = |r: Result<Value, PushRuleError>| r.expect_err("refused").field();
        assert_eq!(field(put_rule(None, "global", "x", &ok, None, None)), Some("kind"));
        assert_eq!(field(put_rule(None, "override", ".m.rule.mine", &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "override", "", &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "override", "a/b", &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "override", &"x".repeat(300), &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "room", "not-a-room", &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "sender", "not-a-user", &ok, None, None)), Some("rule_id"));
        assert_eq!(field(put_rule(None, "override", "x", &json!([]), None, None)), Some("body"));
        assert_eq!(field(put_rule(None, "override", "x", &json!({}), None, None)), Some("actions"));
        assert_eq!(
            field(put_rule(None, "override", "x", &json!({ "actions": "notify" }), None, None)),
            Some("actions")
        );
        assert_eq!(
            field(put_rule(None, "override", "x", &json!({ "actions": ["shout"] }), None, None)),
            Some("actions")
        );
        assert_eq!(
            field(put_rule(None, "override", "x", &json!({ "actions": [{ "v": 1 }] }), None, None)),
            Some("actions")
        );
        let conditions =
            |c: Value| put_rule(None, "override", "x", &json!({ "actions": [], "conditions": c }), None, None);
        assert_eq!(field(conditions(json!({}))), Some("conditions"));
        assert_eq!(field(conditions(json!([{ "key": "type" }]))), Some("conditions"));
        assert_eq!(field(conditions(json!([{ "kind": "event_match", "key": "type" }]))), Some("conditions"));
        assert_eq!(field(conditions(json!([{ "kind": "room_member_count", "is": "two" }]))), Some("conditions"));
        assert_eq!(
            field(conditions(json!([{ "kind": "event_property_is", "key": "k", "value": [1] }]))),
            Some("conditions")
        );
        let err = conditions(json!([{ "kind": "event_match", "key": "type", "pattern": 3 }])).expect_err("refused");
        assert_eq!(err.to_string(), "conditions[0].pattern must be a string");
        assert_eq!(field(put_rule(None, "content", "x", &ok, None, None)), Some("pattern"));
        assert_eq!(
            field(put_rule(None, "content", "x", &json!({ "actions": [], "pattern": 1 }), None, None)),
            Some("pattern")
        );
        // Unknown condition kinds are accepted (they never match); historical actions are dropped.
        let s = conditions(json!([{ "kind": "org.example.future" }, { "kind": "room_member_count", "is": ">=10" }]))
            .expect("accepted");
        assert_eq!(s["global"]["override"][0]["conditions"][0]["kind"], "org.example.future");
        let s =
            put_rule(None, "room", "!r:x", &json!({ "actions": ["dont_notify", "notify", "coalesce"] }), None, None)
                .expect("accepted");
        assert_eq!(effective_rule(ALICE, Some(&s), "room", "!r:x").expect("rule")["actions"], json!(["notify"]));
    }

    #[test]
    fn delete_rule_removes_own_rules_only() {
        let s = put_rule(None, "override", "mine", &json!({ "actions": [] }), None, None).expect("put");
        let s = delete_rule(Some(&s), "override", "mine").expect("deleted");
        assert_eq!(effective_ruleset(ALICE, Some(&s)), default_ruleset(ALICE));
        assert_eq!(
            delete_rule(Some(&s), "override", "mine"),
            Err(PushRuleError::NotFound { kind: "override".into(), rule_id: "mine".into() })
        );
        assert_eq!(
            delete_rule(None, "override", ".m.rule.master"),
            Err(PushRuleError::DefaultRule(".m.rule.master".into()))
        );
        // A default rule's id under another kind is simply unknown there.
        assert!(matches!(delete_rule(None, "underride", ".m.rule.master"), Err(PushRuleError::NotFound { .. })));
        assert_eq!(delete_rule(None, "everything", "x").expect_err("refused").field(), Some("kind"));
    }

    #[test]
    fn set_enabled_works_on_default_and_own_rules() {
        let s = set_enabled(ALICE, None, "override", ".m.rule.master", true).expect("enable master");
        let set = effective_ruleset(ALICE, Some(&s));
        assert_eq!(rule(&set, "override", ".m.rule.master")["enabled"], true);
        assert_eq!(rule(&set, "override", ".m.rule.master")["default"], true);
        // Setting it back to the default leaves nothing stored for it.
        let s = set_enabled(ALICE, Some(&s), "override", ".m.rule.master", false).expect("disable master");
        assert_eq!(s["global"]["override"], json!([]));
        let s = set_enabled(ALICE, Some(&s), "underride", ".m.rule.message", false).expect("disable");
        assert_eq!(rule(&effective_ruleset(ALICE, Some(&s)), "underride", ".m.rule.message")["enabled"], false);
        let s = put_rule(Some(&s), "room", "!r:x", &json!({ "actions": [] }), None, None).expect("put");
        let s = set_enabled(ALICE, Some(&s), "room", "!r:x", false).expect("disable own");
        assert_eq!(effective_rule(ALICE, Some(&s), "room", "!r:x").expect("rule")["enabled"], false);
        assert!(matches!(set_enabled(ALICE, Some(&s), "room", "!other:x", true), Err(PushRuleError::NotFound { .. })));
        assert!(matches!(
            set_enabled(ALICE, None, "room", ".m.rule.master", true),
            Err(PushRuleError::NotFound { .. })
        ));
        assert_eq!(set_enabled(ALICE, None, "nope", "x", true).expect_err("refused").field(), Some("kind"));
    }

    #[test]
    fn set_actions_works_on_default_and_own_rules() {
        let quiet = json!([]);
        let s = set_actions(ALICE, None, "underride", ".m.rule.message", Some(&quiet)).expect("set");
        let set = effective_ruleset(ALICE, Some(&s));
        assert_eq!(rule(&set, "underride", ".m.rule.message")["actions"], json!([]));
        assert_eq!(rule(&set, "underride", ".m.rule.message")["enabled"], true);
        // Changing the enabled flag of the same rule keeps its actions.
        let s = set_enabled(ALICE, Some(&s), "underride", ".m.rule.message", false).expect("disable");
        let message = effective_rule(ALICE, Some(&s), "underride", ".m.rule.message").expect("rule");
        assert_eq!((message["enabled"].clone(), message["actions"].clone()), (json!(false), json!([])));
        let s = put_rule(Some(&s), "content", "cake", &json!({ "pattern": "cake", "actions": [] }), None, None)
            .expect("put");
        let loud = json!(["notify", { "set_tweak": "sound", "value": "cake.wav" }]);
        let s = set_actions(ALICE, Some(&s), "content", "cake", Some(&loud)).expect("set own");
        assert_eq!(effective_rule(ALICE, Some(&s), "content", "cake").expect("rule")["actions"], loud);
        assert!(matches!(
            set_actions(ALICE, Some(&s), "content", "pie", Some(&loud)),
            Err(PushRuleError::NotFound { .. })
        ));
        assert_eq!(
            set_actions(ALICE, Some(&s), "content", "cake", None).expect_err("refused").field(),
            Some("actions")
        );
        assert_eq!(
            set_actions(ALICE, Some(&s), "content", "cake", Some(&json!([7]))).expect_err("refused").field(),
            Some("actions")
        );
    }

    #[test]
    fn effective_rule_finds_one_rule() {
        assert_eq!(
            effective_rule(ALICE, None, "content", ".m.rule.contains_user_name").expect("rule")["pattern"],
            "alice"
        );
        assert!(matches!(effective_rule(ALICE, None, "content", "nope"), Err(PushRuleError::NotFound { .. })));
        assert_eq!(effective_rule(ALICE, None, "device", "x").expect_err("refused").field(), Some("kind"));
    }

    #[test]
    fn helpers_read_ids_and_counts() {
        assert_eq!(localpart("@bob:example.org"), "bob");
        assert_eq!(localpart("bob"), "bob");
        for ok in ["2", "==2", "<10", ">1", ">=3", "<=4"] {
            assert!(is_member_count(ok), "{ok}");
        }
        for bad in ["", "==", "two", "=2", "2.5", "-1"] {
            assert!(!is_member_count(bad), "{bad}");
        }
        assert!(is_canonical_scalar(&json!(9_007_199_254_740_991_i64)));
        assert!(!is_canonical_scalar(&json!(9_007_199_254_740_992_i64)));
        assert!(!is_canonical_scalar(&json!(1.5)));
    }
}
