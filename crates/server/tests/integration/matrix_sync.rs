//! `/sync` over HTTP as the spec words it: initial and incremental answers, invites, joins and
//! leaves, `limited` timelines with `prev_batch` and the gap's membership, state as of the
//! start of the timeline, lazy-loaded members, transaction ids for the sending device only,
//! long-polls that wake for what passes the filter, typing, receipts, unread counts, presence,
//! account data, and errors for bad parameters.

use super::common::TestServer;
use super::matrix::{CLIENT, errcode, get, post, put, register, with_registration};
use ferrosync_server::api::matrix::RegistrationPolicy;
use serde_json::{Value, json};
use std::time::Duration;

pub(super) struct User {
    pub(super) id: String,
    pub(super) token: String,
}

pub(super) async fn user(s: &TestServer, name: &str) -> User {
    let r = register(s, name, "pw").await;
    User {
        id: r["user_id"].as_str().unwrap_or_default().to_owned(),
        token: r["access_token"].as_str().unwrap_or_default().to_owned(),
    }
}

pub(super) async fn sync_with(s: &TestServer, u: &User, params: &[(&str, &str)]) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&s.root(&format!("{CLIENT}/sync"))).expect("a URL");
    url.query_pairs_mut().extend_pairs(params);
    let resp = s.http.get(url).bearer_auth(&u.token).send().await.expect("the server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

pub(super) async fn sync(s: &TestServer, u: &User, params: &[(&str, &str)]) -> Value {
    let (status, body) = sync_with(s, u, params).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["next_batch"].is_string(), "{body}");
    body
}

pub(super) async fn create_room(s: &TestServer, u: &User, body: Value) -> String {
    let (status, made) = post(s, "/createRoom", Some(&u.token), body).await;
    assert_eq!(status, 200, "{made}");
    made["room_id"].as_str().unwrap_or_default().to_owned()
}

pub(super) async fn say(s: &TestServer, u: &User, room: &str, txn: &str, body: &str) -> String {
    let msg = json!({ "msgtype": "m.text", "body": body });
    let (status, sent) = put(s, &format!("/rooms/{room}/send/m.room.message/{txn}"), Some(&u.token), msg).await;
    assert_eq!(status, 200, "{sent}");
    sent["event_id"].as_str().unwrap_or_default().to_owned()
}

pub(super) fn bodies(events: &Value) -> Vec<&str> {
    events.as_array().map(|a| a.iter().filter_map(|e| e["content"]["body"].as_str()).collect()).unwrap_or_default()
}

pub(super) fn state_of<'a>(events: &'a Value, kind: &str) -> Vec<&'a Value> {
    events.as_array().map(|a| a.iter().filter(|e| e["type"] == kind).collect()).unwrap_or_default()
}

