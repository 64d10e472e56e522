//! What encrypting clients and room moderators need, over HTTP: device keys uploaded and
//! queried, one-time keys claimed once each then the fallback key, to-device messages queued
//! until acknowledged, device list changes in `/sync` and `/keys/changes`, devices' last-seen
//! times; and redactions, knocks, direct-chat invites and the public room directory.

use super::common::TestServer;
use super::matrix::{errcode, get, post, put, with_registration};
use super::matrix_sync::{User, bodies, create_room, say, state_of, sync, token, user};
use ferrosync_server::api::matrix::RegistrationPolicy;
use serde_json::{Value, json};

async fn device_of(s: &TestServer, u: &User) -> String {
    let (_, me) = get(s, "/account/whoami", Some(&u.token)).await;
    me["device_id"].as_str().unwrap_or_default().to_owned()
}

fn device_keys(u: &User, device: &str) -> Value {
    json!({
        "user_id": u.id, "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{device}"): "curve", format!("ed25519:{device}"): "ed" },
        "signatures": { u.id.clone(): { format!("ed25519:{device}"): "sig" } },
    })
}

#[tokio::test]
async fn keys_are_stored_faithfully_and_one_time_keys_claimed_once() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa) = (user(&s, "mia").await, user(&s, "noa").await);
    let room = create_room(&s, &mia, json!({ "preset": "public_chat" })).await;
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let noa_since = token(&sync(&s, &noa, &[]).await);
    let device = device_of(&s, &mia).await;

    let upload = json!({
        "device_keys": device_keys(&mia, &device),
        "one_time_keys": {
            "signed_curve25519:AAAA": { "key": "k1" },
            "signed_curve25519:AAAB": { "key": "k2" },
        },
        "fallback_keys": { "signed_curve25519:FFFF": { "key": "fb", "fallback": true } },
    });
    let (status, counts) = post(&s, "/keys/upload", Some(&mia.token), upload).await;
    assert_eq!((status, &counts["one_time_key_counts"]), (200, &json!({ "signed_curve25519": 2 })), "{counts}");
    let wrong = json!({ "device_keys": device_keys(&noa, "OTHER") });
    assert_eq!(errcode(&post(&s, "/keys/upload", Some(&mia.token), wrong).await), (400, "M_INVALID_PARAM"));

    let (_, found) = post(&s, "/keys/query", Some(&noa.token), json!({ "device_keys": { mia.id.clone(): [] } })).await;
    let keys = &found["device_keys"][&mia.id][&device];
    assert_eq!(keys["keys"], device_keys(&mia, &device)["keys"], "stored as uploaded: {found}");
    assert_eq!(keys["signatures"], device_keys(&mia, &device)["signatures"]);

    let claim = json!({ "one_time_keys": { mia.id.clone(): { device.clone(): "signed_curve25519" } } });
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let (status, got) = post(&s, "/keys/claim", Some(&noa.token), claim.clone()).await;
        assert_eq!(status, 200, "{got}");
        let keys = got["one_time_keys"][&mia.id][&device].as_object().cloned().unwrap_or_default();
        claimed.extend(keys.into_iter().map(|(id, _)| id));
    }
    assert_eq!(
        claimed,
        vec!["signed_curve25519:AAAA", "signed_curve25519:AAAB", "signed_curve25519:FFFF"],
        "each one-time key once, then the fallback key"
    );

    // Mia's sync reports what is left; noa's sees mia's device list change.
    let mia_sync = sync(&s, &mia, &[]).await;
    assert_eq!(mia_sync["device_one_time_keys_count"], json!({}), "{mia_sync}");
    assert_eq!(mia_sync["device_unused_fallback_key_types"], json!([]));
    let noa_sync = sync(&s, &noa, &[("since", &noa_since)]).await;
    assert_eq!(noa_sync["device_lists"]["changed"], json!([mia.id]), "{noa_sync}");
    let (status, changes) =
        get(&s, &format!("/keys/changes?from={noa_since}&to={}", token(&noa_sync)), Some(&noa.token)).await;
    assert_eq!((status, &changes["changed"]), (200, &json!([mia.id])), "{changes}");

    // Leaving the only shared room puts mia in noa's `left`.
    let before_leave = token(&noa_sync);
    assert_eq!(post(&s, &format!("/rooms/{room}/leave"), Some(&mia.token), json!({})).await.0, 200);
    let after = sync(&s, &noa, &[("since", &before_leave)]).await;
    assert_eq!(after["device_lists"]["left"], json!([mia.id]), "{after}");
}

