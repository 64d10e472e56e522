//! Expiry: what a sweep finds due, what it removes and the events it leaves.

use super::{open, service};
use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode, SyncObject};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{Actor, Mutation, Outcome, Store};
use ferrosync_core::timestamp::Timestamp;
use serde_json::json;
use std::sync::Arc;

/// A new document in `svc` that expires `ttl` seconds from now.
async fn expiring_document(store: &Arc<dyn Store>, svc: &Sid, ttl: u64) -> SyncObject {
    let m = Mutation::OpenObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: None,
        mode: OpenMode::OpenOrCreate,
        ttl: Some(ttl),
        data: Some(json!({ "a": 1 })),
    };
    match store.execute(Actor::SYSTEM, m).await.expect("created").outcome {
        Outcome::Object { object, .. } => object,
        other => panic!("unexpected {other:?}"),
    }
}

pub(super) async fn expiry_removes_and_emits(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let doc = expiring_document(&store, &svc, 1).await;
    let expires = doc.date_expires.expect("has an expiry");
    let early = store
        .execute(Actor::SYSTEM, Mutation::Expire { now: Timestamp(expires.0 - 1), limit: 100 })
        .await
        .expect("ran");
    assert!(matches!(early.outcome, Outcome::Expired { removed: 0 }));
    let due = store.execute(Actor::SYSTEM, Mutation::Expire { now: expires, limit: 100 }).await.expect("ran");
    assert!(matches!(due.outcome, Outcome::Expired { removed: 1 }));
    assert_eq!(due.events.len(), 1);
    assert_eq!(due.events[0].reason.as_deref(), Some("expired"));
    assert!(store.object(&svc, ObjectKind::Document, &ObjectRef::Sid(doc.sid)).await.expect("read").is_none());
}

/// What a sweep reads to learn whether anything is due: the earliest expiry among objects and
/// items, `None` when nothing carries one.
pub(super) async fn the_next_expiry_is_the_earliest_of_objects_and_items(store: Arc<dyn Store>) {
    let next = async |store: &Arc<dyn Store>| store.next_expiry().await.expect("reads");
    assert_eq!(next(&store).await, None, "an empty store");
    let svc = service(&store).await;
    let list = open(&store, &svc, ObjectKind::List, "kept").await;
    assert_eq!(next(&store).await, None, "nothing carries an expiry");
    let add = Mutation::AddListItem {
        service: svc.clone(),
        target: ObjectRef::Sid(list),
        data: json!({ "a": 1 }),
        ttl: Some(100),
        collection_ttl: None,
    };
    let item = match store.execute(Actor::SYSTEM, add).await.expect("added").outcome {
        Outcome::Item { item, .. } => item,
        other => panic!("unexpected {other:?}"),
    };
    let item_expires = item.date_expires.expect("the item expires");
    assert_eq!(next(&store).await, Some(item_expires), "an item's expiry");
    let doc = expiring_document(&store, &svc, 10).await;
    let doc_expires = doc.date_expires.expect("the document expires");
    assert!(doc_expires < item_expires);
    assert_eq!(next(&store).await, Some(doc_expires), "the earlier of the two");
    let swept = store.execute(Actor::SYSTEM, Mutation::Expire { now: doc_expires, limit: 100 }).await.expect("ran");
    assert!(matches!(swept.outcome, Outcome::Expired { removed: 1 }));
    assert_eq!(next(&store).await, Some(item_expires), "the document is gone, the item is next");
}
