use super::edit::{is_canonical_scalar, is_member_count};
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
    let s =
        put_rule(Some(&s), "content", "c", &json!({ "pattern": "c", "actions": [] }), Some("a"), None).expect("before");
    assert_eq!(ids(&effective_ruleset(ALICE, Some(&s)), "content")[..3], ["b", "c", "a"]);
    let s =
        put_rule(Some(&s), "content", "d", &json!({ "pattern": "d", "actions": [] }), None, Some("a")).expect("after");
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
    assert_eq!(field(put_rule(None, "override", "x", &json!({ "actions": "notify" }), None, None)), Some("actions"));
    assert_eq!(field(put_rule(None, "override", "x", &json!({ "actions": ["shout"] }), None, None)), Some("actions"));
    assert_eq!(
        field(put_rule(None, "override", "x", &json!({ "actions": [{ "v": 1 }] }), None, None)),
        Some("actions")
    );
    let conditions = |c: Value| put_rule(None, "override", "x", &json!({ "actions": [], "conditions": c }), None, None);
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
    let s = put_rule(None, "room", "!r:x", &json!({ "actions": ["dont_notify", "notify", "coalesce"] }), None, None)
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
    assert!(matches!(set_enabled(ALICE, None, "room", ".m.rule.master", true), Err(PushRuleError::NotFound { .. })));
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
    let s =
        put_rule(Some(&s), "content", "cake", &json!({ "pattern": "cake", "actions": [] }), None, None).expect("put");
    let loud = json!(["notify", { "set_tweak": "sound", "value": "cake.wav" }]);
    let s = set_actions(ALICE, Some(&s), "content", "cake", Some(&loud)).expect("set own");
    assert_eq!(effective_rule(ALICE, Some(&s), "content", "cake").expect("rule")["actions"], loud);
    assert!(matches!(set_actions(ALICE, Some(&s), "content", "pie", Some(&loud)), Err(PushRuleError::NotFound { .. })));
    assert_eq!(set_actions(ALICE, Some(&s), "content", "cake", None).expect_err("refused").field(), Some("actions"));
    assert_eq!(
        set_actions(ALICE, Some(&s), "content", "cake", Some(&json!([7]))).expect_err("refused").field(),
        Some("actions")
    );
}

#[test]
fn effective_rule_finds_one_rule() {
    assert_eq!(effective_rule(ALICE, None, "content", ".m.rule.contains_user_name").expect("rule")["pattern"], "alice");
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
