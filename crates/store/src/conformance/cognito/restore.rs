//! A pool exported and restored into another store: identities with their logins, dataset rows
//! with their sync counts and deletion points, devices with their subscriptions and the usage
//! count come back as they were, a second restore writes nothing, and clients carry on syncing
//! from the counts they hold.

use super::*;
use ferrosync_core::cognito::IdentityDump;
use ferrosync_core::model::Service;

/// Every Map of the pool's service, with its items, restored into `target`.
async fn restore_record_maps(source: &Engine, target: &Engine, svc: &Service) {
    let root = Principal::Root;
    let sid = svc.sid.to_string();
    let all = || PageRequest { order: Order::Asc, from: None, after: None, limit: 1000 };
    for object in source.objects(&root, &sid, ObjectKind::Map, all()).await.expect("maps").items {
        let items = source.items(&root, &sid, ObjectKind::Map, object.sid.as_str(), all()).await.expect("items");
        let map = object.sid.clone();
        target.restore_object(&root, object).await.expect("map restored");
        target.restore_items(&root, &svc.sid, &map, items.items).await.expect("records restored");
    }
}

pub(super) async fn restored_pools_keep_identities_sync_counts_and_devices(
    source: Arc<dyn Store>,
    target: Arc<dyn Store>,
) {
    let root = Principal::Root;
    let e = default_engine(source.clone());
    let pool = pool(&e).await;
    let push_sync = PushSync { application_arns: vec!["arn:aws:sns:us-east-1:1:app/GCM/a".into()], role_arn: None };
    e.set_identity_pool_configuration(&root, &pool.id, Some(push_sync), None).await.expect("set");
    let facebook = logins(&[("graph.facebook.com", "alice")]);
    let alice = e.get_id(&pool.id, &facebook).await.expect("alice");
    let me = identity_principal(&e, &alice, &facebook).await;
    push(&e, &me, &pool, &alice, "notes", vec![replace("a", "1", 0), replace("b", "2", 0)]).await.expect("synced");
    push(&e, &me, &pool, &alice, "notes", vec![replace("a", "3", 1), remove("b", 1)]).await.expect("synced");
    push(&e, &me, &pool, &alice, "gone", vec![replace("x", "y", 0)]).await.expect("synced");
    e.delete_dataset(&me, &pool.id, &alice, "gone").await.expect("deleted");
    let phone = e.register_device(&me, &pool.id, &alice, "GCM", "token-1").await.expect("device");
    e.register_device(&me, &pool.id, &alice, "APNS", "token-2").await.expect("an unsubscribed device");
    e.subscribe_to_dataset(&me, &pool.id, &alice, "notes", &phone).await.expect("subscribed");
    let bob = new_identity(&e, &pool).await;
    let bob_me = identity_principal(&e, &bob, &BTreeMap::new()).await;
    push(&e, &bob_me, &pool, &bob, "prefs", vec![replace("theme", "dark", 0)]).await.expect("synced");
    e.flush_usage().await.expect("usage written");

    let svc = e.service(&root, pool.service_sid.as_str()).await.expect("pool service");
    let pool_dump = e.pool_dump(&root, &svc).await.expect("reads").expect("a pool's service");
    assert_eq!(pool_dump.sync_sessions, 4, "one per ListRecords");
    let first = e.identity_dumps(&root, &pool.id, None, 1).await.expect("page 1");
    let rest = e.identity_dumps(&root, &pool.id, Some(&first[0].identity_id), 10).await.expect("page 2");
    let dumps: Vec<IdentityDump> = first.into_iter().chain(rest).collect();
    let ids: Vec<&str> = dumps.iter().map(|d| d.identity_id.as_str()).collect();
    let mut expected = vec![alice.as_str(), bob.as_str()];
    expected.sort();
    assert_eq!(ids, expected, "every identity once, in order, across pages");
    let alice_dump = dumps.iter().find(|d| d.identity_id == alice).expect("alice");
    let names: Vec<(&str, u64, bool)> =
        alice_dump.datasets.iter().map(|d| (d.name.as_str(), d.sync_count, d.exists())).collect();
    assert_eq!(names, [("gone", 1, false), ("notes", 2, true)], "deleted datasets kept with their counts");
    assert_eq!(alice_dump.devices.len(), 2);
    assert_eq!(alice_dump.devices.iter().find(|d| d.device.id == phone).expect("phone").subscriptions, ["notes"]);
    assert_eq!(alice_dump.identity.as_ref().expect("issued").logins.len(), 1);

    // Records need their Maps first.
    let t = default_engine(target.clone());
    assert!(t.restore_service(&root, &svc).await.expect("service restored"));
    assert!(t.restore_identity_pool(&root, pool_dump.clone()).await.expect("pool restored"));
    let early = t.restore_identities(&root, &svc.sid, &pool.id, dumps.clone()).await;
    assert!(matches!(early, Err(CoreError::InvalidField { .. })), "{early:?}");
    restore_record_maps(&e, &t, &svc).await;
    assert_eq!(t.restore_identities(&root, &svc.sid, &pool.id, dumps.clone()).await.expect("restored"), 2);

    // Run again: nothing new.
    assert!(!t.restore_identity_pool(&root, pool_dump.clone()).await.expect("again"));
    assert_eq!(t.restore_identities(&root, &svc.sid, &pool.id, dumps.clone()).await.expect("again"), 0);
    assert_eq!(t.pool_dump(&root, &svc).await.expect("reads"), Some(pool_dump));
    assert_eq!(t.identity_dumps(&root, &pool.id, None, 10).await.expect("reads"), dumps);

    // Something else under the same id is refused, not merged.
    let mut other = dumps.clone();
    for d in &mut other {
        if let Some(i) = &mut d.identity {
            i.date_created = ferrosync_core::Timestamp(i.date_created.0 - 1);
        }
    }
    let clash = t.restore_identities(&root, &svc.sid, &pool.id, other).await;
    assert!(matches!(clash, Err(CoreError::AlreadyExists { .. })), "{clash:?}");
    let as_identity = t.restore_identities(&bob_me, &svc.sid, &pool.id, dumps.clone()).await;
    assert!(as_identity.is_err(), "server credentials only");

    // Alice's phone carries on against the restored store from the counts it holds.
    let me_there = identity_principal(&t, &alice, &facebook).await;
    let before = e.list_records(&me, &pool.id, &alice, "notes", since(0)).await.expect("listed");
    let after = t.list_records(&me_there, &pool.id, &alice, "notes", since(0)).await.expect("listed");
    assert_eq!(keys_and_counts(&after.records), keys_and_counts(&before.records));
    assert_eq!(after.dataset_sync_count, 2);
    let next = push(&t, &me_there, &pool, &alice, "notes", vec![replace("a", "4", 2)]).await.expect("carries on");
    assert_eq!(next.dataset_sync_count, 3);
    let stale = push(&t, &me_there, &pool, &alice, "notes", vec![replace("a", "5", 2)]).await;
    assert!(stale.is_err(), "a count from before the restore still conflicts: {stale:?}");
    let subscribers = t.push_targets(&alice, "notes", "another-device").await.expect("targets");
    assert_eq!(subscribers.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [phone.as_str()]);
}
