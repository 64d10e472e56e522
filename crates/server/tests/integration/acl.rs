//! Services with ACLs: identities need per-object grants to read, write and manage; creators
//! are granted what they create; subscriptions obey read grants.

use super::common::{TestServer, send};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_what_an_identity_may_read_and_write() {
    let Some(s) = TestServer::start().await else { return };
    let svc = s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await.ok();
    assert_eq!(svc["acl_enabled"], true);
    s.post("/services/app/documents", json!({ "unique_name": "secret", "data": { "x": 1 } })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let doc = "/services/app/documents/secret";
    let read = || send(s.bearer(&token, Method::GET, doc));
    let write = |x: u64| send(s.bearer(&token, Method::PUT, doc).json(&json!({ "data": { "x": x } })));

    // No grant: neither read nor write.
    read().await.refused(403, 40300, "alice");
    write(2).await.refused(403, 40300, "alice");
    send(s.bearer(&token, Method::GET, "/services/app/documents")).await.refused(403, 40300, "");
    send(s.bearer(&token, Method::GET, "/services/app/changes")).await.refused(403, 40300, "");

    // read=true: reads, still no writes.
    let grant = s.put(&format!("{doc}/permissions/alice"), json!({ "read": true })).await.ok();
    assert_eq!((&grant["read"], &grant["write"], &grant["manage"]), (&json!(true), &json!(false), &json!(false)));
    let got = read().await.ok();
    assert_eq!(got["data"], json!({ "x": 1 }));
    write(2).await.refused(403, 40300, "Write");
    let unchanged = s.get(doc).await.ok();
    assert_eq!((&unchanged["data"], &unchanged["revision"]), (&json!({ "x": 1 }), &json!(0)));
    // Its own grant is readable; the list of grants needs manage.
    let own = send(s.bearer(&token, Method::GET, &format!("{doc}/permissions/alice"))).await.ok();
    assert_eq!(own["read"], true);
    send(s.bearer(&token, Method::GET, &format!("{doc}/permissions"))).await.refused(403, 40300, "");

    // write alone: a stale conditional write is refused without the document it would have
    // replaced, which alice may not read.
    s.put(&format!("{doc}/permissions/alice"), json!({ "write": true })).await.ok();
    let stale = || send(s.bearer(&token, Method::PUT, doc).header("If-Match", "5").json(&json!({ "data": {} })));
    let blind = stale().await;
    assert!(blind.body.get("current").is_none(), "{}", blind.text);
    blind.refused(412, 41200, "revision");

    // write=true: writes; a refusal now shows the document as it is.
    s.put(&format!("{doc}/permissions/alice"), json!({ "read": true, "write": true })).await.ok();
    let seen = stale().await;
    assert_eq!((&seen.body["current"]["data"], &seen.body["current"]["revision"]), (&json!({ "x": 1 }), &json!(0)));
    let updated = write(2).await.ok();
    assert_eq!(updated["revision"], 1);
    assert_eq!(s.get(doc).await.ok()["data"], json!({ "x": 2 }));
    // Removing needs manage.
    send(s.bearer(&token, Method::DELETE, doc)).await.refused(403, 40300, "Manage");
    // Granting needs manage too.
    send(s.bearer(&token, Method::PUT, &format!("{doc}/permissions/bob")).json(&json!({ "read": true })))
        .await
        .refused(403, 40300, "");

    let perms = s.get(&format!("{doc}/permissions")).await.ok();
    let perms = perms.as_array().unwrap();
    assert_eq!(perms.len(), 1);
    assert_eq!((&perms[0]["identity"], &perms[0]["write"]), (&json!("alice"), &json!(true)));

    // Revoked: back to 403.
    assert_eq!(s.delete(&format!("{doc}/permissions/alice")).await.status, 204);
    read().await.refused(403, 40300, "");
    s.get(&format!("{doc}/permissions/alice")).await.refused(404, 40405, "alice");
}

#[tokio::test]
async fn what_an_identity_creates_it_can_read_back() {
    let Some(s) = TestServer::start().await else { return };
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let bob = s.mint_token("app", "bob", 600).await;
    for (collection, body) in [
        ("documents", json!({ "unique_name": "mine", "data": { "a": 1 } })),
        ("maps", json!({ "unique_name": "mine" })),
        ("lists", json!({ "unique_name": "mine" })),
    ] {
        let created = send(s.bearer(&token, Method::POST, &format!("/services/app/{collection}")).json(&body)).await;
        assert_eq!(created.status, 201, "{collection}: {}", created.text);
        assert_eq!(created.body["created_by"], "alice");
        let path = format!("/services/app/{collection}/mine");
        let read = send(s.bearer(&token, Method::GET, &path)).await.ok();
        assert_eq!(read["sid"], created.body["sid"]);
        let perms = s.get(&format!("{path}/permissions")).await.ok();
        assert_eq!(
            perms,
            json!([{ "object_sid": created.body["sid"], "identity": "alice", "read": true, "write": true, "manage": true }])
        );
        // Another identity is not granted anything.
        send(s.bearer(&bob, Method::GET, &path)).await.refused(403, 40300, "bob");
    }
    // The creator can write items and manage its objects.
    let item =
        send(s.bearer(&token, Method::POST, "/services/app/maps/mine/items").json(&json!({ "key": "k", "data": {} })))
            .await;
    assert_eq!(item.status, 201, "{}", item.text);
    let granted =
        send(s.bearer(&token, Method::PUT, "/services/app/maps/mine/permissions/bob").json(&json!({ "read": true })))
            .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    assert_eq!(send(s.bearer(&bob, Method::GET, "/services/app/maps/mine/items/k")).await.status, 200);
    assert_eq!(send(s.bearer(&token, Method::DELETE, "/services/app/documents/mine")).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_needs_a_read_grant() {
    let Some(s) = TestServer::start().await else { return };
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await.ok();
    s.post("/services/app/documents", json!({ "unique_name": "secret", "data": { "x": 1 } })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;

    let refused = ws.request(json!({ "type": "subscribe", "kind": "document", "object": "secret" })).await;
    assert_eq!((&refused["status"], &refused["error"]["code"]), (&json!(403), &json!(40300)), "{refused}");
    assert!(refused.get("body").is_none(), "no snapshot leaks: {refused}");
    let get = ws.request(json!({ "type": "get", "kind": "document", "object": "secret" })).await;
    assert_eq!(get["status"], 403);
    // An update made now is not delivered to the refused subscription.
    s.put("/services/app/documents/secret", json!({ "data": { "x": 2 } })).await.ok();
    assert_eq!(ws.request(json!({ "type": "ping" })).await["status"], 200, "no event arrived first");

    s.put("/services/app/documents/secret/permissions/alice", json!({ "read": true })).await.ok();
    let (reply, _) = ws.subscribe("document", "secret", None).await;
    assert_eq!(reply["body"]["object"]["data"], json!({ "x": 2 }));
    s.put("/services/app/documents/secret", json!({ "data": { "x": 3 } })).await.ok();
    assert_eq!(ws.next_event().await["data"], json!({ "x": 3 }));
    // Read is not write, over the socket too.
    let update =
        ws.request(json!({ "type": "update", "kind": "document", "object": "secret", "data": { "x": 4 } })).await;
    assert_eq!((&update["status"], &update["error"]["code"]), (&json!(403), &json!(40300)));
}
