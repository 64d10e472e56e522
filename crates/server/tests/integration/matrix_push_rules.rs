//! Matrix push rules over HTTP: the spec's predefined rules for a new user, the user's own rules
//! placed with `before`, predefined rules disabled and given other actions but never deleted,
//! and errors as `{errcode, error}` naming what is wrong.

use super::common::{Settings, TestServer};
use ferrosync_server::api::matrix::RegistrationPolicy;
use reqwest::Method;
use serde_json::{Value, json};

const CLIENT: &str = "/_matrix/client/v3";

fn open_registration() -> Settings {
    let mut settings = Settings::default();
    settings.matrix.server_name = "example.org".into();
    settings.matrix.registration = RegistrationPolicy::Open;
    settings
}

/// One call: status and JSON body.
async fn call(s: &TestServer, method: Method, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    let mut req = s.http.request(method, s.root(&format!("{CLIENT}{path}"))).bearer_auth(token);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_owned());
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

async fn get(s: &TestServer, path: &str, token: &str) -> (u16, Value) {
    call(s, Method::GET, path, token, None).await
}

async fn put(s: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    call(s, Method::PUT, path, token, Some(&body.to_string())).await
}

async fn delete(s: &TestServer, path: &str, token: &str) -> (u16, Value) {
    call(s, Method::DELETE, path, token, None).await
}

/// Status and errcode of an error, which always has a message naming `names`.
fn refused<'a>(answer: &'a (u16, Value), names: &str) -> (u16, &'a str) {
    let message = answer.1["error"].as_str().unwrap_or_else(|| panic!("every error has a message: {}", answer.1));
    assert!(message.contains(names), "the message names {names}: {message}");
    (answer.0, answer.1["errcode"].as_str().unwrap_or_default())
}

/// A registered user's access token.
async fn register(s: &TestServer, user: &str) -> String {
    let body = json!({ "username": user, "password": "pw", "auth": { "type": "m.login.dummy" } });
    let resp = s
        .http
        .post(s.root(&format!("{CLIENT}/register")))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    body["access_token"].as_str().expect("a token").to_owned()
}

