//! The native REST API over real HTTP: objects, items, paging, conditional writes, bad input
//! (refused with a code naming the field, and changing nothing), credentials, ACLs, TTL and
//! the operations endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const GET: Method = Method::GET;
const DELETE: Method = Method::DELETE;

/// Asserts a refusal: status, code, and a message naming `field`.
fn refused(result: (u16, Value), status: u16, code: u64, field: &str) {
    let (got, body) = result;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(field), "message names {field}: {message}");
    assert!(body.get("type").is_none() && body.get("title").is_none());
}

#[tokio::test]
async fn services_and_document_open_modes() {
    let s = Server::default().await;
    let svc = s.post("/services", json!({ "unique_name": "app", "friendly_name": "App" })).await;
    assert!(svc["sid"].as_str().unwrap().starts_with("IS"));
    refused(s.call(Method::POST, "/services", Some(json!({ "unique_name": "app" }))).await, 409, 40900, "app");
    let (status, by_sid) = s.call(GET, &format!("/services/{}", svc["sid"].as_str().unwrap()), None).await;
    assert_eq!((status, &by_sid["unique_name"]), (200, &json!("app")));
    let updated = s.post("/services/app", json!({ "friendly_name": "Renamed" })).await;
    assert_eq!((updated["friendly_name"].as_str(), updated["revision"].as_u64()), (Some("Renamed"), Some(1)));

    // open_or_create (default): created once, then opened.
    let (status, doc) =
        s.call(Method::POST, "/services/app/documents", Some(json!({ "unique_name": "d", "data": { "a": 1 } }))).await;
    assert_eq!(status, 201);
    let (status, again) =
        s.call(Method::POST, "/services/app/documents", Some(json!({ "unique_name": "d", "data": { "a": 2 } }))).await;
    assert_eq!(
        (status, &again["sid"], &again["data"]),
        (200, &doc["sid"], &json!({ "a": 1 })),
        "initial data applies on create only"
    );
    refused(
        s.call(Method::POST, "/services/app/documents", Some(json!({ "unique_name": "d", "mode": "create_new" })))
            .await,
        409,
        40900,
        "d",
    );
    refused(
        s.call(
            Method::POST,
            "/services/app/documents",
            Some(json!({ "unique_name": "nope", "mode": "open_existing" })),
        )
        .await,
        404,
        40402,
        "nope",
    );
    let (status, random) = s.call(Method::POST, "/services/app/documents", Some(json!({}))).await;
    assert_eq!(status, 201);
    let sid = random["sid"].as_str().unwrap();
    assert!(sid.starts_with("ET") && sid.len() == 34 && random["unique_name"].is_null());
    // A chosen SID is honoured; the same SID opens the same object.
    let chosen = format!("ET{}", "ab".repeat(16));
    let (status, _) = s.call(Method::POST, "/services/app/documents", Some(json!({ "sid": chosen }))).await;
    assert_eq!(status, 201);
    let (status, _) = s.call(GET, &format!("/services/app/documents/{chosen}"), None).await;
    assert_eq!(status, 200);

    // Removing the service removes everything in it.
    let (status, _) = s.call(DELETE, "/services/app", None).await;
    assert_eq!(status, 204);
    assert_eq!(s.call(GET, "/services/app/documents/d", None).await.0, 404);
}