pub(super) fn token(body: &Value) -> String {
    body["next_batch"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn invites_joins_messages_and_leaves_reach_each_member_once() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa) = (user(&s, "mia").await, user(&s, "noa").await);
    let room = create_room(&s, &mia, json!({ "name": "Garden", "invite": [noa.id] })).await;

    let first = sync(&s, &noa, &[]).await;
    let invite = &first["rooms"]["invite"][&room]["invite_state"]["events"];
    assert_eq!(state_of(invite, "m.room.name")[0]["content"]["name"], "Garden", "{first}");
    let mine = state_of(invite, "m.room.member").into_iter().find(|e| e["state_key"] == noa.id.as_str()).cloned();
    assert_eq!(mine.map(|e| e["content"]["membership"].clone()), Some(json!("invite")));
    assert!(first["rooms"]["join"].get(&room).is_none());

    // Nothing new: an immediate answer, with no room in it.
    let idle = sync(&s, &noa, &[("since", &token(&first))]).await;
    assert!(idle["rooms"]["join"].as_object().is_some_and(|m| m.is_empty()), "{idle}");

    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let hello = say(&s, &mia, &room, "t1", "hello").await;
    let joined = sync(&s, &noa, &[("since", &token(&idle))]).await;
    let entry = &joined["rooms"]["join"][&room];
    assert!(entry.is_object(), "the joined room comes as if for the first time: {joined}");
    assert_eq!(bodies(&entry["timeline"]["events"]), vec!["hello"]);
    let all_state: Vec<&Value> = entry["state"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(entry["timeline"]["events"].as_array().into_iter().flatten())
        .collect();
    for kind in ["m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"] {
        assert!(all_state.iter().any(|e| e["type"] == kind), "{kind} is in the room's state: {entry}");
    }
    assert!(entry["timeline"]["events"].as_array().is_some_and(|t| t.iter().all(|e| e.get("room_id").is_none())));
    assert_eq!(entry["summary"]["m.joined_member_count"], 2, "{entry}");
    assert!(joined["rooms"]["invite"].get(&room).is_none(), "no longer an invite");
    let hello_event = entry["timeline"]["events"].as_array().and_then(|t| t.last()).cloned().unwrap_or_default();
    assert_eq!(hello_event["event_id"], hello.as_str());
    assert!(hello_event["unsigned"].get("transaction_id").is_none(), "another user's transaction id stays theirs");

    // The sender's own device sees its transaction id; a second device of the same user not.
    let mia_first = sync(&s, &mia, &[]).await;
    let own = &mia_first["rooms"]["join"][&room]["timeline"]["events"];
    let own_hello = own.as_array().and_then(|t| t.iter().find(|e| e["event_id"] == hello.as_str())).cloned();
    assert_eq!(own_hello.map(|e| e["unsigned"]["transaction_id"].clone()), Some(json!("t1")));

    // Each event comes once: the next sync from the last token holds only the new message.
    say(&s, &mia, &room, "t2", "again").await;
    let next = sync(&s, &noa, &[("since", &token(&joined))]).await;
    assert_eq!(bodies(&next["rooms"]["join"][&room]["timeline"]["events"]), vec!["again"]);
    assert_eq!(next["rooms"]["join"][&room]["timeline"]["limited"], false);
    assert_ne!(token(&next), token(&joined), "the token moves when something was delivered");

    assert_eq!(post(&s, &format!("/rooms/{room}/leave"), Some(&noa.token), json!({})).await.0, 200);
    say(&s, &mia, &room, "t3", "after you left").await;
    let left = sync(&s, &noa, &[("since", &token(&next))]).await;
    let leave = &left["rooms"]["leave"][&room];
    let leave_timeline = leave["timeline"]["events"].as_array().cloned().unwrap_or_default();
    assert!(
        leave_timeline.iter().any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "leave"),
        "{left}"
    );
    assert!(!bodies(&leave["timeline"]["events"]).contains(&"after you left"), "nothing after the leave");
    assert!(left["rooms"]["join"].get(&room).is_none());
}