#[tokio::test]
async fn to_device_messages_wait_until_acknowledged_and_devices_show_when_seen() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa) = (user(&s, "mia").await, user(&s, "noa").await);
    let noa_device = device_of(&s, &noa).await;
    let first = sync(&s, &noa, &[]).await;
    let msg = json!({ "messages": { noa.id.clone(): { noa_device.clone(): { "hello": 1 } } } });
    assert_eq!(put(&s, "/sendToDevice/m.test/t1", Some(&mia.token), msg.clone()).await, (200, json!({})));
    assert_eq!(put(&s, "/sendToDevice/m.test/t1", Some(&mia.token), msg).await.0, 200, "a retry sends nothing more");
    let everyone = json!({ "messages": { noa.id.clone(): { "*": { "hello": 2 } } } });
    assert_eq!(put(&s, "/sendToDevice/m.test/t2", Some(&mia.token), everyone).await.0, 200);

    let got = sync(&s, &noa, &[("since", &token(&first))]).await;
    let events = got["to_device"]["events"].as_array().cloned().unwrap_or_default();
    let contents: Vec<&Value> = events.iter().map(|e| &e["content"]).collect();
    assert_eq!(contents, vec![&json!({ "hello": 1 }), &json!({ "hello": 2 })], "{got}");
    assert_eq!((&events[0]["type"], &events[0]["sender"]), (&json!("m.test"), &json!(mia.id)));
    // Repeating the old token (the answer was lost) gets the same messages again.
    let again = sync(&s, &noa, &[("since", &token(&first))]).await;
    assert_eq!(again["to_device"]["events"].as_array().map(Vec::len), Some(2));
    // The next token acknowledges them: they are gone.
    let next = sync(&s, &noa, &[("since", &token(&got))]).await;
    assert_eq!(next["to_device"]["events"], json!([]));
    let after_ack = sync(&s, &noa, &[("since", &token(&first))]).await;
    assert_eq!(after_ack["to_device"]["events"], json!([]), "acknowledged messages were deleted");

    let (_, devices) = get(&s, "/devices", Some(&noa.token)).await;
    let seen = devices["devices"].as_array().and_then(|d| d.first()).cloned().unwrap_or_default();
    assert!(seen["last_seen_ts"].as_i64().is_some_and(|t| t > 0), "{devices}");
    assert_eq!(seen["last_seen_ip"], "127.0.0.1");
}