#[tokio::test]
async fn conditional_document_updates_and_etags() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "v": 0 } })).await;
    let url = s.url("/services/app/documents/d");
    let put = |if_match: &'static str, v: u64| {
        s.http
            .put(&url)
            .basic_auth(&s.sid, Some(&s.token))
            .header("If-Match", if_match)
            .json(&json!({ "data": { "v": v } }))
            .send()
    };
    let ok = put("0", 1).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "1");
    let stale = put("0", 2).await.unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(stale.json::<Value>().await.unwrap()["code"], 41200);
    let quoted = put("\"1\"", 3).await.unwrap();
    assert_eq!(quoted.status(), 200, "a quoted ETag is accepted");
    let bad = put("abc", 4).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], 40003);
    let current = s.http.get(&url).basic_auth(&s.sid, Some(&s.token)).send().await.unwrap();
    assert_eq!(current.headers()["etag"], "2");
    let body: Value = current.json().await.unwrap();
    assert_eq!(
        (body["revision"].as_u64(), &body["data"]),
        (Some(2), &json!({ "v": 3 })),
        "refused writes changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_conditional_updates_have_exactly_one_winner_per_revision() {
    let s = Arc::new(Server::default().await);
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/documents", json!({ "unique_name": "race" })).await;
    for revision in 0..3u64 {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.http
                    .put(s.url("/services/app/documents/race"))
                    .basic_auth(&s.sid, Some(&s.token))
                    .header("If-Match", revision.to_string())
                    .json(&json!({ "data": { "writer": i } }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 1, "round {revision}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|&&c| c == 412).count(), 31);
    }
    let (_, doc) = s.call(GET, "/services/app/documents/race", None).await;
    assert_eq!(doc["revision"], 3);
}

#[tokio::test]
async fn lists_append_page_and_never_reuse_indexes() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await;
    for n in 0..7 {
        let item = s.post("/services/app/lists/l/items", json!({ "data": { "n": n } })).await;
        assert_eq!(item["index"], n);
    }
    assert_eq!(s.call(DELETE, "/services/app/lists/l/items/6", None).await.0, 204);
    let item = s.post("/services/app/lists/l/items", json!({ "data": { "n": 7 } })).await;
    assert_eq!(item["index"], 7, "index 6 is not reused");

    // Pages of 3 in ascending order, following next_page_url.
    let mut url = s.url("/services/app/lists/l/items?page_size=3");
    let mut seen = Vec::new();
    loop {
        let page: Value =
            s.http.get(&url).basic_auth(&s.sid, Some(&s.token)).send().await.unwrap().json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()));
        assert_eq!(page["meta"]["page_size"], 3);
        match page["meta"]["next_page_url"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4, 5, 7]);
    let (_, desc) = s.call(GET, "/services/app/lists/l/items?order=desc&from=4&page_size=2", None).await;
    let idx: Vec<u64> = desc["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [4, 3]);
    let token = desc["meta"]["next_page_token"].as_str().unwrap();
    let (_, more) = s.call(GET, &format!("/services/app/lists/l/items?page_token={token}"), None).await;
    let idx: Vec<u64> = more["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [2, 1, 0], "the token keeps the order");

    // Item updates are conditional too.
    let (status, _) = s.call(Method::PUT, "/services/app/lists/l/items/0", Some(json!({ "data": { "n": 100 } }))).await;
    assert_eq!(status, 200);
    let r = s
        .http
        .put(s.url("/services/app/lists/l/items/0"))
        .basic_auth(&s.sid, Some(&s.token))
        .header("If-Match", "0")
        .json(&json!({ "data": { "n": 200 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let (_, item) = s.call(GET, "/services/app/lists/l/items/0", None).await;
    assert_eq!((item["revision"].as_u64(), &item["data"]), (Some(1), &json!({ "n": 100 })));
    refused(s.call(GET, "/services/app/lists/l/items/abc", None).await, 400, 40001, "index");
    refused(s.call(GET, "/services/app/lists/l/items/99", None).await, 404, 40403, "99");
}

#[tokio::test]
async fn maps_set_update_and_remove_items_by_key() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await;
    let created = s.post("/services/app/maps/m/items", json!({ "key": "alice", "data": { "age": 30 } })).await;
    assert_eq!((created["key"].as_str(), created["revision"].as_u64()), (Some("alice"), Some(0)));
    refused(
        s.call(Method::POST, "/services/app/maps/m/items", Some(json!({ "key": "alice", "data": {} }))).await,
        409,
        40901,
        "alice",
    );
    let (status, set) =
        s.call(Method::PUT, "/services/app/maps/m/items/bob", Some(json!({ "data": { "age": 40 } }))).await;
    assert_eq!((status, set["key"].as_str()), (201, Some("bob")), "PUT creates a missing key");
    let (status, set) =
        s.call(Method::PUT, "/services/app/maps/m/items/bob", Some(json!({ "data": { "age": 41 } }))).await;
    assert_eq!((status, set["revision"].as_u64()), (200, Some(1)));
    let long_key = "k".repeat(321);
    refused(
        s.call(Method::PUT, &format!("/services/app/maps/m/items/{long_key}"), Some(json!({ "data": {} }))).await,
        400,
        40001,
        "key",
    );
    let r = s
        .http
        .delete(s.url("/services/app/maps/m/items/bob"))
        .basic_auth(&s.sid, Some(&s.token))
        .header("If-Match", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412, "a stale If-Match keeps the item");
    assert_eq!(s.call(GET, "/services/app/maps/m/items/bob", None).await.0, 200);
    assert_eq!(s.call(DELETE, "/services/app/maps/m/items/bob", None).await.0, 204);
    assert_eq!(s.call(GET, "/services/app/maps/m/items/bob", None).await.0, 404);
    let (_, page) = s.call(GET, "/services/app/maps/m/items", None).await;
    let keys: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["alice"]);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_changes_nothing() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "keep": true } })).await;
    let raw = |body: &'static str| {
        s.http
            .put(s.url("/services/app/documents/d"))
            .basic_auth(&s.sid, Some(&s.token))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw("{\"data\": {").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40000);
    refused(
        s.call(Method::PUT, "/services/app/documents/d", Some(json!({ "data": {}, "colour": 1 }))).await,
        400,
        40001,
        "colour",
    );
    refused(
        s.call(Method::PUT, "/services/app/documents/d", Some(json!({ "data": [1, 2] }))).await,
        400,
        40001,
        "data",
    );
    let big = "x".repeat(17 * 1024);
    refused(
        s.call(Method::PUT, "/services/app/documents/d", Some(json!({ "data": { "big": big } }))).await,
        413,
        41300,
        "16384",
    );
    refused(
        s.call(Method::PUT, "/services/app/documents/d", Some(json!({ "ttl": 31_536_001 }))).await,
        400,
        40001,
        "ttl",
    );
    let sid_shaped = format!("ZZ{}", "0".repeat(32));
    refused(
        s.call(Method::POST, "/services/app/documents", Some(json!({ "unique_name": sid_shaped }))).await,
        400,
        40001,
        "unique_name",
    );
    refused(
        s.call(Method::POST, "/services/app/documents", Some(json!({ "unique_name": "n".repeat(321) }))).await,
        400,
        40001,
        "320",
    );
    let wrong_prefix = format!("MP{}", "a".repeat(32));
    refused(s.call(GET, &format!("/services/app/documents/{wrong_prefix}"), None).await, 400, 40002, &wrong_prefix);
    refused(s.call(GET, "/services/app/lists/l/items?page_size=0", None).await, 400, 40001, "page_size");
    refused(s.call(GET, "/services/app/documents?page_size=1001", None).await, 400, 40001, "page_size");
    refused(s.call(GET, "/services/app/documents?page_token=garbage", None).await, 400, 40006, "page token");
    refused(s.call(GET, "/services/app/documents?colour=red", None).await, 400, 40001, "colour");
    refused(s.call(GET, "/services/app/changes?since=nope", None).await, 400, 40004, "since-token");
    refused(s.call(GET, "/services/app/widgets", None).await, 404, 40400, "widgets");

    s.post("/services/app/streams", json!({ "unique_name": "s" })).await;
    let big_message = "m".repeat(5 * 1024);
    refused(
        s.call(Method::POST, "/services/app/streams/s/messages", Some(json!({ "data": { "m": big_message } }))).await,
        413,
        41300,
        "4096",
    );
    let (status, sent) =
        s.call(Method::POST, "/services/app/streams/s/messages", Some(json!({ "data": { "m": "hi" } }))).await;
    assert_eq!(status, 201);
    assert!(sent["sid"].as_str().unwrap().starts_with("TZ"));

    let (_, doc) = s.call(GET, "/services/app/documents/d", None).await;
    assert_eq!((doc["revision"].as_u64(), &doc["data"]), (Some(0), &json!({ "keep": true })), "nothing changed");
    let (_, docs) = s.call(GET, "/services/app/documents", None).await;
    assert_eq!(docs["items"].as_array().unwrap().len(), 1, "no object was created by a refused request");
    let (_, changes) = s.call(GET, "/services/app/changes?from_start=true", None).await;
    let kinds: Vec<&str> = changes["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["document_created", "stream_created", "stream_message_published"]);
}

