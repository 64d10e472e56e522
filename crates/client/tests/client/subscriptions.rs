//! Typed events with `is_local` and the previous data.

use crate::support::{TestServer, next, quiet};
use ferrosync_client::{ItemKey, SyncEventKind};
use serde_json::json;

#[tokio::test]
async fn every_kind_of_event_with_local_and_previous_data() {
    let server = TestServer::start().await;
    let alice = server.client("alice").await;
    let bob = server.client("bob").await;

    let doc = alice.document("d").await.unwrap();
    let mut doc_events = doc.subscribe().await.unwrap();
    doc.set(json!({"v": 1})).await.unwrap();
    let e = next(&mut doc_events).await;
    assert!(e.is_local);
    assert_eq!(e.identity, "alice");
    assert_eq!(
        e.kind,
        SyncEventKind::Updated { data: json!({"v": 1}), previous: Some(json!({})), revision: doc.revision() }
    );
    // Bob's change is not local, and alice's cached data follows it.
    bob.document("d").await.unwrap().set(json!({"v": 2})).await.unwrap();
    let e = next(&mut doc_events).await;
    assert!(!e.is_local);
    assert!(
        matches!(&e.kind, SyncEventKind::Updated { data, previous: Some(p), .. } if *data == json!({"v": 2}) && *p == json!({"v": 1}))
    );
    assert_eq!(doc.data(), json!({"v": 2}));

    let map = alice.map("m").await.unwrap();
    let mut map_events = map.subscribe().await.unwrap();
    map.set("k", json!({"a": 1})).await.unwrap();
    bob.map("m").await.unwrap().set("k", json!({"a": 2})).await.unwrap();
    map.remove_item("k").await.unwrap();
    let added = next(&mut map_events).await;
    assert!(added.is_local);
    assert!(matches!(&added.kind, SyncEventKind::ItemAdded { item } if item.key == ItemKey::Key("k".into())));
    let updated = next(&mut map_events).await;
    assert!(!updated.is_local);
    assert!(
        matches!(&updated.kind, SyncEventKind::ItemUpdated { item, previous: Some(p) } if item.data == json!({"a": 2}) && *p == json!({"a": 1}))
    );
    let removed = next(&mut map_events).await;
    assert!(removed.is_local);
    assert!(
        matches!(&removed.kind, SyncEventKind::ItemRemoved { key, previous: Some(p), .. } if *key == ItemKey::Key("k".into()) && *p == json!({"a": 2}))
    );
    assert!(added.seq < updated.seq && updated.seq < removed.seq);

    let stream = alice.stream("s").await.unwrap();
    let mut stream_events = stream.subscribe().await.unwrap();
    let sid = stream.publish(json!({"hello": "world"})).await.unwrap();
    bob.stream("s").await.unwrap().publish(json!({"from": "bob"})).await.unwrap();
    let mine = next(&mut stream_events).await;
    assert!(mine.is_local);
    assert_eq!(mine.kind, SyncEventKind::MessagePublished { message_sid: sid, data: json!({"hello": "world"}) });
    assert!(!next(&mut stream_events).await.is_local);

    // Removal by someone else ends with Removed.
    let list = alice.list("l").await.unwrap();
    let mut list_events = list.subscribe().await.unwrap();
    bob.list("l").await.unwrap().remove().await.unwrap();
    let gone = next(&mut list_events).await;
    assert!(!gone.is_local);
    assert!(matches!(gone.kind, SyncEventKind::Removed { .. }));
}

#[tokio::test]
async fn two_subscribers_of_one_object_and_unsubscribing() {
    let server = TestServer::start().await;
    let alice = server.client("alice").await;
    let list = alice.list("l").await.unwrap();
    let mut one = list.subscribe().await.unwrap();
    let mut two = list.subscribe().await.unwrap();
    list.push(json!({"n": 1})).await.unwrap();
    assert_eq!(next(&mut one).await.seq, next(&mut two).await.seq);
    drop(one);
    list.push(json!({"n": 2})).await.unwrap();
    let e = next(&mut two).await;
    assert!(matches!(e.kind, SyncEventKind::ItemAdded { ref item } if item.data == json!({"n": 2})));
    drop(two);
    // Subscribing again afterwards starts from now: nothing old is replayed.
    let mut three = list.subscribe().await.unwrap();
    quiet(&mut three).await;
    list.push(json!({"n": 3})).await.unwrap();
    assert!(
        matches!(next(&mut three).await.kind, SyncEventKind::ItemAdded { ref item } if item.data == json!({"n": 3}))
    );
}

#[tokio::test]
async fn local_marks_survive_interleaved_writers() {
    // Many writes from two clients to one map: each client sees exactly its own as local.
    let server = TestServer::start().await;
    let alice = server.client("alice").await;
    let bob = server.client("bob").await;
    let am = alice.map("busy").await.unwrap();
    let bm = bob.map("busy").await.unwrap();
    let mut events = am.subscribe().await.unwrap();
    let writes = 40;
    tokio::join!(
        async {
            for i in 0..writes {
                am.set(&format!("a{i}"), json!({"i": i})).await.unwrap();
            }
        },
        async {
            for i in 0..writes {
                bm.set(&format!("b{i}"), json!({"i": i})).await.unwrap();
            }
        }
    );
    let mut local = 0;
    for _ in 0..writes * 2 {
        let e = next(&mut events).await;
        let SyncEventKind::ItemAdded { item } = &e.kind else { panic!("{e:?}") };
        let ItemKey::Key(k) = &item.key else { panic!() };
        assert_eq!(e.is_local, k.starts_with('a'), "{k}");
        local += usize::from(e.is_local);
    }
    assert_eq!(local, writes);
    quiet(&mut events).await;
}
