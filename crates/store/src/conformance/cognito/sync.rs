//! Datasets and records: sync counts, conflicts, tombstones, session tokens, limits, push
//! devices, streams configuration, bulk publish, usage, and the change log.

use super::*;

pub(super) async fn sync_counts_go_up_by_one_per_update(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    let missing =
        e.list_records(&root, &pool.id, &id, "settings", ListRecordsRequest::default()).await.expect("listed");
    assert!(!missing.dataset_exists && !missing.dataset_deleted_after_requested_sync_count);
    assert_eq!((missing.dataset_sync_count, missing.count, missing.records.len()), (0, 0, 0));
    assert!(!missing.sync_session_token.is_empty());

    // (a) one call, one count; (b) every record it writes takes the new count.
    let first = push(&e, &root, &pool, &id, "settings", vec![replace("a", "1", 0), replace("b", "2", 0)]).await;
    let first = first.expect("written");
    assert_eq!(first.dataset_sync_count, 1);
    assert_eq!(
        keys_and_counts(&first.records),
        vec![("a".into(), Some("1".into()), 1), ("b".into(), Some("2".into()), 1)]
    );
    assert_eq!(first.records[0].device_last_modified, Some(ferrosync_core::Timestamp(1_700_000_000_000)));
    let second = push(&e, &root, &pool, &id, "settings", vec![replace("a", "3", 1)]).await.expect("written");
    assert_eq!((second.dataset_sync_count, second.records[0].sync_count), (2, 2));
    // A count above the server's is accepted (the docs leave it open; refusing gains nothing).
    let third = push(&e, &root, &pool, &id, "settings", vec![replace("b", "4", 9)]).await.expect("written");
    assert_eq!(third.dataset_sync_count, 3);

    let all = e.list_records(&root, &pool.id, &id, "settings", since(0)).await.expect("listed");
    assert!(all.dataset_exists);
    assert_eq!(all.dataset_sync_count, 3);
    assert_eq!(
        keys_and_counts(&all.records),
        vec![("a".into(), Some("3".into()), 2), ("b".into(), Some("4".into()), 3)]
    );
    assert_eq!(all.last_modified_by.as_deref(), Some(id.as_str()));
    let after_1 = e.list_records(&root, &pool.id, &id, "settings", since(1)).await.expect("listed");
    assert_eq!(keys_and_counts(&after_1.records).len(), 2);
    let after_2 = e.list_records(&root, &pool.id, &id, "settings", since(2)).await.expect("listed");
    assert_eq!(keys_and_counts(&after_2.records), vec![("b".into(), Some("4".into()), 3)]);
    let after_3 = e.list_records(&root, &pool.id, &id, "settings", since(3)).await.expect("listed");
    assert!(after_3.records.is_empty());
    assert_eq!(after_3.dataset_sync_count, 3);

    // Nothing to write changes nothing.
    let idle = push(&e, &root, &pool, &id, "settings", Vec::new()).await.expect("no-op");
    assert_eq!((idle.dataset_sync_count, idle.records.len()), (3, 0));

    let described = e.dataset(&root, &pool.id, &id, "settings").await.expect("described");
    assert_eq!((described.num_records, described.data_storage), (2, 4));
    let device = UpdateRecordsRequest {
        sync_session_token: all.sync_session_token,
        device_id: Some("device-1".into()),
        patches: vec![replace("c", "5", 0)],
    };
    let by_device = e.update_records(&root, &pool.id, &id, "settings", device).await.expect("written");
    assert_eq!(by_device.records[0].last_modified_by, "device-1");
}

pub(super) async fn a_whole_dataset_fits_one_page(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    let patches: Vec<RecordPatch> = (0..1024).map(|n| replace(&format!("key{n:04}"), "v", 0)).collect();
    push(&e, &root, &pool, &id, "big", patches).await.expect("1024 records");
    // (e) no MaxResults: the whole dataset in one page, as the iOS SDK expects.
    let whole = e.list_records(&root, &pool.id, &id, "big", ListRecordsRequest::default()).await.expect("listed");
    assert_eq!((whole.records.len(), whole.count, whole.next_token.is_none()), (1024, 1024, true));
    // Paged, the pages cover it once, in key order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let req = ListRecordsRequest { last_sync_count: Some(0), max_results: Some(300), next_token: token.clone() };
        let page = e.list_records(&root, &pool.id, &id, "big", req).await.expect("page");
        assert!(page.records.len() <= 300);
        seen.extend(page.records.into_iter().map(|r| r.key));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let expected: Vec<String> = (0..1024).map(|n| format!("key{n:04}")).collect();
    assert_eq!(seen, expected);
}

