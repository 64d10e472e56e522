//! Changes to a user's push rules: their own rules added, placed and deleted, and `enabled`
//! and `actions` set on any rule, each checked as the spec says and answered as the new stored
//! form.

use super::*;

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
pub(super) fn is_canonical_scalar(v: &Value) -> bool {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    match v {
        Value::String(_) | Value::Bool(_) | Value::Null => true,
        Value::Number(n) => n.as_i64().is_some_and(|i| (-MAX_SAFE..=MAX_SAFE).contains(&i)),
        _ => false,
    }
}

/// `room_member_count`'s `is`: an optional `==`, `<`, `>`, `>=` or `<=`, then a decimal integer.
pub(super) fn is_member_count(is: &str) -> bool {
    let digits = ["==", ">=", "<=", "<", ">"].iter().find_map(|op| is.strip_prefix(op)).unwrap_or(is);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Checks the conditions of an override or underride rule. Conditions of an unknown kind are
/// kept: the spec says they never match, which a client may rely on to park a rule.
pub(super) fn validate_conditions(conditions: Option<&Value>) -> Result<Value, PushRuleError> {
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

pub(super) fn validate_new_rule_id(kind: &str, rule_id: &str) -> Result<(), PushRuleError> {
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
pub(super) fn position(
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
pub(super) fn set_member(
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