#[tokio::test]
async fn credentials_keys_and_tokens() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services", json!({ "unique_name": "other" })).await;
    let no_auth = s.http.get(s.url("/services")).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    assert!(no_auth.headers().contains_key("www-authenticate"));
    let wrong = s.http.get(s.url("/services")).basic_auth(&s.sid, Some("wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["code"], 40101);

    let key = s.post("/keys", json!({ "friendly_name": "backend" })).await;
    let (key_sid, secret) = (key["sid"].as_str().unwrap().to_owned(), key["secret"].as_str().unwrap().to_owned());
    let as_key = s.http.get(s.url("/services")).basic_auth(&key_sid, Some(&secret)).send().await.unwrap();
    assert_eq!(as_key.status(), 200, "an API key authenticates");
    let (_, listed) = s.call(GET, "/keys", None).await;
    assert!(listed.as_array().unwrap().iter().all(|k| k.get("secret").is_none()), "secrets are shown once");

    let minted: Value = s
        .http
        .post(s.url("/tokens"))
        .basic_auth(&key_sid, Some(&secret))
        .json(&json!({ "service": "app", "identity": "alice", "ttl": 600, "api_key": key_sid }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    let bearer = |method: Method, path: &str| s.http.request(method, s.url(path)).bearer_auth(&token);
    let r =
        bearer(Method::POST, "/services/app/documents").json(&json!({ "unique_name": "mine" })).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["created_by"], "alice");
    assert_eq!(bearer(GET, "/services/other/documents").send().await.unwrap().status(), 403, "another service");
    assert_eq!(bearer(GET, "/keys").send().await.unwrap().status(), 403, "admin routes");
    assert_eq!(
        bearer(Method::POST, "/services").json(&json!({})).send().await.unwrap().status(),
        403,
        "identities cannot create services"
    );
    let garbage = s.http.get(s.url("/services/app/documents")).bearer_auth("not.a.jwt").send().await.unwrap();
    assert_eq!(garbage.status(), 401);
    assert_eq!(garbage.json::<Value>().await.unwrap()["code"], 40102);
    refused(
        s.call(Method::POST, "/tokens", Some(json!({ "service": "app", "identity": "a", "ttl": 86_401 }))).await,
        400,
        40001,
        "ttl",
    );

    // Deleting the key revokes it and every token it signed.
    assert_eq!(s.call(DELETE, &format!("/keys/{key_sid}"), None).await.0, 204);
    assert_eq!(s.http.get(s.url("/services")).basic_auth(&key_sid, Some(&secret)).send().await.unwrap().status(), 401);
    assert_eq!(bearer(GET, "/services/app/documents/mine").send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn acl_grants_read_write_and_manage() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await;
    s.post("/services/app/documents", json!({ "unique_name": "secret", "data": { "x": 1 } })).await;
    let token = s.token_for("app", "alice", 600).await;
    let as_alice = |method: Method, path: &str| s.http.request(method, s.url(path)).bearer_auth(&token);
    let read = as_alice(GET, "/services/app/documents/secret").send().await.unwrap();
    assert_eq!(read.status(), 403);
    assert_eq!(read.json::<Value>().await.unwrap()["code"], 40300);

    let grant = s.put("/services/app/documents/secret/permissions/alice", json!({ "read": true })).await;
    assert_eq!((grant["read"].as_bool(), grant["write"].as_bool()), (Some(true), Some(false)));
    assert_eq!(as_alice(GET, "/services/app/documents/secret").send().await.unwrap().status(), 200);
    let update = as_alice(Method::PUT, "/services/app/documents/secret").json(&json!({ "data": { "x": 2 } }));
    assert_eq!(update.send().await.unwrap().status(), 403, "read does not allow writing");
    assert_eq!(
        as_alice(GET, "/services/app/documents/secret/permissions/alice").send().await.unwrap().status(),
        200,
        "own grant"
    );
    assert_eq!(as_alice(GET, "/services/app/documents/secret/permissions").send().await.unwrap().status(), 403);

    s.put("/services/app/documents/secret/permissions/alice", json!({ "read": true, "write": true })).await;
    let update = as_alice(Method::PUT, "/services/app/documents/secret").json(&json!({ "data": { "x": 2 } }));
    assert_eq!(update.send().await.unwrap().status(), 200);
    assert_eq!(as_alice(DELETE, "/services/app/documents/secret").send().await.unwrap().status(), 403, "needs manage");

    // What an identity creates, it owns.
    let created =
        as_alice(Method::POST, "/services/app/maps").json(&json!({ "unique_name": "own" })).send().await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(as_alice(GET, "/services/app/maps/own").send().await.unwrap().status(), 200);
    let (_, perms) = s.call(GET, "/services/app/maps/own/permissions", None).await;
    assert_eq!(perms[0]["manage"], true);

    assert_eq!(s.call(DELETE, "/services/app/documents/secret/permissions/alice", None).await.0, 204);
    assert_eq!(as_alice(GET, "/services/app/documents/secret").send().await.unwrap().status(), 403, "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_objects_and_items_disappear_with_removed_events() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "short", "ttl": 1 })).await;
    assert!(doc["date_expires"].is_string());
    s.post("/services/app/maps", json!({ "unique_name": "m" })).await;
    s.post("/services/app/maps/m/items", json!({ "key": "k", "data": {}, "item_ttl": 1 })).await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await;
    s.post("/services/app/lists/l/items", json!({ "data": {}, "collection_ttl": 1 })).await;
    let gone = async {
        loop {
            let doc = s.call(GET, "/services/app/documents/short", None).await.0;
            let item = s.call(GET, "/services/app/maps/m/items/k", None).await.0;
            let list = s.call(GET, "/services/app/lists/l", None).await.0;
            if (doc, item, list) == (404, 404, 404) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone).await.expect("expired things go");
    let (_, changes) = s.call(GET, "/services/app/changes?from_start=true", None).await;
    let removed: Vec<(String, Value)> = changes["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "expired")
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["unique_name"].clone()))
        .collect();
    assert!(removed.contains(&("document_removed".into(), json!("short"))), "{removed:?}");
    assert!(removed.contains(&("map_item_removed".into(), json!("m"))), "{removed:?}");
    assert!(removed.contains(&("list_removed".into(), json!("l"))), "{removed:?}");
    // The map itself had no TTL and stays.
    assert_eq!(s.call(GET, "/services/app/maps/m", None).await.0, 200);
}

#[tokio::test]
async fn operations_endpoints_and_openapi() {
    let s = Server::default().await;
    let base = s.running.url();
    assert_eq!(s.http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    s.post("/services", json!({ "unique_name": "app" })).await;
    let metrics = s.http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ferrosync_http_requests_total{face=\"native\",route=\"/api/v1/services\""), "{metrics}");
    assert!(metrics.contains("ferrosync_store_commit_batch_size"));
    let r = s.http.patch(s.url("/services")).basic_auth(&s.sid, Some(&s.token)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40500);
    let r = s.http.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40400);
    let doc: Value = s.http.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/services/{service}/{collection}/{id}"]["put"].is_object());
}
