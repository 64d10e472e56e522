//! Opening objects, reading and writing them, mutators with retry, paging.

use crate::support::TestServer;
use ferrosync_client::{ItemKey, ObjectId, OpenMode, OpenOptions, Order};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn open_modes_unique_names_sids_and_random_sids() {
    let server = TestServer::start().await;
    let client = server.client("alice").await;

    let opts = OpenOptions { mode: OpenMode::CreateNew, ttl: Some(600), data: Some(json!({"n": 1})) };
    let doc = client.open_document("settings", opts.clone()).await.unwrap();
    assert_eq!(doc.unique_name(), Some("settings"));
    assert!(doc.sid().starts_with("ET"), "{}", doc.sid());
    assert_eq!(doc.data(), json!({"n": 1}));
    assert!(doc.date_expires().is_some());

    // CreateNew again is refused; OpenExisting and OpenOrCreate find it, by name or SID.
    let again = client.open_document("settings", opts).await.err().unwrap();
    assert_eq!(again.status(), Some(409), "{again}");
    let existing = OpenOptions { mode: OpenMode::OpenExisting, ..Default::default() };
    assert_eq!(client.open_document("settings", existing.clone()).await.unwrap().sid(), doc.sid());
    assert_eq!(client.document(doc.sid()).await.unwrap().data(), json!({"n": 1}));
    let missing = client.open_map("nothing-here", existing).await.err().unwrap();
    assert!(missing.is_not_found(), "{missing}");

    // No id: a random SID each time.
    let a = client.list(ObjectId::New).await.unwrap();
    let b = client.list(ObjectId::New).await.unwrap();
    assert_ne!(a.sid(), b.sid());
    assert_eq!(a.unique_name(), None);
}

#[tokio::test]
async fn documents_set_update_mutate_ttl_and_remove() {
    let server = TestServer::start().await;
    let client = server.client("alice").await;
    let doc = client.document("profile").await.unwrap();
    assert_eq!(doc.set(json!({"name": "Alice", "age": 30})).await.unwrap(), json!({"name": "Alice", "age": 30}));
    let rev = doc.revision();
    assert_eq!(doc.update(json!({"age": 31})).await.unwrap(), json!({"name": "Alice", "age": 31}));
    assert!(doc.revision() > rev);

    // A stale revision is a conflict; set_if at the current one passes.
    let stale = doc.set_if(json!({"x": 1}), rev).await.unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    assert_eq!(stale.code(), Some(41200));
    let current = stale.current().expect("a conflict carries the document as it is now");
    assert_eq!(
        (&current["revision"], &current["data"]),
        (&json!(doc.revision()), &json!({"name": "Alice", "age": 31}))
    );
    doc.set_if(json!({"name": "Alice", "age": 32}), doc.revision()).await.unwrap();

    // Another writer changes it behind this handle's back: mutate reads again and re-applies.
    server.svc("PUT", &format!("/documents/{}", doc.sid()), json!({"data": {"name": "Alice", "age": 40}})).await;
    let mut calls = 0;
    let out = doc
        .mutate(|d| {
            calls += 1;
            Some(json!({"name": d["name"], "age": d["age"].as_i64().unwrap() + 1}))
        })
        .await
        .unwrap();
    assert_eq!(out, json!({"name": "Alice", "age": 41}));
    assert_eq!(calls, 2, "the first attempt used the stale data and conflicted");
    // A mutator that declines writes nothing.
    let before = doc.revision();
    assert_eq!(doc.mutate(|_| None).await.unwrap()["age"], 41);
    assert_eq!(doc.revision(), before);

    doc.set_ttl(120).await.unwrap();
    assert!(doc.date_expires().is_some());
    doc.remove().await.unwrap();
    assert!(doc.get().await.unwrap_err().is_not_found());
}

/// Mutators on several connections race on one document and one map item: every increment
/// lands, and none gives up (a conflict's answer carries the state the retry starts from).
#[tokio::test]
async fn concurrent_mutators_lose_no_increment() {
    const CLIENTS: usize = 6;
    const EACH: i64 = 15;
    let server = TestServer::start().await;
    let mut handles = Vec::new();
    for i in 0..CLIENTS {
        let client = server.client(&format!("writer-{i}")).await;
        let doc = client.document("counter").await.unwrap();
        let map = client.map("counters").await.unwrap();
        handles.push((client, doc, map));
    }
    let bump = |d: &serde_json::Value| Some(json!({"n": d["n"].as_i64().unwrap_or(0) + 1}));
    let runs = handles.iter().map(|(_, doc, map)| async move {
        for _ in 0..EACH {
            doc.mutate(bump).await.expect("a document mutator never gives up here");
            map.mutate("shared", bump).await.expect("an item mutator never gives up here");
        }
    });
    futures_util::future::join_all(runs).await;
    let (_, doc, map) = &handles[0];
    assert_eq!(doc.get().await.unwrap(), json!({"n": CLIENTS as i64 * EACH}));
    assert_eq!(map.get("shared").await.unwrap().data, json!({"n": CLIENTS as i64 * EACH}));
}

