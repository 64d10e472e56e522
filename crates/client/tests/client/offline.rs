//! The offline cache and datasets: reads served from the cache while the server is down,
//! writes kept and replayed when it is back, conflicts settled by the application's handler.

use crate::support::{TestServer, WAIT, next_event};
use ferrosync_client::{Client, ClientEvent, Conflict, ConnectionState, ItemKey, ReplayReport, Resolution};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A handler that records what it is asked and merges documents, keeps the server's map items.
fn recording_handler() -> (Arc<Mutex<Vec<Conflict>>>, impl Fn(&Conflict) -> Resolution + Send + Sync + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handler = move |c: &Conflict| {
        log.lock().unwrap().push(c.clone());
        match (&c.key, &c.local, &c.remote) {
            (None, Some(Value::Object(local)), Some(Value::Object(remote))) => {
                let mut merged = remote.clone();
                merged.extend(
                    local.iter().filter(|(k, _)| !remote.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())),
                );
                Resolution::Use(Value::Object(merged))
            }
            _ => Resolution::KeepRemote,
        }
    };
    (seen, handler)
}

async fn replayed(client: &Client) -> ReplayReport {
    let mut events = client.events();
    next_event(&mut events, |e| match e {
        ClientEvent::OfflineWritesReplayed(r) => Some(*r),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn offline_writes_are_replayed_and_a_conflict_goes_to_the_handler() {
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (seen, handler) = recording_handler();
    let client = Client::builder(&server.url(), &server.token("alice", 3600).await)
        .cache(dir.path().join("cache.sqlite"))
        .on_conflict(handler)
        .connect()
        .await
        .unwrap();
    let doc = client.document("settings").await.unwrap();
    doc.set(json!({"theme": "dark"})).await.unwrap();
    let prefs = client.map("prefs").await.unwrap();
    for key in ["x", "y"] {
        prefs.set(key, json!({"v": 1})).await.unwrap();
    }
    let (doc_sid, map_sid) = (doc.sid().to_owned(), prefs.sid().to_owned());

    server.stop().await;
    client.wait_for(ConnectionState::Connecting).await.unwrap();

    // Offline: writes land in the cache, reads come from it.
    doc.update(json!({"font": "large"})).await.unwrap();
    assert_eq!(doc.get().await.unwrap(), json!({"theme": "dark", "font": "large"}));
    prefs.set("x", json!({"v": 2})).await.unwrap();
    prefs.set("z", json!({"v": 3})).await.unwrap();
    prefs.remove_item("y").await.unwrap();
    assert_eq!(prefs.get("x").await.unwrap().data, json!({"v": 2}));
    assert!(prefs.get("y").await.unwrap_err().is_not_found());
    let listed: Vec<(ItemKey, Value)> =
        prefs.items().list(None, None).await.unwrap().into_iter().map(|i| (i.key, i.data)).collect();
    assert_eq!(listed, vec![("x".into(), json!({"v": 2})), ("z".into(), json!({"v": 3}))]);
    assert_eq!(client.pending_writes().unwrap(), 4);

    // Meanwhile someone else changes the document and item x.
    server
        .meanwhile(async |side| {
            side.svc("PUT", &format!("/documents/{doc_sid}"), json!({"data": {"theme": "light"}})).await;
            side.svc("PUT", &format!("/maps/{map_sid}/items/x"), json!({"data": {"v": 100}})).await;
        })
        .await;

    let report = tokio::spawn({
        let client = client.clone();
        async move { replayed(&client).await }
    });
    server.resume().await;
    let report = tokio::time::timeout(WAIT, report).await.unwrap().unwrap();
    assert_eq!(
        report,
        ReplayReport { sent: 3, conflicts: 2, rejected: 0 },
        "doc (merged), z and y sent; x kept remote"
    );
    assert_eq!(client.pending_writes().unwrap(), 0);

    let conflicts = seen.lock().unwrap().clone();
    assert_eq!(conflicts.len(), 2);
    let doc_conflict = conflicts.iter().find(|c| c.key.is_none()).unwrap();
    assert_eq!(doc_conflict.local, Some(json!({"theme": "dark", "font": "large"})));
    assert_eq!(doc_conflict.remote, Some(json!({"theme": "light"})));
    let item_conflict = conflicts.iter().find(|c| c.key.is_some()).unwrap();
    assert_eq!(
        (item_conflict.local.clone(), item_conflict.remote.clone()),
        (Some(json!({"v": 2})), Some(json!({"v": 100})))
    );

    // The server holds the merge, the remote x, the new z, and no y.
    let on_server = server.svc("GET", &format!("/documents/{doc_sid}"), Value::Null).await;
    assert_eq!(on_server["data"], json!({"theme": "light", "font": "large"}));
    let items = server.svc("GET", &format!("/maps/{map_sid}/items"), Value::Null).await;
    let items: Vec<(String, Value)> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key"].as_str().unwrap().to_owned(), i["data"].clone()))
        .collect();
    assert_eq!(items, vec![("x".to_owned(), json!({"v": 100})), ("z".to_owned(), json!({"v": 3}))]);
    assert_eq!(prefs.get("x").await.unwrap().data, json!({"v": 100}));
    assert_eq!(doc.get().await.unwrap(), json!({"theme": "light", "font": "large"}));
}

#[tokio::test]
async fn an_app_started_offline_reads_its_cache_and_sends_its_writes_later() {
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let token = server.token("bob", 3600).await;
    {
        let client = Client::builder(&server.url(), &token).cache(&cache).connect().await.unwrap();
        client.document("notes").await.unwrap().set(json!({"text": "first"})).await.unwrap();
        let todo = client.list("todo").await.unwrap();
        todo.push(json!({"v": "milk"})).await.unwrap();
        todo.push(json!({"v": "eggs"})).await.unwrap();
        // Read once, so the cache holds the items.
        assert_eq!(todo.items().list(None, None).await.unwrap().len(), 2);
        client.shutdown().await;
    }
    server.stop().await;

    // A new process, the server still down: everything opened before is readable.
    let client = Client::builder(&server.url(), &token).cache(&cache).connect_lazily().unwrap();
    let notes = client.document("notes").await.unwrap();
    assert_eq!(notes.data(), json!({"text": "first"}));
    let todo = client.list("todo").await.unwrap();
    let items: Vec<Value> = todo.items().list(None, None).await.unwrap().into_iter().map(|i| i.data).collect();
    assert_eq!(items, vec![json!({"v": "milk"}), json!({"v": "eggs"})]);
    // An object never opened here cannot be.
    assert!(client.document("elsewhere").await.unwrap_err().is_unreachable());
    // Writes wait: a document's data and a list item's.
    notes.set(json!({"text": "second"})).await.unwrap();
    todo.set(1, json!({"v": "bread"})).await.unwrap();
    assert_eq!(client.pending_writes().unwrap(), 2);
    // A push cannot wait (the server gives the index): it fails plainly.
    assert!(todo.push(json!({"v": "jam"})).await.unwrap_err().is_unreachable());

    let report = tokio::spawn({
        let client = client.clone();
        async move { replayed(&client).await }
    });
    server.resume().await;
    let report = tokio::time::timeout(WAIT, report).await.unwrap().unwrap();
    assert_eq!(report, ReplayReport { sent: 2, conflicts: 0, rejected: 0 });
    let sid = notes.sid().to_owned();
    assert_eq!(server.svc("GET", &format!("/documents/{sid}"), Value::Null).await["data"], json!({"text": "second"}));
    assert_eq!(todo.get(1).await.unwrap().data, json!({"v": "bread"}));
}

#[tokio::test]
async fn datasets_synchronize_between_devices_with_conflicts_settled() {
    let mut server = TestServer::start().await;
    let phone = server.client("carol").await;
    let laptop = server.client("carol").await;
    let on_phone = phone.dataset("profile").await.unwrap();
    let on_laptop = laptop.dataset("profile").await.unwrap();
    assert_eq!(on_phone.sid(), on_laptop.sid());

    // Local writes are immediate and wait for synchronize().
    on_phone.put("name", json!({"v": "Carol"})).unwrap();
    on_phone.put("city", json!({"v": "Lyon"})).unwrap();
    assert_eq!(on_phone.get("name").unwrap(), Some(json!({"v": "Carol"})));
    assert!(on_phone.records().unwrap().iter().all(|r| r.modified && r.sync_count == 0));
    let r = on_phone.synchronize().await.unwrap();
    assert_eq!((r.pushed, r.pulled, r.conflicts), (2, 0, 0));
    assert!(on_phone.records().unwrap().iter().all(|r| !r.modified));
    assert!(on_phone.last_sync_token().unwrap().is_some());

    let r = on_laptop.synchronize().await.unwrap();
    assert_eq!((r.pushed, r.pulled), (0, 2));
    assert_eq!(on_laptop.get("city").unwrap(), Some(json!({"v": "Lyon"})));

    // Both change the name; the phone synchronises first, the laptop's handler keeps its own.
    on_phone.put("name", json!({"v": "Caroline"})).unwrap();
    on_laptop.put("name", json!({"v": "Caro"})).unwrap();
    on_laptop.remove("city").unwrap();
    assert_eq!(on_phone.synchronize().await.unwrap().pushed, 1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let r = on_laptop
        .synchronize_with(move |c| {
            log.lock().unwrap().push((c.local.clone(), c.remote.clone()));
            Resolution::KeepLocal
        })
        .await
        .unwrap();
    assert_eq!((r.conflicts, r.pushed), (1, 2), "{r:?}");
    assert_eq!(*seen.lock().unwrap(), vec![(Some(json!({"v": "Caro"})), Some(json!({"v": "Caroline"})))]);

    // The phone pulls only what changed: the laptop's name and removal.
    let r = on_phone.synchronize().await.unwrap();
    assert_eq!((r.pulled, r.pushed, r.conflicts), (2, 0, 0), "{r:?}");
    assert_eq!(on_phone.get("name").unwrap(), Some(json!({"v": "Caro"})));
    assert_eq!(on_phone.get("city").unwrap(), None);

    // Offline, a dataset still takes writes; synchronize() fails until the server is back.
    server.stop().await;
    on_phone.put("mood", json!({"v": "fine"})).unwrap();
    assert!(on_phone.synchronize().await.unwrap_err().is_transport());
    assert!(on_phone.records().unwrap().iter().any(|r| r.key == "mood" && r.modified));
    server.resume().await;
    phone.wait_for(ConnectionState::Connected).await.unwrap();
    assert_eq!(on_phone.synchronize().await.unwrap().pushed, 1);
    on_laptop.synchronize().await.unwrap();
    assert_eq!(on_laptop.get("mood").unwrap(), Some(json!({"v": "fine"})));
}