#[tokio::test]
async fn a_limited_timeline_keeps_the_gaps_members_and_state_as_of_its_start() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa, oli) = (user(&s, "mia").await, user(&s, "noa").await, user(&s, "oli").await);
    // Named, so the summary needs no heroes (whose members lazy loading would add).
    let room = create_room(&s, &mia, json!({ "preset": "public_chat", "topic": "first", "name": "Lazy" })).await;
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let filter = json!({ "room": { "timeline": { "limit": 2 }, "state": { "lazy_load_members": true } } }).to_string();
    let start = sync(&s, &noa, &[("filter", &filter)]).await;

    // In the gap: oli joins and the topic changes; then three messages.
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&oli.token), json!({})).await.0, 200);
    let topic = json!({ "topic": "second" });
    assert_eq!(put(&s, &format!("/rooms/{room}/state/m.room.topic"), Some(&mia.token), topic).await.0, 200);
    for n in 1..=3 {
        say(&s, &mia, &room, &format!("g{n}"), &format!("m{n}")).await;
    }
    let gappy = sync(&s, &noa, &[("since", &token(&start)), ("filter", &filter)]).await;
    let entry = &gappy["rooms"]["join"][&room];
    assert_eq!(entry["timeline"]["limited"], true, "{entry}");
    assert_eq!(bodies(&entry["timeline"]["events"]), vec!["m2", "m3"]);
    let prev_batch = entry["timeline"]["prev_batch"].as_str().expect("prev_batch").to_owned();
    let members: Vec<&str> =
        state_of(&entry["state"]["events"], "m.room.member").iter().filter_map(|e| e["state_key"].as_str()).collect();
    assert!(members.contains(&oli.id.as_str()), "the gap's membership is always sent, lazy or not: {entry}");
    assert_eq!(state_of(&entry["state"]["events"], "m.room.topic")[0]["content"]["topic"], "second");

    // The gap is what /messages fills between prev_batch and the old token.
    let (status, page) = get(
        &s,
        &format!("/rooms/{room}/messages?dir=b&from={prev_batch}&to={}&limit=10", token(&start)),
        Some(&noa.token),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let gap: Vec<String> =
        page["chunk"].as_array().into_iter().flatten().filter_map(|e| e["type"].as_str().map(str::to_owned)).collect();
    assert_eq!(gap, vec!["m.room.message", "m.room.topic", "m.room.member"], "newest first: m1, the topic, oli's join");

    // A first sync with the same filter: state as of the start of the two events returned, with
    // lazy members: the senders and the user's own membership, not oli.
    let first = sync(&s, &noa, &[("filter", &filter)]).await;
    let entry = &first["rooms"]["join"][&room];
    let members: Vec<&str> =
        state_of(&entry["state"]["events"], "m.room.member").iter().filter_map(|e| e["state_key"].as_str()).collect();
    assert!(members.contains(&mia.id.as_str()) && members.contains(&noa.id.as_str()), "{members:?}");
    assert!(!members.contains(&oli.id.as_str()), "oli sent nothing in the window: {members:?}");
    assert_eq!(state_of(&entry["state"]["events"], "m.room.topic")[0]["content"]["topic"], "second");

    // When the window starts before the topic change, state holds the topic it replaced.
    let wide = json!({ "room": { "timeline": { "limit": 4 } } }).to_string();
    let first = sync(&s, &noa, &[("filter", &wide)]).await;
    let entry = &first["rooms"]["join"][&room];
    assert_eq!(entry["timeline"]["events"].as_array().map(Vec::len), Some(4));
    assert_eq!(state_of(&entry["timeline"]["events"], "m.room.topic")[0]["content"]["topic"], "second");
    assert_eq!(state_of(&entry["state"]["events"], "m.room.topic")[0]["content"]["topic"], "first", "{entry}");

    // full_state gives the whole state with an incremental timeline.
    say(&s, &mia, &room, "g4", "m4").await;
    let full = sync(&s, &noa, &[("since", &token(&gappy)), ("full_state", "true")]).await;
    let entry = &full["rooms"]["join"][&room];
    assert_eq!(bodies(&entry["timeline"]["events"]), vec!["m4"]);
    assert!(state_of(&entry["state"]["events"], "m.room.create").len() == 1, "{entry}");
    assert_eq!(state_of(&entry["state"]["events"], "m.room.member").len(), 3);
}