#[tokio::test]
async fn lists_and_maps_items_and_mutators() {
    let server = TestServer::start().await;
    let client = server.client("alice").await;
    let list = client.list("todo").await.unwrap();
    let first = list.push(json!({"t": "milk"})).await.unwrap();
    assert_eq!(first.key, ItemKey::Index(0));
    list.push(json!({"t": "eggs"})).await.unwrap();
    assert_eq!(list.set(1, json!({"t": "bread"})).await.unwrap().data, json!({"t": "bread"}));
    assert_eq!(list.update(0, json!({"done": true})).await.unwrap().data, json!({"t": "milk", "done": true}));
    assert!(list.set(9, json!({})).await.unwrap_err().is_not_found(), "list items must exist to be set");
    list.remove_item(0).await.unwrap();
    assert!(list.get(0).await.unwrap_err().is_not_found());

    let map = client.map("scores").await.unwrap();
    map.set("alice", json!({"score": 1})).await.unwrap();
    // mutate creates a missing item from `{}` and retries conflicts.
    let bob = map.mutate("bob", |d| Some(json!({"score": d["score"].as_i64().unwrap_or(0) + 5}))).await.unwrap();
    assert_eq!(bob.data, json!({"score": 5}));
    assert_eq!(map.update("alice", json!({"level": 2})).await.unwrap().data, json!({"score": 1, "level": 2}));
    let ttl = map.set_with_ttl("temp", json!({}), 60).await.unwrap();
    assert!(ttl.date_expires.is_some());
    // The TTL alone: renewed, then removed, the data left as it was.
    let renewed = map.set_item_ttl("alice", 3600).await.unwrap();
    assert!(renewed.date_expires.is_some());
    assert_eq!(renewed.data, json!({"score": 1, "level": 2}));
    assert!(map.set_item_ttl("alice", 0).await.unwrap().date_expires.is_none());
    let pushed = list.push_with_ttl(json!({"n": 9}), 60).await.unwrap();
    assert!(pushed.date_expires.is_some());
    let ItemKey::Index(i) = pushed.key else { panic!("a list item has an index") };
    assert!(list.set_item_ttl(i, 0).await.unwrap().date_expires.is_none());
    map.remove_item("temp").await.unwrap();
    // Conditional item writes: the current revision passes, a stale one is a conflict.
    let alice = map.get("alice").await.unwrap();
    let moved = map.set_if("alice", json!({"score": 2}), alice.revision).await.unwrap();
    let stale = map.set_if("alice", json!({"score": 3}), alice.revision).await.unwrap_err();
    assert!(stale.is_conflict());
    assert_eq!(stale.current().map(|c| (&c["data"], &c["revision"])), Some((&moved.data, &json!(moved.revision))));
    assert_eq!(map.get("alice").await.unwrap().data, moved.data);
    // Keys are sent escaped: anything a key may hold reaches the server intact.
    map.set("a/b c?d", json!({"odd": true})).await.unwrap();
    assert_eq!(map.get("a/b c?d").await.unwrap().key, ItemKey::Key("a/b c?d".into()));

    let bad = map.set("x", json!("not an object")).await.unwrap_err();
    assert_eq!(bad.status(), Some(400), "{bad}");
}

#[tokio::test]
async fn paging_eager_lazy_by_token_and_by_url() {
    let server = TestServer::start().await;
    let client = server.client("alice").await;
    let list = client.list("numbers").await.unwrap();
    for i in 0..23 {
        list.push(json!({"i": i})).await.unwrap();
    }
    let nums =
        |items: Vec<ferrosync_client::Item>| items.iter().map(|i| i.data["i"].as_i64().unwrap()).collect::<Vec<_>>();

    assert_eq!(nums(list.items().list(None, Some(5)).await.unwrap()), (0..23).collect::<Vec<_>>());
    assert_eq!(nums(list.items().list(Some(7), None).await.unwrap()), (0..7).collect::<Vec<_>>());
    assert_eq!(nums(list.items().order(Order::Desc).list(Some(3), None).await.unwrap()), vec![22, 21, 20]);
    assert_eq!(nums(list.items().from(20u64).list(None, None).await.unwrap()), vec![20, 21, 22]);

    let lazy: Vec<_> =
        list.items().stream(Some(12), Some(5)).map(|r| r.unwrap().data["i"].as_i64().unwrap()).collect().await;
    assert_eq!(lazy, (0..12).collect::<Vec<_>>());

    let page1 = list.items().page(None, Some(10)).await.unwrap();
    assert_eq!(page1.items.len(), 10);
    let page2 = list.items().page(page1.next_page_token.as_deref(), Some(10)).await.unwrap();
    assert_eq!(page2.items[0].data["i"], 10);
    let page3 = list.items().get_page(page2.next_page_url.as_deref().unwrap()).await.unwrap();
    assert_eq!(nums(page3.items), vec![20, 21, 22]);
    assert!(page3.next_page_token.is_none() && page3.next_page_url.is_none());

    let too_big = list.items().list(None, Some(1001)).await.unwrap_err();
    assert!(too_big.to_string().contains("page_size"), "{too_big}");
}