fn ids(global: &Value, kind: &str) -> Vec<String> {
    global[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{kind} is a list: {global}"))
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_user_has_the_specs_predefined_rules() {
    let Some(s) = TestServer::with_settings(open_registration()).await else { return };
    let token = register(&s, "pia").await;
    let (status, all) = get(&s, "/pushrules/", &token).await;
    assert_eq!(status, 200, "{all}");
    let global = &all["global"];
    let counts: Vec<usize> = ["override", "content", "room", "sender", "underride"]
        .iter()
        .map(|kind| global[kind].as_array().map_or(usize::MAX, Vec::len))
        .collect();
    assert_eq!(counts, [12, 1, 0, 0, 5], "{global}");
    assert_eq!(ids(global, "override")[0], ".m.rule.master");
    assert_eq!(global["override"][0]["enabled"], false);
    assert!(global["override"].as_array().into_iter().flatten().skip(1).all(|r| r["enabled"] == true));
    let user_name = &global["content"][0];
    assert_eq!(
        (user_name["rule_id"].as_str(), user_name["pattern"].as_str()),
        (Some(".m.rule.contains_user_name"), Some("pia"))
    );
    assert_eq!(
        ids(global, "underride"),
        [
            ".m.rule.call",
            ".m.rule.encrypted_room_one_to_one",
            ".m.rule.room_one_to_one",
            ".m.rule.message",
            ".m.rule.encrypted"
        ]
    );
    // Every spelling of the listing answers the same.
    assert_eq!(get(&s, "/pushrules", &token).await, (200, all.clone()));
    assert_eq!(get(&s, "/pushrules/global/", &token).await, (200, all["global"].clone()));
    let (status, master) = get(&s, "/pushrules/global/override/.m.rule.master", &token).await;
    assert_eq!(
        (status, master),
        (
            200,
            json!({ "rule_id": ".m.rule.master", "default": true, "enabled": false, "conditions": [], "actions": [] })
        )
    );
    let unauthenticated = s.http.get(s.root(&format!("{CLIENT}/pushrules/"))).send().await.expect("answer");
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn own_rules_are_added_before_others_and_deleted() {
    let Some(s) = TestServer::with_settings(open_registration()).await else { return };
    let token = register(&s, "quinn").await;
    let beer = json!({
        "conditions": [
            { "kind": "event_match", "key": "content.body", "pattern": "beer" },
            { "kind": "room_member_count", "is": "<=10" },
        ],
        "actions": ["notify", { "set_tweak": "sound", "value": "beeroclock.wav" }],
    });
    assert_eq!(put(&s, "/pushrules/global/override/beer", &token, beer.clone()).await, (200, json!({})));
    let quiet = json!({ "actions": [] });
    assert_eq!(put(&s, "/pushrules/global/override/first?before=beer", &token, quiet).await, (200, json!({})));
    let (_, global) = get(&s, "/pushrules/global/", &token).await;
    assert_eq!(ids(&global, "override")[..4], [".m.rule.master", "first", "beer", ".m.rule.suppress_notices"]);
    let (status, rule) = get(&s, "/pushrules/global/override/beer", &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        rule,
        json!({
            "rule_id": "beer", "default": false, "enabled": true,
            "conditions": beer["conditions"], "actions": beer["actions"],
        })
    );
    let cake = json!({ "pattern": "cake*lie", "actions": ["notify"] });
    assert_eq!(put(&s, "/pushrules/global/content/nocake", &token, cake).await.0, 200);
    let (_, global) = get(&s, "/pushrules/global/", &token).await;
    assert_eq!(ids(&global, "content"), ["nocake", ".m.rule.contains_user_name"]);
    let room = "/pushrules/global/room/!dj234r78wl45Gh4D:example.org";
    assert_eq!(put(&s, room, &token, json!({ "actions": [] })).await.0, 200);
    assert_eq!(
        get(&s, room, &token).await,
        (200, json!({ "rule_id": "!dj234r78wl45Gh4D:example.org", "default": false, "enabled": true, "actions": [] }))
    );

    assert_eq!(delete(&s, "/pushrules/global/override/first", &token).await, (200, json!({})));
    assert_eq!(refused(&get(&s, "/pushrules/global/override/first", &token).await, "first"), (404, "M_NOT_FOUND"));
    assert_eq!(refused(&delete(&s, "/pushrules/global/override/first", &token).await, "first"), (404, "M_NOT_FOUND"));
    let (_, global) = get(&s, "/pushrules/global/", &token).await;
    assert_eq!(ids(&global, "override")[..3], [".m.rule.master", "beer", ".m.rule.suppress_notices"]);

    // Another user's rules are their own.
    let other = register(&s, "rae").await;
    let (_, theirs) = get(&s, "/pushrules/global/", &other).await;
    assert_eq!(ids(&theirs, "override").len(), 12);
    assert_eq!(theirs["room"], json!([]));
}

#[tokio::test]
async fn predefined_rules_are_disabled_and_given_actions_but_not_deleted() {
    let Some(s) = TestServer::with_settings(open_registration()).await else { return };
    let token = register(&s, "sam").await;
    let message = "/pushrules/global/underride/.m.rule.message";
    assert_eq!(get(&s, &format!("{message}/enabled"), &token).await, (200, json!({ "enabled": true })));
    assert_eq!(put(&s, &format!("{message}/enabled"), &token, json!({ "enabled": false })).await, (200, json!({})));
    assert_eq!(get(&s, &format!("{message}/enabled"), &token).await, (200, json!({ "enabled": false })));

    let master = "/pushrules/global/override/.m.rule.master";
    assert_eq!(put(&s, &format!("{master}/enabled"), &token, json!({ "enabled": true })).await.0, 200);
    assert_eq!(get(&s, master, &token).await.1["enabled"], true);

    let call_rule = "/pushrules/global/underride/.m.rule.call";
    assert_eq!(
        get(&s, &format!("{call_rule}/actions"), &token).await,
        (200, json!({ "actions": ["notify", { "set_tweak": "sound", "value": "ring" }] }))
    );
    let loud = json!(["notify", { "set_tweak": "sound", "value": "siren" }, { "set_tweak": "highlight" }]);
    assert_eq!(put(&s, &format!("{call_rule}/actions"), &token, json!({ "actions": loud })).await, (200, json!({})));
    assert_eq!(get(&s, &format!("{call_rule}/actions"), &token).await, (200, json!({ "actions": loud })));
    let (_, rule) = get(&s, call_rule, &token).await;
    assert_eq!((rule["default"].clone(), rule["enabled"].clone()), (json!(true), json!(true)));

    // Actions of one's own rules change the same way.
    assert_eq!(put(&s, "/pushrules/global/sender/@spam:example.org", &token, json!({ "actions": [] })).await.0, 200);
    let spam = "/pushrules/global/sender/@spam:example.org/actions";
    assert_eq!(put(&s, spam, &token, json!({ "actions": ["notify"] })).await.0, 200);
    assert_eq!(get(&s, spam, &token).await, (200, json!({ "actions": ["notify"] })));

    let deleted = delete(&s, master, &token).await;
    assert_eq!(refused(&deleted, "rule_id"), (400, "M_INVALID_PARAM"));
    assert_eq!(get(&s, master, &token).await.0, 200, "still there");
    let overwritten = put(&s, "/pushrules/global/override/.m.rule.mine", &token, json!({ "actions": [] })).await;
    assert_eq!(refused(&overwritten, "rule_id"), (400, "M_INVALID_PARAM"));

    // The changes show in the whole listing too.
    let (_, global) = get(&s, "/pushrules/global/", &token).await;
    let find = |kind: &str, id: &str| {
        global[kind].as_array().into_iter().flatten().find(|r| r["rule_id"] == id).cloned().unwrap_or_default()
    };
    assert_eq!(find("underride", ".m.rule.message")["enabled"], false);
    assert_eq!(find("override", ".m.rule.master")["enabled"], true);
    assert_eq!(find("underride", ".m.rule.call")["actions"], loud);
}

#[tokio::test]
async fn unknown_rules_and_bad_requests_are_refused_by_name() {
    let Some(s) = TestServer::with_settings(open_registration()).await else { return };
    let token = register(&s, "tia").await;
    let nothing = "/pushrules/global/override/nothing";
    assert_eq!(refused(&get(&s, nothing, &token).await, "nothing"), (404, "M_NOT_FOUND"));
    assert_eq!(refused(&get(&s, &format!("{nothing}/enabled"), &token).await, "nothing"), (404, "M_NOT_FOUND"));
    assert_eq!(refused(&get(&s, &format!("{nothing}/actions"), &token).await, "nothing"), (404, "M_NOT_FOUND"));
    let enable = put(&s, &format!("{nothing}/enabled"), &token, json!({ "enabled": true })).await;
    assert_eq!(refused(&enable, "nothing"), (404, "M_NOT_FOUND"));
    let actions = put(&s, &format!("{nothing}/actions"), &token, json!({ "actions": [] })).await;
    assert_eq!(refused(&actions, "nothing"), (404, "M_NOT_FOUND"));
    assert_eq!(refused(&delete(&s, nothing, &token).await, "nothing"), (404, "M_NOT_FOUND"));
    // A predefined rule's id under another kind.
    let elsewhere = get(&s, "/pushrules/global/content/.m.rule.master", &token).await;
    assert_eq!(refused(&elsewhere, ".m.rule.master"), (404, "M_NOT_FOUND"));

    let kind = get(&s, "/pushrules/global/everything/x", &token).await;
    assert_eq!(refused(&kind, "kind"), (400, "M_INVALID_PARAM"));
    let no_actions = put(&s, "/pushrules/global/override/x", &token, json!({ "conditions": [] })).await;
    assert_eq!(refused(&no_actions, "actions"), (400, "M_BAD_JSON"));
    let bad_action = put(&s, "/pushrules/global/override/x", &token, json!({ "actions": ["shout"] })).await;
    assert_eq!(refused(&bad_action, "actions"), (400, "M_BAD_JSON"));
    let bad_condition =
        put(&s, "/pushrules/global/override/x", &token, json!({ "actions": [], "conditions": [{ "key": "type" }] }))
            .await;
    assert_eq!(refused(&bad_condition, "conditions"), (400, "M_BAD_JSON"));
    let no_pattern = put(&s, "/pushrules/global/content/x", &token, json!({ "actions": [] })).await;
    assert_eq!(refused(&no_pattern, "pattern"), (400, "M_BAD_JSON"));
    let not_a_room = put(&s, "/pushrules/global/room/lobby", &token, json!({ "actions": [] })).await;
    assert_eq!(refused(&not_a_room, "rule_id"), (400, "M_INVALID_PARAM"));
    let anchor = put(&s, "/pushrules/global/override/x?after=nowhere", &token, json!({ "actions": [] })).await;
    assert_eq!(refused(&anchor, "after"), (400, "M_INVALID_PARAM"));
    let message = "/pushrules/global/underride/.m.rule.message";
    let enabled = put(&s, &format!("{message}/enabled"), &token, json!({ "enabled": "no" })).await;
    assert_eq!(refused(&enabled, "enabled"), (400, "M_BAD_JSON"));
    let missing = put(&s, &format!("{message}/enabled"), &token, json!({})).await;
    assert_eq!(refused(&missing, "enabled"), (400, "M_BAD_JSON"));
    let actions = put(&s, &format!("{message}/actions"), &token, json!({ "actions": "notify" })).await;
    assert_eq!(refused(&actions, "actions"), (400, "M_BAD_JSON"));
    let not_json = call(&s, Method::PUT, "/pushrules/global/override/x", &token, Some("{nope")).await;
    assert_eq!(refused(&not_json, "JSON"), (400, "M_NOT_JSON"));

    // Nothing refused was kept.
    let (_, global) = get(&s, "/pushrules/global/", &token).await;
    let (fresh_status, fresh) = get(&s, "/pushrules/global/", &register(&s, "uma").await).await;
    assert_eq!(fresh_status, 200);
    assert_eq!(ids(&global, "override"), ids(&fresh, "override"));
    assert_eq!(global["underride"], fresh["underride"]);
}