#[tokio::test]
async fn a_long_poll_wakes_for_what_passes_its_filter() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa) = (user(&s, "mia").await, user(&s, "noa").await);
    let room = create_room(&s, &mia, json!({ "preset": "public_chat" })).await;
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let quiet = json!({ "presence": { "not_types": ["*"] } }).to_string();
    let start = sync(&s, &noa, &[("filter", &quiet)]).await;
    let since = token(&start);

    let poll = {
        let (url, tok, since, quiet) =
            (s.root(&format!("{CLIENT}/sync")), noa.token.clone(), since.clone(), quiet.clone());
        let http = s.http.clone();
        tokio::spawn(async move {
            let mut url = reqwest::Url::parse(&url).expect("a URL");
            url.query_pairs_mut().extend_pairs([
                ("since", since.as_str()),
                ("timeout", "20000"),
                ("filter", quiet.as_str()),
            ]);
            http.get(url).bearer_auth(tok).send().await.expect("answered").json::<Value>().await.expect("JSON")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Presence the filter drops does not end the wait; the message does.
    let status = json!({ "presence": "unavailable" });
    assert_eq!(put(&s, &format!("/presence/{}/status", mia.id), Some(&mia.token), status).await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    say(&s, &mia, &room, "p1", "wake up").await;
    let woke = tokio::time::timeout(Duration::from_secs(15), poll).await.expect("the poll returns").expect("joined");
    assert_eq!(bodies(&woke["rooms"]["join"][&room]["timeline"]["events"]), vec!["wake up"], "{woke}");
    assert!(woke["presence"]["events"].as_array().is_none_or(Vec::is_empty));

    // With no filter the presence change is news, and set_presence=offline keeps noa as set.
    let plain = sync(&s, &noa, &[("since", &since), ("set_presence", "offline")]).await;
    let presence = plain["presence"]["events"].as_array().cloned().unwrap_or_default();
    assert!(
        presence.iter().any(|e| e["sender"] == mia.id.as_str() && e["content"]["presence"] == "unavailable"),
        "{plain}"
    );
    // A timeout of 0 answers at once even with nothing new.
    let now = sync(&s, &noa, &[("since", &token(&plain)), ("timeout", "0")]).await;
    assert!(now["rooms"]["join"].as_object().is_some_and(|m| m.is_empty()));
}

#[tokio::test]
async fn typing_receipts_unread_counts_and_account_data_come_with_the_room() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa) = (user(&s, "mia").await, user(&s, "noa").await);
    let room = create_room(&s, &mia, json!({ "preset": "public_chat" })).await;
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let start = sync(&s, &noa, &[]).await;
    let rules = state_of(&start["account_data"]["events"], "m.push_rules");
    let master = &rules[0]["content"]["global"]["override"][0];
    assert_eq!((&master["rule_id"], &master["enabled"]), (&json!(".m.rule.master"), &json!(false)), "{start}");
    let first = say(&s, &mia, &room, "u1", "one").await;
    say(&s, &mia, &room, "u2", "two, noa").await;
    say(&s, &mia, &room, "u3", "three").await;
    let typing = json!({ "typing": true, "timeout": 20000 });
    assert_eq!(put(&s, &format!("/rooms/{room}/typing/{}", mia.id), Some(&mia.token), typing).await, (200, json!({})));
    let not_mine =
        put(&s, &format!("/rooms/{room}/typing/{}", mia.id), Some(&noa.token), json!({ "typing": true })).await;
    assert_eq!(errcode(&not_mine), (403, "M_FORBIDDEN"));

    let got = sync(&s, &noa, &[("since", &token(&start))]).await;
    let entry = &got["rooms"]["join"][&room];
    let typing: Vec<&Value> = state_of(&entry["ephemeral"]["events"], "m.typing");
    assert_eq!(typing[0]["content"]["user_ids"], json!([mia.id]), "{entry}");
    assert_eq!(entry["unread_notifications"], json!({ "notification_count": 3, "highlight_count": 1 }));

    // A read receipt on the first message: mia sees it, the count drops to two.
    let (status, _) = post(&s, &format!("/rooms/{room}/receipt/m.read/{first}"), Some(&noa.token), json!({})).await;
    assert_eq!(status, 200);
    let bad = post(&s, &format!("/rooms/{room}/receipt/m.read/$nope_1"), Some(&noa.token), json!({})).await;
    assert_eq!(errcode(&bad), (404, "M_NOT_FOUND"));
    let bad = post(&s, &format!("/rooms/{room}/receipt/m.bogus/{first}"), Some(&noa.token), json!({})).await;
    assert_eq!(errcode(&bad), (400, "M_INVALID_PARAM"));
    let marker = json!({ "m.fully_read": first });
    assert_eq!(post(&s, &format!("/rooms/{room}/read_markers"), Some(&noa.token), marker).await.0, 200);
    let data = json!({ "tags": { "u.garden": {} } });
    assert_eq!(
        put(&s, &format!("/user/{}/rooms/{room}/account_data/m.tag", noa.id), Some(&noa.token), data).await.0,
        200
    );
    assert_eq!(
        put(&s, &format!("/user/{}/account_data/x.theme", noa.id), Some(&noa.token), json!({ "dark": true })).await.0,
        200
    );
    let stop = json!({ "typing": false });
    assert_eq!(put(&s, &format!("/rooms/{room}/typing/{}", mia.id), Some(&mia.token), stop).await.0, 200);

    let later = sync(&s, &noa, &[("since", &token(&got))]).await;
    let entry = &later["rooms"]["join"][&room];
    assert_eq!(entry["unread_notifications"]["notification_count"], 2, "{entry}");
    let receipts = state_of(&entry["ephemeral"]["events"], "m.receipt");
    assert!(receipts[0]["content"][&first]["m.read"][&noa.id]["ts"].is_i64(), "{entry}");
    assert_eq!(state_of(&entry["ephemeral"]["events"], "m.typing")[0]["content"]["user_ids"], json!([]));
    let room_data: Vec<&str> =
        entry["account_data"]["events"].as_array().into_iter().flatten().filter_map(|e| e["type"].as_str()).collect();
    assert!(room_data.contains(&"m.tag") && room_data.contains(&"m.fully_read"), "{room_data:?}");
    assert_eq!(state_of(&later["account_data"]["events"], "x.theme")[0]["content"], json!({ "dark": true }));

    // Typing ends by itself when its timeout passes.
    let short = json!({ "typing": true, "timeout": 1000 });
    assert_eq!(put(&s, &format!("/rooms/{room}/typing/{}", mia.id), Some(&mia.token), short).await.0, 200);
    let mut since = token(&later);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let step = sync(&s, &noa, &[("since", &since), ("timeout", "3000")]).await;
        since = token(&step);
        for e in state_of(&step["rooms"]["join"][&room]["ephemeral"]["events"], "m.typing") {
            seen.push(e["content"]["user_ids"].clone());
        }
        if seen.last() == Some(&json!([])) {
            break;
        }
    }
    assert_eq!(seen, vec![json!([mia.id]), json!([])], "typing started, then expired");
}

