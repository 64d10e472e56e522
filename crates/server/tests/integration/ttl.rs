//! Expiry: objects, items and collections with a TTL disappear on their own, each leaving a
//! removal event with reason "expired" in the change log and on subscriptions.

use super::common::{TestServer, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// Waits (bounded) until `path` answers 404.
async fn gone(s: &TestServer, path: &str) {
    eventually(&format!("{path} expires"), Duration::from_secs(5), || async { s.get(path).await.status == 404 }).await;
}

fn expired_events<'a>(changes: &'a [Value], kind: &str) -> Vec<&'a Value> {
    changes.iter().filter(|e| e["type"] == kind && e["reason"] == "expired").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_with_a_ttl_expires_with_a_removed_event() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "short", "ttl": 1, "data": { "a": 1 } })).await;
    assert_eq!(doc.status, 201);
    assert!(doc.body["date_expires"].is_string(), "{}", doc.text);
    s.post("/services/app/documents", json!({ "unique_name": "long", "ttl": 3600 })).await.ok();
    s.post("/services/app/documents", json!({ "unique_name": "forever" })).await.ok();
    let token = s.mint_token("app", "watcher", 600).await;
    let mut ws = s.ws(&token).await;
    ws.subscribe("document", "short", None).await;

    gone(&s, "/services/app/documents/short").await;
    let removed = ws.next_event().await;
    assert_eq!((&removed["type"], &removed["reason"]), (&json!("document_removed"), &json!("expired")), "{removed}");

    let changes = s.all_changes("app").await;
    let expired = expired_events(&changes, "document_removed");
    assert_eq!(expired.len(), 1, "{changes:?}");
    assert_eq!((&expired[0]["object_sid"], &expired[0]["unique_name"]), (&doc.body["sid"], &json!("short")));
    assert_eq!(expired[0]["identity"], "system");
    // Others stay.
    assert_eq!(s.get("/services/app/documents/long").await.status, 200);
    assert_eq!(s.get("/services/app/documents/forever").await.status, 200);
    // The name is free again.
    let again = s.post("/services/app/documents", json!({ "unique_name": "short", "mode": "create_new" })).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["sid"], doc.body["sid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_item_with_a_ttl_expires_and_the_map_stays() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let map = s.post("/services/app/maps", json!({ "unique_name": "m" })).await.ok();
    let item = s.post("/services/app/maps/m/items", json!({ "key": "k", "data": { "v": 1 }, "ttl": 1 })).await;
    assert_eq!(item.status, 201);
    assert!(item.body["date_expires"].is_string());
    s.post("/services/app/maps/m/items", json!({ "key": "keep", "data": {} })).await.ok();

    gone(&s, "/services/app/maps/m/items/k").await;
    let changes = s.all_changes("app").await;
    let expired = expired_events(&changes, "map_item_removed");
    assert_eq!(expired.len(), 1, "{changes:?}");
    assert_eq!((&expired[0]["object_sid"], &expired[0]["item_key"]), (&map["sid"], &json!("k")));
    assert_eq!(s.get("/services/app/maps/m").await.status, 200, "the map itself had no TTL");
    let page = s.get("/services/app/maps/m/items").await.ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["key"], "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_given_a_collection_ttl_expires_with_its_items() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let list = s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    assert!(list["date_expires"].is_null());
    s.post("/services/app/lists/l/items", json!({ "data": { "n": 0 } })).await.ok();
    let item = s.post("/services/app/lists/l/items", json!({ "data": { "n": 1 }, "collection_ttl": 1 })).await;
    assert_eq!(item.status, 201, "{}", item.text);
    assert!(item.body["date_expires"].is_null(), "collection_ttl sets the list's expiry, not the item's");
    let with_expiry = s.get("/services/app/lists/l").await.ok();
    assert!(with_expiry["date_expires"].is_string(), "{with_expiry}");

    gone(&s, "/services/app/lists/l").await;
    s.get("/services/app/lists/l/items").await.refused(404, 40402, "l");
    let changes = s.all_changes("app").await;
    let expired = expired_events(&changes, "list_removed");
    assert_eq!(expired.len(), 1, "{changes:?}");
    assert_eq!(expired[0]["object_sid"], list["sid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_of_zero_clears_the_expiry() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "saved", "ttl": 2 })).await.ok();
    let cleared = s.put("/services/app/documents/saved", json!({ "ttl": 0 })).await.ok();
    assert!(cleared["date_expires"].is_null(), "{cleared}");
    // A document that does expire, created after, proves the sweeper ran past the first's expiry.
    s.post("/services/app/documents", json!({ "unique_name": "marker", "ttl": 3 })).await.ok();
    gone(&s, "/services/app/documents/marker").await;
    assert_eq!(s.get("/services/app/documents/saved").await.status, 200);
}