pub(super) async fn a_stale_sync_count_refuses_the_whole_batch(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    push(&e, &root, &pool, &id, "d", vec![replace("highScore", "1", 0)]).await.expect("count 1");
    push(&e, &root, &pool, &id, "d", vec![replace("highScore", "2", 1)]).await.expect("count 2");
    let events_before = store.events(&pool.service_sid, 0, None, 10_000).await.expect("events").len();
    // (d) patch count < server count: 409 for the whole request; (g) nothing of it is applied.
    let stale = push(&e, &root, &pool, &id, "d", vec![replace("fresh", "x", 0), replace("highScore", "3", 1)]).await;
    match stale {
        Err(CoreError::ResourceConflict(message)) => {
            assert_eq!(message, "Current SyncCount for: highScore is: 2 not: 1")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = e.list_records(&root, &pool.id, &id, "d", since(0)).await.expect("listed");
    assert_eq!(after.dataset_sync_count, 2, "the count did not move");
    assert_eq!(
        keys_and_counts(&after.records),
        vec![("highScore".into(), Some("2".into()), 2)],
        "fresh was not written"
    );
    assert_eq!(store.events(&pool.service_sid, 0, None, 10_000).await.expect("events").len(), events_before);
    // The first write of a key some other device created: 0 is stale too.
    let unseen = push(&e, &root, &pool, &id, "d", vec![replace("highScore", "9", 0)]).await;
    assert!(
        matches!(unseen, Err(CoreError::ResourceConflict(m)) if m == "Current SyncCount for: highScore is: 2 not: 0")
    );
    // An equal count succeeds.
    push(&e, &root, &pool, &id, "d", vec![replace("highScore", "3", 2)]).await.expect("equal count");
}

pub(super) async fn concurrent_updates_of_one_record_have_one_winner(store: Arc<dyn Store>) {
    let e = Arc::new(default_engine(store));
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let listed = e.list_records(&Principal::Root, &pool.id, &id, "race", since(0)).await.expect("listed");
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (e, pool_id, id, token) = (e.clone(), pool.id.clone(), id.clone(), listed.sync_session_token.clone());
        tasks.push(tokio::spawn(async move {
            let req = UpdateRecordsRequest {
                sync_session_token: token,
                device_id: Some(format!("device-{n}")),
                patches: vec![replace("slot", &n.to_string(), 0), replace(&format!("mine-{n}"), "x", 0)],
            };
            e.update_records(&Principal::Root, &pool_id, &id, "race", req).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => winners += 1,
            Err(CoreError::ResourceConflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1, "one of the writers of a new key wins, the others conflict");
    let after = e.list_records(&Principal::Root, &pool.id, &id, "race", since(0)).await.expect("listed");
    assert_eq!(after.dataset_sync_count, 1);
    assert_eq!(after.records.len(), 2, "only the winner's records, both of them");
}

pub(super) async fn removes_leave_tombstones(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    push(&e, &root, &pool, &id, "d", vec![replace("a", "1", 0), replace("b", "22", 0)]).await.expect("count 1");
    let removed = push(&e, &root, &pool, &id, "d", vec![remove("a", 1)]).await.expect("count 2");
    assert_eq!(keys_and_counts(&removed.records), vec![("a".into(), None, 2)]);
    // (c) an incremental pull carries the delete: a record without a value, at its count.
    let changes = e.list_records(&root, &pool.id, &id, "d", since(1)).await.expect("listed");
    assert_eq!(keys_and_counts(&changes.records), vec![("a".into(), None, 2)]);
    let described = e.dataset(&root, &pool.id, &id, "d").await.expect("described");
    assert_eq!((described.num_records, described.data_storage), (1, 3), "tombstones hold no space");
    // A client that never saw the key conflicts with its tombstone, then resolves it.
    let stale = push(&e, &root, &pool, &id, "d", vec![replace("a", "back", 0)]).await;
    assert!(matches!(stale, Err(CoreError::ResourceConflict(_))));
    let back = push(&e, &root, &pool, &id, "d", vec![replace("a", "back", 2)]).await.expect("count 3");
    assert_eq!(keys_and_counts(&back.records), vec![("a".into(), Some("back".into()), 3)]);
    // Removing a key that never existed leaves a tombstone too.
    let gone = push(&e, &root, &pool, &id, "d", vec![remove("never", 0)]).await.expect("count 4");
    assert_eq!(keys_and_counts(&gone.records), vec![("never".into(), None, 4)]);
}

pub(super) async fn session_tokens_are_bound_to_their_dataset(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let (a, b) = (new_identity(&e, &pool).await, new_identity(&e, &pool).await);
    let root = Principal::Root;
    let token = e.list_records(&root, &pool.id, &a, "one", since(0)).await.expect("listed").sync_session_token;
    let attempt = |identity: String, dataset: &'static str, token: String| {
        let e = &e;
        let pool_id = pool.id.clone();
        async move {
            let req = UpdateRecordsRequest {
                sync_session_token: token,
                device_id: None,
                patches: vec![replace("k", "v", 0)],
            };
            e.update_records(&Principal::Root, &pool_id, &identity, dataset, req).await
        }
    };
    let not_valid = |r: Result<UpdatedRecords, CoreError>| matches!(r, Err(CoreError::InvalidParameter(m)) if m == "SyncSessionToken not valid for these inputs");
    assert!(not_valid(attempt(a.clone(), "two", token.clone()).await), "another dataset");
    assert!(not_valid(attempt(b.clone(), "one", token.clone()).await), "another identity");
    assert!(not_valid(attempt(a.clone(), "one", "garbage".into()).await));
    let other_deployment = engine(store.clone(), Limits::default());
    let foreign = other_deployment.list_records(&root, &pool.id, &a, "one", since(0)).await.expect("listed");
    assert!(not_valid(attempt(a.clone(), "one", foreign.sync_session_token).await), "another master key");
    attempt(a.clone(), "one", token.clone()).await.expect("the right dataset");
    let again = attempt(a.clone(), "one", token).await;
    assert!(matches!(again, Err(CoreError::ResourceConflict(_))), "the token is still good: only the count is stale");

    let mut short = Limits::default();
    short.cognito.sync_session_ttl_secs = 0;
    let strict = engine(store, short);
    let strict_pool = pool_for(&strict).await;
    let id = new_identity(&strict, &strict_pool).await;
    let token =
        strict.list_records(&root, &strict_pool.id, &id, "d", since(0)).await.expect("listed").sync_session_token;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let req = UpdateRecordsRequest { sync_session_token: token, device_id: None, patches: vec![replace("k", "v", 0)] };
    let expired = strict.update_records(&root, &strict_pool.id, &id, "d", req).await;
    assert!(matches!(expired, Err(CoreError::InvalidParameter(m)) if m.contains("expired")));
}

pub(super) async fn pool_for(e: &Engine) -> IdentityPool {
    e.create_identity_pool(&Principal::Root, spec("p")).await.expect("pool")
}

pub(super) async fn limits_refuse_without_writing(store: Arc<dyn Store>) {
    let mut limits = Limits::default();
    limits.cognito.max_datasets_per_identity = 2;
    limits.cognito.max_records_per_dataset = 3;
    limits.cognito.max_dataset_bytes = 20;
    let e = engine(store, limits);
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    push(&e, &root, &pool, &id, "one", vec![replace("k", "v", 0)]).await.expect("first dataset");
    push(&e, &root, &pool, &id, "two", vec![replace("k", "v", 0)]).await.expect("second dataset");
    let third = push(&e, &root, &pool, &id, "three", vec![replace("k", "v", 0)]).await;
    assert!(matches!(third, Err(CoreError::LimitExceeded(_))), "{third:?}");
    let listed = e.list_records(&root, &pool.id, &id, "three", since(0)).await.expect("listed");
    assert!(!listed.dataset_exists, "the refused dataset was not created");

    let four: Vec<RecordPatch> = ["a", "b", "c"].iter().map(|k| replace(k, "1", 0)).collect();
    let too_many = push(&e, &root, &pool, &id, "one", four).await;
    assert!(matches!(too_many, Err(CoreError::LimitExceeded(_))), "k + a, b, c is four records");
    let too_big = push(&e, &root, &pool, &id, "one", vec![replace("big", &"x".repeat(17), 0)]).await;
    assert!(matches!(too_big, Err(CoreError::LimitExceeded(_))), "2 + 3 + 17 bytes is over 20");
    let listed = e.list_records(&root, &pool.id, &id, "one", since(0)).await.expect("listed");
    assert_eq!((listed.dataset_sync_count, listed.records.len()), (1, 1), "nothing was written");
    // Removing a record makes room; a tombstone does not count.
    push(&e, &root, &pool, &id, "one", vec![remove("k", 1), replace("big", &"x".repeat(17), 0)]).await.expect("fits");
    // UTF-8 bytes, not characters, are counted.
    let wide = push(&e, &root, &pool, &id, "two", vec![replace("k", "é", 1), replace("w", &"é".repeat(9), 0)]).await;
    assert!(matches!(wide, Err(CoreError::LimitExceeded(_))), "1 + 2 + 1 + 18 bytes is over 20 (12 characters)");
    // Deleting a dataset frees its place.
    e.delete_dataset(&root, &pool.id, &id, "two").await.expect("deleted");
    push(&e, &root, &pool, &id, "three", vec![replace("k", "v", 0)]).await.expect("now it fits");
}

pub(super) async fn deleted_datasets_report_their_deletion(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    for n in 0..3 {
        push(&e, &root, &pool, &id, "d", vec![replace("k", &n.to_string(), n)]).await.expect("written");
    }
    let deleted = e.delete_dataset(&root, &pool.id, &id, "d").await.expect("deleted");
    assert_eq!((deleted.name.as_str(), deleted.sync_count, deleted.num_records), ("d", 3, 1), "returned as it was");
    assert!(matches!(
        e.dataset(&root, &pool.id, &id, "d").await,
        Err(CoreError::NotFound { what: NotFoundKind::Dataset, .. })
    ));
    assert!(matches!(e.delete_dataset(&root, &pool.id, &id, "d").await, Err(CoreError::NotFound { .. })));
    let map =
        store.object(&pool.service_sid, ObjectKind::Map, &ObjectRef::UniqueName(dataset_map_name(&id, "d"))).await;
    assert!(map.expect("reads").is_none(), "the Map went with it");

    // (f) a client that synced it learns it was deleted; a new client sees no dataset.
    let synced = e.list_records(&root, &pool.id, &id, "d", since(2)).await.expect("listed");
    assert!(!synced.dataset_exists && synced.dataset_deleted_after_requested_sync_count);
    assert_eq!((synced.dataset_sync_count, synced.records.len()), (0, 0));
    let fresh = e.list_records(&root, &pool.id, &id, "d", since(0)).await.expect("listed");
    assert!(!fresh.dataset_exists && !fresh.dataset_deleted_after_requested_sync_count);

    // Recreated by a write, it continues the count: old clients still learn of the deletion,
    // clients of the new dataset do not.
    let recreated = push(&e, &root, &pool, &id, "d", vec![replace("new", "1", 0)]).await.expect("recreated");
    assert_eq!(recreated.dataset_sync_count, 4);
    let old_client = e.list_records(&root, &pool.id, &id, "d", since(3)).await.expect("listed");
    assert!(old_client.dataset_exists && old_client.dataset_deleted_after_requested_sync_count);
    let new_client = e.list_records(&root, &pool.id, &id, "d", since(4)).await.expect("listed");
    assert!(new_client.dataset_exists && !new_client.dataset_deleted_after_requested_sync_count);
    let all = e.list_records(&root, &pool.id, &id, "d", since(0)).await.expect("listed");
    assert_eq!(keys_and_counts(&all.records), vec![("new".into(), Some("1".into()), 4)], "the old records are gone");
}

// ----- authorisation ---------------------------------------------------------------------------

pub(super) async fn identities_reach_only_their_own_data(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let (a, b) = (new_identity(&e, &pool).await, new_identity(&e, &pool).await);
    let as_a = identity_principal(&e, &a, &BTreeMap::new()).await;
    let as_b = identity_principal(&e, &b, &BTreeMap::new()).await;
    push(&e, &as_b, &pool, &b, "private", vec![replace("secret", "b's", 0)]).await.expect("b writes its own");
    push(&e, &as_a, &pool, &a, "mine", vec![replace("k", "a's", 0)]).await.expect("a writes its own");

    let forbidden = |r: Result<(), CoreError>| matches!(r, Err(CoreError::NotAuthorized(_)));
    let read = e.list_records(&as_a, &pool.id, &b, "private", since(0)).await.map(drop);
    assert!(forbidden(read), "a cannot read b's dataset");
    assert!(forbidden(e.datasets(&as_a, &pool.id, &b, None, None).await.map(drop)));
    assert!(forbidden(e.dataset(&as_a, &pool.id, &b, "private").await.map(drop)));
    assert!(forbidden(e.delete_dataset(&as_a, &pool.id, &b, "private").await.map(drop)));
    assert!(forbidden(e.identity_usage(&as_a, &pool.id, &b).await.map(drop)));
    let other_pool = pool_for(&e).await;
    assert!(
        forbidden(e.list_records(&as_a, &other_pool.id, &a, "mine", since(0)).await.map(drop)),
        "its own pool only"
    );
    // Even developers cannot give one identity datasets in two pools.
    let elsewhere = push(&e, &Principal::Root, &other_pool, &a, "mine", vec![replace("k", "v", 0)]).await;
    assert!(matches!(elsewhere, Err(CoreError::NotFound { .. })), "{elsewhere:?}");
    let unissued = "us-east-1:0000aaaa-0000-0000-0000-000000000000";
    push(&e, &Principal::Root, &pool, unissued, "d", vec![replace("k", "v", 0)]).await.expect("an id never issued");
    let moved = push(&e, &Principal::Root, &other_pool, unissued, "d", vec![replace("k", "v", 0)]).await;
    assert!(matches!(moved, Err(CoreError::NotFound { .. })), "{moved:?}");
    let listed = e.list_records(&Principal::Root, &other_pool.id, unissued, "d", since(0)).await.expect("listed");
    assert!(!listed.dataset_exists, "the other pool's dataset is not seen from here");
    // Developer-only operations refuse identity credentials.
    assert!(forbidden(e.identity_pool(&as_a, &pool.id).await.map(drop)));
    assert!(forbidden(e.identity_pool_usage(&as_a, &pool.id).await.map(drop)));
    assert!(forbidden(e.cognito_identities(&as_a, &pool.id, 10, None, false).await.map(drop)));
    assert!(forbidden(e.bulk_publish(&as_a, &pool.id).await.map(drop)));
    assert!(forbidden(e.cognito_identity(&as_a, &a).await.map(drop)));
    // Identity-only operations refuse developer credentials.
    assert!(forbidden(e.register_device(&Principal::Root, &pool.id, &a, "GCM", "t").await.map(drop)));
    // The pool's service (where every identity's Map lives) is out of reach of the native API.
    let native = e.object(&as_a, pool.service_sid.as_str(), ObjectKind::Map, &dataset_map_name(&b, "private")).await;
    assert!(matches!(native, Err(CoreError::Forbidden(_))), "{native:?}");
    let own = e.object(&as_a, pool.service_sid.as_str(), ObjectKind::Map, &dataset_map_name(&a, "mine")).await;
    assert!(matches!(own, Err(CoreError::Forbidden(_))), "Cognito credentials reach only the Cognito operations");
    // Developers reach everyone.
    let b_records = e.list_records(&Principal::Root, &pool.id, &b, "private", since(0)).await.expect("developer");
    assert_eq!(b_records.records[0].value.as_deref(), Some("b's"));
}

// ----- push, configuration, usage --------------------------------------------------------------

pub(super) async fn push_devices_and_subscriptions(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let me = identity_principal(&e, &id, &BTreeMap::new()).await;
    let unconfigured = e.register_device(&me, &pool.id, &id, "GCM", "token-1").await;
    assert!(matches!(unconfigured, Err(CoreError::InvalidConfiguration(_))), "{unconfigured:?}");
    let push_sync = PushSync {
        application_arns: vec!["arn:aws:sns:us-east-1:123456789012:app/GCM/app".into()],
        role_arn: Some("arn:aws:iam::123456789012:role/push".into()),
    };
    e.set_identity_pool_configuration(&Principal::Root, &pool.id, Some(push_sync.clone()), None).await.expect("set");
    assert!(matches!(
        e.register_device(&me, &pool.id, &id, "WINDOWS_PHONE", "t").await,
        Err(CoreError::InvalidField { .. })
    ));
    let phone = e.register_device(&me, &pool.id, &id, "GCM", "token-1").await.expect("registered");
    assert_eq!(e.register_device(&me, &pool.id, &id, "GCM", "token-1").await.expect("again"), phone, "idempotent");
    let tablet = e.register_device(&me, &pool.id, &id, "APNS_SANDBOX", "token-2").await.expect("registered");
    assert_ne!(phone, tablet);

    let missing = e.subscribe_to_dataset(&me, &pool.id, &id, "notes", &phone).await;
    assert!(matches!(missing, Err(CoreError::NotFound { what: NotFoundKind::Dataset, .. })), "sync it first");
    push(&e, &me, &pool, &id, "notes", vec![replace("n", "1", 0)]).await.expect("synced");
    for device in [&phone, &tablet] {
        e.subscribe_to_dataset(&me, &pool.id, &id, "notes", device).await.expect("subscribed");
    }
    e.subscribe_to_dataset(&me, &pool.id, &id, "notes", &phone).await.expect("subscribing twice is harmless");
    let unknown = e.subscribe_to_dataset(&me, &pool.id, &id, "notes", "no-such-device").await;
    assert!(matches!(unknown, Err(CoreError::NotFound { what: NotFoundKind::Device, .. })));

    let listed = e.list_records(&me, &pool.id, &id, "notes", since(0)).await.expect("listed");
    let from_phone = UpdateRecordsRequest {
        sync_session_token: listed.sync_session_token.clone(),
        device_id: Some(phone.clone()),
        patches: vec![replace("n", "2", 1)],
    };
    e.update_records(&me, &pool.id, &id, "notes", from_phone).await.expect("written");
    let targets = e.push_targets(&id, "notes", &phone).await.expect("targets");
    let ids: Vec<&str> = targets.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, vec![tablet.as_str()], "the other subscribed devices, not the writer");
    assert_eq!(targets[0].token, "token-2");

    e.unsubscribe_from_dataset(&me, &pool.id, &id, "notes", &tablet).await.expect("unsubscribed");
    let from_phone = UpdateRecordsRequest {
        sync_session_token: listed.sync_session_token,
        device_id: Some(phone.clone()),
        patches: vec![replace("n", "3", 2)],
    };
    e.update_records(&me, &pool.id, &id, "notes", from_phone).await.expect("written");
    assert!(e.push_targets(&id, "notes", &phone).await.expect("targets").is_empty());

    // Push sync switched off again: registering is refused.
    let cleared = PushSync { application_arns: Vec::new(), role_arn: None };
    let config = e.set_identity_pool_configuration(&Principal::Root, &pool.id, Some(cleared), None).await.expect("set");
    assert!(config.push_sync.is_none());
    assert!(matches!(
        e.register_device(&me, &pool.id, &id, "ADM", "t3").await,
        Err(CoreError::InvalidConfiguration(_))
    ));
}

pub(super) async fn sync_configuration_and_bulk_publish(store: Arc<dyn Store>) {
    let mut limits = Limits::default();
    limits.cognito.bulk_publish_interval_secs = 3600;
    let e = engine(store.clone(), limits);
    let pool = pool(&e).await;
    let root = Principal::Root;
    assert_eq!(e.bulk_publish_details(&root, &pool.id).await.expect("details").status, BulkPublishStatus::NotStarted);
    assert!(matches!(e.bulk_publish(&root, &pool.id).await, Err(CoreError::InvalidConfiguration(_))), "no stream");

    let streams = CognitoStreams {
        stream_name: Some("stream".into()),
        role_arn: Some("arn:aws:iam::123456789012:role/streams".into()),
        streaming_status: StreamingStatus::Enabled,
    };
    let config = e.set_identity_pool_configuration(&root, &pool.id, None, Some(streams.clone())).await.expect("set");
    assert_eq!(config.cognito_streams.as_ref(), Some(&streams));
    let read = e.identity_pool_configuration(&root, &pool.id).await.expect("read");
    assert_eq!((read.cognito_streams, read.push_sync), (Some(streams), None));

    let started = e.bulk_publish(&root, &pool.id).await.expect("started");
    assert_eq!(started.status, BulkPublishStatus::InProgress);
    assert!(started.start_time.is_some());
    assert!(matches!(e.bulk_publish(&root, &pool.id).await, Err(CoreError::DuplicateRequest(_))), "one at a time");
    let running = store.log_cursors(consumers::COGNITO_BULK_PUBLISH).await.expect("cursors");
    assert!(running.iter().any(|c| c.service == pool.service_sid), "the publisher finds it by its cursor");
    let failed = e.finish_bulk_publish(&root, &pool.id, Some("sink unreachable".into())).await.expect("failed");
    assert_eq!(
        (failed.status, failed.failure_message.as_deref()),
        (BulkPublishStatus::Failed, Some("sink unreachable"))
    );
    e.bulk_publish(&root, &pool.id).await.expect("a failed publish may be retried at once");
    let done = e.finish_bulk_publish(&root, &pool.id, None).await.expect("succeeded");
    assert_eq!(done.status, BulkPublishStatus::Succeeded);
    assert!(done.complete_time.is_some() && done.failure_message.is_none());
    let running = store.log_cursors(consumers::COGNITO_BULK_PUBLISH).await.expect("cursors");
    assert!(!running.iter().any(|c| c.service == pool.service_sid), "finished, its cursor is gone");
    assert!(matches!(e.bulk_publish(&root, &pool.id).await, Err(CoreError::AlreadyStreamed(_))), "once per interval");
    assert!(matches!(e.finish_bulk_publish(&root, &pool.id, None).await, Err(CoreError::InvalidParameter(_))));
    let mut immediate = Limits::default();
    immediate.cognito.bulk_publish_interval_secs = 0;
    engine(store, immediate).bulk_publish(&root, &pool.id).await.expect("the interval has passed");

    // Cognito events: one SyncTrigger at most; an empty value removes it.
    let trigger = [("SyncTrigger".to_owned(), "https://hooks.example/sync".to_owned())].into();
    assert_eq!(e.set_cognito_events(&root, &pool.id, trigger).await.expect("set").len(), 1);
    assert_eq!(e.cognito_events(&root, &pool.id).await.expect("read")["SyncTrigger"], "https://hooks.example/sync");
    let other = [("OtherEvent".to_owned(), "x".to_owned())].into();
    assert!(matches!(e.set_cognito_events(&root, &pool.id, other).await, Err(CoreError::InvalidField { .. })));
    let cleared = [("SyncTrigger".to_owned(), String::new())].into();
    assert!(e.set_cognito_events(&root, &pool.id, cleared).await.expect("cleared").is_empty());
    assert!(e.cognito_events(&root, &pool.id).await.expect("read").is_empty());
}

pub(super) async fn publishing_cursors_follow_the_pool_configuration(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let root = Principal::Root;
    let cursor = |consumer: &'static str| {
        let (store, service) = (store.clone(), pool.service_sid.clone());
        async move {
            let cursors = store.log_cursors(consumer).await.expect("cursors");
            cursors.into_iter().find(|c| c.service == service).map(|c| c.delivered_seq)
        }
    };
    let id = new_identity(&e, &pool).await;
    let me = identity_principal(&e, &id, &BTreeMap::new()).await;
    push(&e, &me, &pool, &id, "notes", vec![replace("n", "1", 0)]).await.expect("synced");
    let head = store.service(&ObjectRef::Sid(pool.service_sid.clone())).await.expect("read").expect("service").head_seq;
    assert!(head > 0);
    assert_eq!(cursor(consumers::COGNITO_STREAMS).await, None, "nothing is published before streams are on");

    let mut streams = CognitoStreams {
        stream_name: Some("stream".into()),
        role_arn: None,
        streaming_status: StreamingStatus::Enabled,
    };
    e.set_identity_pool_configuration(&root, &pool.id, None, Some(streams.clone())).await.expect("set");
    assert_eq!(cursor(consumers::COGNITO_STREAMS).await, Some(head), "starts at the head: history is bulk publish's");
    push(&e, &me, &pool, &id, "notes", vec![replace("n", "2", 1)]).await.expect("synced");
    streams.stream_name = Some("other".into());
    e.set_identity_pool_configuration(&root, &pool.id, None, Some(streams.clone())).await.expect("set");
    assert_eq!(cursor(consumers::COGNITO_STREAMS).await, Some(head), "a renamed stream keeps its place");
    streams.streaming_status = StreamingStatus::Disabled;
    e.set_identity_pool_configuration(&root, &pool.id, None, Some(streams)).await.expect("set");
    assert_eq!(cursor(consumers::COGNITO_STREAMS).await, None, "disabled, publishing stops");

    let push_sync =
        PushSync { application_arns: vec!["arn:aws:sns:us-east-1:123456789012:app/GCM/app".into()], role_arn: None };
    e.set_identity_pool_configuration(&root, &pool.id, Some(push_sync), None).await.expect("set");
    assert!(cursor(consumers::COGNITO_PUSH).await.is_some_and(|seq| seq > head));
    let cleared = PushSync { application_arns: Vec::new(), role_arn: None };
    e.set_identity_pool_configuration(&root, &pool.id, Some(cleared), None).await.expect("set");
    assert_eq!(cursor(consumers::COGNITO_PUSH).await, None);
}

pub(super) async fn usage_counts_sessions_and_storage(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let root = Principal::Root;
    let (a, b) = (new_identity(&e, &pool).await, new_identity(&e, &pool).await);
    let empty = e.identity_pool_usage(&root, &pool.id).await.expect("usage");
    assert_eq!((empty.sync_sessions, empty.data_storage, empty.last_modified), (0, 0, None));
    push(&e, &root, &pool, &a, "x", vec![replace("ab", "cd", 0)]).await.expect("written");
    push(&e, &root, &pool, &a, "y", vec![replace("k", "vvv", 0)]).await.expect("written");
    push(&e, &root, &pool, &b, "x", vec![replace("k", "v", 0)]).await.expect("written");
    e.list_records(&root, &pool.id, &b, "x", since(0)).await.expect("listed");
    let usage = e.identity_pool_usage(&root, &pool.id).await.expect("usage");
    assert_eq!(usage.sync_sessions, 4, "one per ListRecords");
    assert_eq!(usage.data_storage, 4 + 4 + 2);
    assert!(usage.last_modified.is_some());
    let listed = e.identity_pool_usages(&root, Some(10), None).await.expect("usages");
    assert_eq!(listed.items.iter().find(|u| u.pool_id == pool.id), Some(&usage));
    let ua = e.identity_usage(&root, &pool.id, &a).await.expect("usage");
    assert_eq!((ua.dataset_count, ua.data_storage), (2, 8));
    e.delete_dataset(&root, &pool.id, &a, "y").await.expect("deleted");
    let ua = e.identity_usage(&root, &pool.id, &a).await.expect("usage");
    assert_eq!((ua.dataset_count, ua.data_storage), (1, 4));
    let unknown = e.identity_usage(&root, &pool.id, "us-east-1:00000000-0000-0000-0000-000000000000").await;
    assert!(matches!(unknown, Err(CoreError::NotFound { .. })));
}

pub(super) async fn records_are_map_items_in_the_change_log(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let id = new_identity(&e, &pool).await;
    let root = Principal::Root;
    let head = store.service(&ObjectRef::Sid(pool.service_sid.clone())).await.expect("reads").expect("exists").head_seq;
    push(&e, &root, &pool, &id, "watched", vec![replace("a", "1", 0), replace("b", "2", 0), replace("c", "3", 0)])
        .await
        .expect("written");
    push(&e, &root, &pool, &id, "watched", vec![replace("a", "4", 1), remove("b", 1)]).await.expect("written");
    let events = store.events(&pool.service_sid, head, None, 100).await.expect("events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, ((head + 1)..=(head + 6)).collect::<Vec<_>>(), "one transaction, consecutive numbers");
    let bodies: Vec<serde_json::Value> =
        events.iter().map(|e| serde_json::from_str(e.json.get()).expect("json")).collect();
    let kinds: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        kinds,
        ["map_created", "map_item_added", "map_item_added", "map_item_added", "map_item_updated", "map_item_updated"]
    );
    assert_eq!(bodies[0]["unique_name"], dataset_map_name(&id, "watched"));
    assert_eq!(bodies[4]["data"]["value"], "4");
    assert_eq!(bodies[4]["data"]["sync_count"], 2);
    assert!(bodies[5]["data"]["value"].is_null(), "a remove is a tombstone item");

    // The store's reads of the dataset row agree with the engine.
    let row = store.dataset(&id, "watched").await.expect("reads").expect("exists");
    assert_eq!((row.sync_count, row.num_records, row.data_storage), (2, 2, 4));
    let map = row.map_sid.expect("a Map");
    let items = store
        .items(
            &map,
            ObjectKind::Map,
            &PageRequest { order: Order::Asc, from: Some(Cursor::Key("a".into())), after: None, limit: 10 },
        )
        .await
        .expect("items");
    assert_eq!(items.len(), 3);
}

pub(super) async fn removing_a_pool_removes_everything_of_it(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let push_sync = PushSync { application_arns: vec!["arn:aws:sns:us-east-1:1:app/GCM/a".into()], role_arn: None };
    e.set_identity_pool_configuration(&Principal::Root, &pool.id, Some(push_sync), None).await.expect("set");
    let alice = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "alice")])).await.expect("alice");
    let me = identity_principal(&e, &alice, &logins(&[("graph.facebook.com", "alice")])).await;
    push(&e, &me, &pool, &alice, "d", vec![replace("k", "v", 0)]).await.expect("synced");
    let device = e.register_device(&me, &pool.id, &alice, "GCM", "t").await.expect("device");
    e.subscribe_to_dataset(&me, &pool.id, &alice, "d", &device).await.expect("subscribed");
    let facebook = Login { provider: "graph.facebook.com".into(), user: "alice".into() };
    assert_eq!(store.login_owner(&pool.id, &facebook).await.expect("reads"), Some(alice.clone()));
    assert_eq!(store.dataset_subscribers(&alice, "d").await.expect("reads").len(), 1);
    e.flush_usage().await.expect("counts written");
    assert_eq!(store.identity_pool_usage(&pool.id).await.expect("reads").sync_sessions, 1);

    e.delete_identity_pool(&Principal::Root, &pool.id).await.expect("deleted");
    assert!(store.identity_pool(&pool.id).await.expect("reads").is_none());
    assert!(store.cognito_identity(&alice).await.expect("reads").is_none());
    assert!(store.login_owner(&pool.id, &facebook).await.expect("reads").is_none());
    assert!(store.datasets(&alice).await.expect("reads").is_empty());
    assert!(store.device(&device).await.expect("reads").is_none());
    assert!(store.dataset_subscribers(&alice, "d").await.expect("reads").is_empty());
    let usage = store.identity_pool_usage(&pool.id).await.expect("reads");
    assert_eq!((usage.sync_sessions, usage.data_storage, usage.last_modified), (0, 0, None));
    store.count_sync_sessions(&[(pool.id.clone(), 3)]).await.expect("a removed pool counts nothing, quietly");
    assert_eq!(store.identity_pool_usage(&pool.id).await.expect("reads").sync_sessions, 0);
    assert!(matches!(e.get_id(&pool.id, &BTreeMap::new()).await, Err(CoreError::NotFound { .. })));
}