#[tokio::test]
async fn bad_parameters_are_refused_with_the_specs_codes() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let noa = user(&s, "noa").await;
    for (params, code) in [
        (vec![("since", "garbage")], "M_INVALID_PARAM"),
        (vec![("since", "s999999_0")], "M_INVALID_PARAM"),
        (vec![("timeout", "soon")], "M_INVALID_PARAM"),
        (vec![("set_presence", "away")], "M_INVALID_PARAM"),
        (vec![("full_state", "yes")], "M_INVALID_PARAM"),
        (vec![("filter", "{not json")], "M_NOT_JSON"),
        (vec![("filter", "{\"room\":{\"timeline\":{\"limit\":\"ten\"}}}")], "M_BAD_JSON"),
        (vec![("filter", "12345")], "M_INVALID_PARAM"),
    ] {
        let answer = sync_with(&s, &noa, &params).await;
        assert_eq!(errcode(&answer), (400, code), "{params:?}");
    }
    let nobody = User { id: String::new(), token: "mat_nope".into() };
    assert_eq!(errcode(&sync_with(&s, &nobody, &[]).await), (401, "M_UNKNOWN_TOKEN"));
    // Unknown parameters are ignored, and an uploaded filter is used by its id.
    let (_, made) = post(
        &s,
        &format!("/user/{}/filter", noa.id),
        Some(&noa.token),
        json!({ "room": { "timeline": { "limit": 1 } } }),
    )
    .await;
    let id = made["filter_id"].as_str().expect("a filter id").to_owned();
    sync(&s, &noa, &[("filter", &id), ("_cacheBuster", "1")]).await;
}

