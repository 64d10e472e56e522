//! Writes over the native WebSocket: each kind of object written and answered, refusals that
//! change nothing, and the reply a write may ask to be minimal.

use super::common::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_over_the_socket_reply_and_reach_other_connections() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let alice = s.mint_token("app", "alice", 3600).await;
    let bob = s.mint_token("app", "bob", 3600).await;
    let mut a = s.ws(&alice).await;
    let mut b = s.ws(&bob).await;

    // open → 201 then 200; update with a stale if_match → 412/41200 and nothing changes.
    let opened = a.request(json!({ "type": "open", "kind": "document", "unique_name": "d", "data": { "n": 1 } })).await;
    assert_eq!((&opened["status"], &opened["body"]["created_by"]), (&json!(201), &json!("alice")), "{opened}");
    let again = a.request(json!({ "type": "open", "kind": "document", "unique_name": "d" })).await;
    assert_eq!((&again["status"], &again["body"]["sid"]), (&json!(200), &opened["body"]["sid"]));
    let stale = a
        .request(json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": 2 }, "if_match": 5 }))
        .await;
    assert_eq!((&stale["status"], &stale["error"]["code"]), (&json!(412), &json!(41200)), "{stale}");
    assert!(stale.get("body").is_none());
    let current = &stale["error"]["current"];
    assert_eq!((&current["data"], &current["revision"]), (&json!({ "n": 1 }), &json!(0)), "{stale}");
    let doc = s.get("/services/app/documents/d").await.ok();
    assert_eq!((&doc["data"], &doc["revision"]), (&json!({ "n": 1 }), &json!(0)), "a refused write changes nothing");
    let fresh = a
        .request(json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": 2 }, "if_match": 0 }))
        .await;
    assert_eq!((&fresh["status"], &fresh["body"]["revision"]), (&json!(200), &json!(1)));
    let got = a.request(json!({ "type": "get", "kind": "document", "object": "d" })).await;
    assert_eq!(got["body"]["data"], json!({ "n": 2 }));

    // Lists: add_item.
    a.request(json!({ "type": "open", "kind": "list", "unique_name": "l" })).await;
    for n in 0..2 {
        let added = a.request(json!({ "type": "add_item", "list": "l", "data": { "t": n } })).await;
        assert_eq!((&added["status"], &added["body"]["index"]), (&json!(201), &json!(n)), "{added}");
    }
    let items = s.get("/services/app/lists/l/items").await.ok();
    assert_eq!(items["items"][1]["data"], json!({ "t": 1 }));

    // Maps: set_item creates, then replaces; a stale if_match is refused.
    a.request(json!({ "type": "open", "kind": "map", "unique_name": "m" })).await;
    let set =
        a.request(json!({ "type": "set_item", "kind": "map", "object": "m", "key": "k", "data": { "x": 1 } })).await;
    assert_eq!((&set["status"], &set["body"]["key"]), (&json!(201), &json!("k")), "{set}");
    let set = a
        .request(
            json!({ "type": "set_item", "kind": "map", "object": "m", "key": "k", "data": { "x": 2 }, "if_match": 0 }),
        )
        .await;
    assert_eq!((&set["status"], &set["body"]["revision"]), (&json!(200), &json!(1)));
    let set = a
        .request(
            json!({ "type": "set_item", "kind": "map", "object": "m", "key": "k", "data": { "x": 3 }, "if_match": 0 }),
        )
        .await;
    assert_eq!(set["status"], 412);
    assert_eq!((&set["error"]["current"]["key"], &set["error"]["current"]["data"]), (&json!("k"), &json!({ "x": 2 })));
    assert_eq!(s.get("/services/app/maps/m/items/k").await.ok()["data"], json!({ "x": 2 }));
    let page = a.request(json!({ "type": "get_items", "kind": "map", "object": "m" })).await;
    assert_eq!(page["body"]["items"][0]["data"], json!({ "x": 2 }));

    // Streams: publish reaches a subscriber on another connection.
    let stream = a.request(json!({ "type": "open", "kind": "stream", "unique_name": "typing" })).await;
    assert_eq!(stream["status"], 201);
    b.subscribe("stream", "typing", None).await;
    let published = a.request(json!({ "type": "publish", "stream": "typing", "data": { "who": "alice" } })).await;
    assert_eq!(published["status"], 201, "{published}");
    let e = b.next_event().await;
    assert_eq!(e["type"], "stream_message_published");
    assert_eq!((&e["data"], &e["identity"]), (&json!({ "who": "alice" }), &json!("alice")));
    assert_eq!((&e["object_sid"], &e["message_sid"]), (&stream["body"]["sid"], &published["body"]["sid"]));
    let too_big = a.request(json!({ "type": "publish", "stream": "typing", "data": { "m": "x".repeat(5000) } })).await;
    assert_eq!((&too_big["status"], &too_big["error"]["code"]), (&json!(413), &json!(41300)));

    // remove with if_match.
    let removed = a.request(json!({ "type": "remove", "kind": "document", "object": "d", "if_match": 0 })).await;
    assert_eq!(removed["status"], 412);
    let removed = a.request(json!({ "type": "remove", "kind": "document", "object": "d", "if_match": 1 })).await;
    assert_eq!(removed["status"], 204);
    assert_eq!(s.get("/services/app/documents/d").await.status, 404);
}

/// A write that asks for `"return": "minimal"` is answered with its new revision alone; the
/// write itself, its event and a refusal's `current` are what they are without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_asking_for_a_minimal_reply_gets_its_revision_alone() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 3600).await;
    let (mut a, mut b) = (s.ws(&token).await, s.ws(&token).await);
    a.request(json!({ "type": "open", "kind": "document", "unique_name": "d", "data": { "n": 0 } })).await;
    b.subscribe("document", "d", None).await;

    let minimal = json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": 1 }, "if_match": 0, "return": "minimal" });
    let written = a.request(minimal).await;
    assert_eq!((&written["status"], &written["body"]), (&json!(200), &json!({ "revision": 1 })), "{written}");
    let e = b.next_event().await;
    assert_eq!((&e["data"], &e["revision"]), (&json!({ "n": 1 }), &json!(1)), "the event still carries the data");
    let doc = s.get("/services/app/documents/d").await.ok();
    assert_eq!((&doc["data"], &doc["revision"]), (&json!({ "n": 1 }), &json!(1)));
    let full = a.request(json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": 2 } })).await;
    assert_eq!((&full["body"]["data"], &full["body"]["revision"]), (&json!({ "n": 2 }), &json!(2)), "{full}");

    // A refusal is the same either way: the error, with the object as the writer found it.
    let stale = a
        .request(json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": 9 }, "if_match": 0, "return": "minimal" }))
        .await;
    assert_eq!((&stale["status"], &stale["error"]["current"]["data"]), (&json!(412), &json!({ "n": 2 })), "{stale}");

    // Items: a creation keeps its 201.
    a.request(json!({ "type": "open", "kind": "map", "unique_name": "m" })).await;
    let item = json!({ "type": "set_item", "kind": "map", "object": "m", "key": "k", "data": { "x": 1 }, "return": "minimal" });
    let set = a.request(item.clone()).await;
    assert_eq!((&set["status"], &set["body"]), (&json!(201), &json!({ "revision": 0 })), "{set}");
    let set = a.request(item).await;
    assert_eq!((&set["status"], &set["body"]), (&json!(200), &json!({ "revision": 1 })), "{set}");
    assert_eq!(s.get("/services/app/maps/m/items/k").await.ok()["revision"], json!(1));

    // An unknown preference is refused, naming the field, and changes nothing.
    a.send(json!({ "type": "update", "id": 90, "kind": "document", "object": "d", "data": { "n": 5 }, "return": "nothing" }))
        .await;
    let e = a.recv().await;
    assert_eq!((&e["type"], &e["id"], &e["error"]["code"]), (&json!("error"), &json!(90), &json!(40000)), "{e}");
    assert!(e["error"]["message"].as_str().unwrap_or_default().contains("nothing"), "{e}");
    assert_eq!(s.get("/services/app/documents/d").await.ok()["revision"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_item_and_a_published_message_may_be_answered_with_what_the_server_chose() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 3600).await;
    let (mut a, mut b) = (s.ws(&token).await, s.ws(&token).await);
    a.request(json!({ "type": "open", "kind": "list", "unique_name": "l" })).await;
    a.request(json!({ "type": "open", "kind": "stream", "unique_name": "s" })).await;
    b.subscribe("list", "l", None).await;
    b.subscribe("stream", "s", None).await;

    // A list item: its index and revision alone; the watcher's event and a read carry the data.
    let add = json!({ "type": "add_item", "list": "l", "data": { "x": 1 }, "return": "minimal" });
    let added = a.request(add.clone()).await;
    assert_eq!((&added["status"], &added["body"]), (&json!(201), &json!({ "index": 0, "revision": 0 })), "{added}");
    let added = a.request(add).await;
    assert_eq!(added["body"], json!({ "index": 1, "revision": 0 }), "{added}");
    for index in [0, 1] {
        let e = b.next_event().await;
        assert_eq!((&e["item_index"], &e["data"]), (&json!(index), &json!({ "x": 1 })), "{e}");
    }
    assert_eq!(s.get("/services/app/lists/l/items/1").await.ok()["data"], json!({ "x": 1 }));
    let full = a.request(json!({ "type": "add_item", "list": "l", "data": { "x": 2 } })).await;
    assert_eq!((&full["body"]["index"], &full["body"]["data"]), (&json!(2), &json!({ "x": 2 })), "{full}");
    b.next_event().await;

    // A stream message: its SID alone, the one its subscribers are sent.
    let published =
        a.request(json!({ "type": "publish", "stream": "s", "data": { "m": 1 }, "return": "minimal" })).await;
    let sid = published["body"]["sid"].as_str().unwrap_or_default().to_owned();
    assert!(sid.starts_with("TZ"), "{published}");
    assert_eq!((&published["status"], published["body"].as_object().map(|o| o.len())), (&json!(201), Some(1)));
    let e = b.next_event().await;
    assert_eq!((&e["message_sid"], &e["data"]), (&json!(sid), &json!({ "m": 1 })), "{e}");

    // An unknown preference is refused and adds nothing.
    a.send(json!({ "type": "add_item", "id": 91, "list": "l", "data": {}, "return": "none" })).await;
    let e = a.recv().await;
    assert_eq!((&e["type"], &e["id"], &e["error"]["code"]), (&json!("error"), &json!(91), &json!(40000)), "{e}");
    let items = s.get("/services/app/lists/l/items").await.ok();
    assert_eq!(items["items"].as_array().map(Vec::len), Some(3), "{items}");
}