#[tokio::test]
async fn redactions_knocks_direct_invites_and_the_public_directory() {
    let Some(s) = TestServer::with_settings(with_registration(RegistrationPolicy::Open, None)).await else { return };
    let (mia, noa, oli) = (user(&s, "mia").await, user(&s, "noa").await, user(&s, "oli").await);

    // Redaction: mia's own event, and noa's with her power; noa may not redact mia's.
    let room = create_room(&s, &mia, json!({ "preset": "public_chat", "name": "Plaza", "visibility": "public" })).await;
    assert_eq!(post(&s, &format!("/join/{room}"), Some(&noa.token), json!({})).await.0, 200);
    let since = token(&sync(&s, &noa, &[]).await);
    let secret = say(&s, &mia, &room, "r1", "secret").await;
    let noas = say(&s, &noa, &room, "r2", "oops").await;
    let refused = put(&s, &format!("/rooms/{room}/redact/{secret}/x1"), Some(&noa.token), json!({})).await;
    assert_eq!(errcode(&refused), (403, "M_FORBIDDEN"));
    let (status, redaction) =
        put(&s, &format!("/rooms/{room}/redact/{secret}/x2"), Some(&mia.token), json!({ "reason": "typo" })).await;
    assert_eq!(status, 200, "{redaction}");
    assert_eq!(put(&s, &format!("/rooms/{room}/redact/{noas}/x3"), Some(&mia.token), json!({})).await.0, 200);
    let missing = put(&s, &format!("/rooms/{room}/redact/$nope_9/x4"), Some(&mia.token), json!({})).await;
    assert_eq!(errcode(&missing), (404, "M_NOT_FOUND"));
    let got = sync(&s, &noa, &[("since", &since)]).await;
    let timeline = &got["rooms"]["join"][&room]["timeline"]["events"];
    let redactions = state_of(timeline, "m.room.redaction");
    assert_eq!(redactions.len(), 2, "{got}");
    assert_eq!((&redactions[0]["redacts"], &redactions[0]["content"]["reason"]), (&json!(secret), &json!("typo")));
    let (_, page) = get(&s, &format!("/rooms/{room}/messages?dir=b&limit=5"), Some(&noa.token)).await;
    let stripped = page["chunk"].as_array().and_then(|c| c.iter().find(|e| e["event_id"] == secret.as_str())).cloned();
    let stripped = stripped.unwrap_or_default();
    assert_eq!(stripped["content"], json!({}), "{page}");
    assert_eq!(stripped["unsigned"]["redacted_because"]["event_id"], redaction["event_id"]);
    assert!(!bodies(&page["chunk"]).contains(&"secret"));

    // The public directory lists the public room with its name and members, searchable.
    let (status, listed) = get(&s, "/publicRooms", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["chunk"][0]["room_id"], room.as_str());
    assert_eq!((&listed["chunk"][0]["name"], &listed["chunk"][0]["num_joined_members"]), (&json!("Plaza"), &json!(2)));
    let (_, searched) =
        post(&s, "/publicRooms", Some(&oli.token), json!({ "filter": { "generic_search_term": "nothing" } })).await;
    assert_eq!(searched["chunk"], json!([]));
    assert_eq!(get(&s, &format!("/directory/list/room/{room}"), None).await.1, json!({ "visibility": "public" }));
    let hide = json!({ "visibility": "private" });
    assert_eq!(
        errcode(&put(&s, &format!("/directory/list/room/{room}"), Some(&noa.token), hide.clone()).await),
        (403, "M_FORBIDDEN")
    );
    assert_eq!(put(&s, &format!("/directory/list/room/{room}"), Some(&mia.token), hide).await.0, 200);
    assert_eq!(get(&s, "/publicRooms", None).await.1["chunk"], json!([]));

    // A knock room: oli knocks, sees the room under `knock`, mia invites him in.
    let knock_rules = json!([{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } }]);
    let door = create_room(&s, &mia, json!({ "name": "Door", "initial_state": knock_rules })).await;
    let oli_since = token(&sync(&s, &oli, &[]).await);
    assert_eq!(post(&s, &format!("/knock/{door}"), Some(&oli.token), json!({ "reason": "hi" })).await.0, 200);
    assert_eq!(errcode(&post(&s, &format!("/knock/{room}"), Some(&oli.token), json!({})).await), (403, "M_FORBIDDEN"));
    let knocked = sync(&s, &oli, &[("since", &oli_since)]).await;
    let knock_state = &knocked["rooms"]["knock"][&door]["knock_state"]["events"];
    assert_eq!(state_of(knock_state, "m.room.name")[0]["content"]["name"], "Door", "{knocked}");
    assert_eq!(post(&s, &format!("/rooms/{door}/invite"), Some(&mia.token), json!({ "user_id": oli.id })).await.0, 200);
    assert_eq!(post(&s, &format!("/join/{door}"), Some(&oli.token), json!({})).await.0, 200);

    // A direct chat: the invite says so.
    let dm =
        create_room(&s, &mia, json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": [noa.id] })).await;
    let (_, member) = get(&s, &format!("/rooms/{dm}/state/m.room.member/{}", noa.id), Some(&mia.token)).await;
    assert_eq!(member, json!({ "membership": "invite", "is_direct": true }));
}