fn members_in(entry: &Value) -> Vec<String> {
    let mut users: Vec<String> = state_of(&entry["state"]["events"], "m.room.member")
        .iter()
        .filter_map(|e| e["state_key"].as_str().map(str::to_owned))
        .collect();
    users.sort();
    users
}

#[tokio::test]
async fn lazy_members_are_sent_once_per_device_unless_redundant_ones_are_asked_for() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa, oli) = (user(&s, "mia").await, user(&s, "noa").await, user(&s, "oli").await);
    let room = create_room(&s, &mia, json!({ "preset": "public_chat", "name": "Lazy" })).await;
    for u in [&noa, &oli] {
        assert_eq!(post(&s, &format!("/join/{room}"), Some(&u.token), json!({})).await.0, 200);
    }
    say(&s, &mia, &room, "l1", "first").await;
    let lazy = json!({ "room": { "timeline": { "limit": 1 }, "state": { "lazy_load_members": true } } }).to_string();
    let first = sync(&s, &noa, &[("filter", &lazy)]).await;
    assert!(members_in(&first["rooms"]["join"][&room]).contains(&mia.id), "{first}");

    // mia again: noa's device holds her member event since it synced from that answer's token.
    say(&s, &mia, &room, "l2", "second").await;
    let second = sync(&s, &noa, &[("since", &token(&first)), ("filter", &lazy)]).await;
    let entry = &second["rooms"]["join"][&room];
    assert_eq!(bodies(&entry["timeline"]["events"]), vec!["second"]);
    assert!(!members_in(entry).contains(&mia.id), "redundant: {entry}");

    // oli speaks for the first time: his member event comes with it.
    say(&s, &oli, &room, "l3", "hello from oli").await;
    let third = sync(&s, &noa, &[("since", &token(&second)), ("filter", &lazy)]).await;
    assert_eq!(members_in(&third["rooms"]["join"][&room]), vec![oli.id.clone()]);

    // Asking for redundant members sends mia's again.
    say(&s, &mia, &room, "l4", "third").await;
    let redundant = json!({ "room": { "state": { "lazy_load_members": true, "include_redundant_members": true } } });
    let fourth = sync(&s, &noa, &[("since", &token(&third)), ("filter", &redundant.to_string())]).await;
    assert_eq!(members_in(&fourth["rooms"]["join"][&room]), vec![mia.id.clone()]);

    // Federation format names the room in each event; event_fields keeps only what is listed.
    let shaped =
        json!({ "event_format": "federation", "event_fields": ["type", "content.body", "room_id"] }).to_string();
    let fifth = sync(&s, &noa, &[("since", &token(&third)), ("filter", &shaped)]).await;
    let events = fifth["rooms"]["join"][&room]["timeline"]["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events, vec![json!({ "type": "m.room.message", "content": { "body": "third" }, "room_id": room })]);
}

#[tokio::test]
async fn the_native_websocket_watches_a_rooms_timeline() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let mia = user(&s, "mia").await;
    let room = create_room(&s, &mia, json!({ "name": "Watched" })).await;
    let token = s.mint_token("matrix", "observer", 600).await;
    let mut ws = s.ws(&token).await;
    let (reply, _) = ws.subscribe("list", &format!("{room}/timeline"), None).await;
    assert_eq!(reply["status"], 200, "{reply}");
    let sent = say(&s, &mia, &room, "w1", "seen natively").await;
    let event = ws.next_event().await;
    assert_eq!(event["type"], "list_item_added", "{event}");
    assert_eq!(
        (&event["data"]["event_id"], &event["data"]["content"]["body"]),
        (&json!(sent), &json!("seen natively"))
    );
}
