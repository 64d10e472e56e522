//! The conformance suite: behaviour every `Store` must show. Each store's tests call
//! [`run_all`] with a factory for fresh, empty stores.

use ferrosync_core::error::CoreError;
use ferrosync_core::model::{ItemKey, ObjectKind, ObjectRef, OpenMode};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::{Actor, Applied, CommitObserver, ItemWriteMode, Mutation, Outcome, Store, consumers};
use ferrosync_core::timestamp::Timestamp;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

mod cognito;
mod expiry;
mod matrix;

/// Runs every check against stores made by `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    sequences_are_gapless_and_ordered(make().await).await;
    failed_mutations_change_nothing(make().await).await;
    list_indexes_are_never_reused(make().await).await;
    paging_orders_and_bounds(make().await).await;
    unique_names_are_unique_per_kind(make().await).await;
    expiry::expiry_removes_and_emits(make().await).await;
    expiry::the_next_expiry_is_the_earliest_of_objects_and_items(make().await).await;
    pruning_records_the_horizon(make().await).await;
    an_objects_stream_is_its_events_through_removal_and_pruning(make().await).await;
    concurrent_conditional_updates_have_one_winner(make().await).await;
    service_settings_round_trip(make().await).await;
    webhook_cursors_start_at_the_head_and_follow_the_url(make().await).await;
    webhook_leases_have_one_holder_and_fence_the_cursor(make().await).await;
    batches_write_all_or_nothing(make().await).await;
    restored_objects_keep_their_revisions_and_restore_once(make().await).await;
    observers_hear_each_commit_in_order_before_its_caller(make().await).await;
    commits_wake_the_engines_readers_whoever_made_them(make().await).await;
    a_removed_services_log_goes_with_it(make().await).await;
    cognito::run_all(&make).await;
    matrix::run_all(&make).await;
}

/// Removing a service removes its log; services made after it, one under the same SID (as a
/// restore makes it) included, start theirs empty at sequence 1, and other services' logs are
/// untouched throughout.
async fn a_removed_services_log_goes_with_it(store: Arc<dyn Store>) {
    let create = |sid: &Sid| Mutation::CreateService {
        sid: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: Default::default(),
    };
    let log = |svc: &Sid| {
        let (store, svc) = (store.clone(), svc.clone());
        async move { store.events(&svc, 0, None, 100).await.expect("the log").iter().map(|e| e.seq).collect::<Vec<_>>() }
    };
    let (kept, removed) = (service(&store).await, service(&store).await);
    for (svc, n) in [(&kept, 3), (&removed, 5)] {
        for i in 0..n {
            open(&store, svc, ObjectKind::Document, &format!("d{i}")).await;
        }
    }
    assert_eq!(log(&removed).await, [1, 2, 3, 4, 5]);
    store.execute(Actor::SYSTEM, Mutation::RemoveService { service: removed.clone() }).await.expect("removed");
    assert_eq!(log(&removed).await, Vec::<u64>::new(), "its log went with it");
    assert_eq!(log(&kept).await, [1, 2, 3]);
    let later = service(&store).await;
    store.execute(Actor::SYSTEM, create(&removed)).await.expect("made again under its SID");
    for svc in [&later, &removed] {
        assert_eq!(log(svc).await, Vec::<u64>::new(), "a new service's log is empty");
        assert_eq!(store.service(&ObjectRef::Sid(svc.clone())).await.expect("reads").expect("exists").head_seq, 0);
        open(&store, svc, ObjectKind::Document, "new").await;
        assert_eq!(log(svc).await, [1], "and starts at 1");
    }
    assert_eq!(log(&kept).await, [1, 2, 3]);
}

async fn service_settings_round_trip(store: Arc<dyn Store>) {
    use ferrosync_core::model::{ServiceSettings, ServiceSettingsPatch};
    let sid = Sid::new(SidKind::Service);
    let settings = ServiceSettings {
        webhook_url: Some("https://hooks.example/sync".into()),
        reachability_webhooks_enabled: true,
        reachability_debouncing_window: 12_000,
        ..Default::default()
    };
    let m = Mutation::CreateService {
        sid: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: settings.clone(),
    };
    store.execute(Actor::SYSTEM, m).await.expect("service created");
    let read = store.service(&ObjectRef::Sid(sid.clone())).await.expect("reads").expect("exists");
    assert_eq!(read.settings, settings);

    let patch =
        ServiceSettingsPatch { webhook_url: Some(None), webhooks_from_rest_enabled: Some(true), ..Default::default() };
    let m = Mutation::UpdateService {
        service: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: None,
        settings: patch,
    };
    store.execute(Actor::SYSTEM, m).await.expect("service updated");
    let read = store.service(&ObjectRef::Sid(sid)).await.expect("reads").expect("exists");
    let expected = ServiceSettings { webhook_url: None, webhooks_from_rest_enabled: true, ..settings };
    assert_eq!(read.settings, expected, "unpatched settings are kept");
}

async fn service(store: &Arc<dyn Store>) -> Sid {
    let sid = Sid::new(SidKind::Service);
    let m = Mutation::CreateService {
        sid: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: Default::default(),
    };
    store.execute(Actor::SYSTEM, m).await.expect("service created");
    sid
}

async fn open(store: &Arc<dyn Store>, service: &Sid, kind: ObjectKind, name: &str) -> Sid {
    let m = Mutation::OpenObject {
        service: service.clone(),
        kind,
        target: Some(ObjectRef::UniqueName(name.into())),
        mode: OpenMode::OpenOrCreate,
        ttl: None,
        data: None,
    };
    match store.execute(Actor::SYSTEM, m).await.expect("opened").outcome {
        Outcome::Object { object, .. } => object.sid,
        other => panic!("unexpected {other:?}"),
    }
}

fn page(order: Order, from: Option<Cursor>, after: Option<Cursor>, limit: u32) -> PageRequest {
    PageRequest { order, from, after, limit }
}

async fn sequences_are_gapless_and_ordered(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let doc = open(&store, &svc, ObjectKind::Document, "d").await;
    for i in 0..20 {
        let m = Mutation::UpdateObject {
            service: svc.clone(),
            kind: ObjectKind::Document,
            target: ObjectRef::Sid(doc.clone()),
            data: Some(json!({ "n": i })),
            ttl: None,
            if_match: None,
        };
        store.execute(Actor::identity("alice"), m).await.expect("updated");
    }
    let events = store.events(&svc, 0, None, 100).await.expect("events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=21).collect::<Vec<_>>(), "one event per mutation, numbered without gaps");
    let tail = store.events(&svc, 15, Some(&doc), 100).await.expect("events");
    assert_eq!(tail.first().map(|e| e.seq), Some(16));
    let last: serde_json::Value = serde_json::from_str(events[20].json.get()).expect("json");
    assert_eq!(last["type"], "document_updated");
    assert_eq!(last["data"], json!({ "n": 19 }));
    assert_eq!(last["identity"], "alice");
    assert_eq!(last["revision"], 20);
    let head = store.service(&ObjectRef::Sid(svc)).await.expect("read").expect("exists").head_seq;
    assert_eq!(head, 21);
}

async fn failed_mutations_change_nothing(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let doc = open(&store, &svc, ObjectKind::Document, "d").await;
    let m = Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.clone()),
        data: Some(json!({ "x": 1 })),
        ttl: None,
        if_match: Some(7),
    };
    let e = store.execute(Actor::SYSTEM, m).await.expect_err("stale revision");
    assert!(matches!(e, CoreError::RevisionMismatch { expected: 7, actual: 0, .. }));
    let obj = store.object(&svc, ObjectKind::Document, &ObjectRef::Sid(doc)).await.expect("read").expect("exists");
    // The refusal carries what the write would have replaced, for the retry to start from.
    let CoreError::RevisionMismatch { current: Some(current), .. } = e else { panic!("no current state: {e:?}") };
    assert_eq!(*current, ferrosync_core::error::Current::Object(obj.clone()));
    assert_eq!(obj.revision, 0);
    assert_eq!(obj.data.as_deref(), Some(&json!({})));
    assert_eq!(store.events(&svc, 0, None, 100).await.expect("events").len(), 1, "no event for a refused write");
}

async fn batches_write_all_or_nothing(store: Arc<dyn Store>) {
    use ferrosync_core::store::ObjectWrite;
    let svc = service(&store).await;
    let batch = |writes: Vec<ObjectWrite>| Mutation::Batch { service: svc.clone(), writes, txn: None };
    let create = |key: &str, v: i64| ObjectWrite::Create { map: "m".into(), key: key.into(), data: json!({ "v": v }) };
    store.execute(Actor::SYSTEM, batch(vec![create("a", 1), create("b", 1)])).await.expect("a fresh batch");
    let head = store.events(&svc, 0, None, 100).await.expect("events").len();

    // A taken key, a stale revision, a missing entry: each fails the whole batch.
    let list = ObjectWrite::Append { list: "l".into(), data: json!({ "n": 1 }), ttl: None };
    let taken = store.execute(Actor::SYSTEM, batch(vec![list.clone(), create("c", 1), create("a", 2)])).await;
    assert!(matches!(taken, Err(CoreError::AlreadyExists { .. })), "{taken:?}");
    let stale = ObjectWrite::Replace { map: "m".into(), key: "a".into(), data: json!({ "v": 3 }), revision: 9 };
    let refused = store.execute(Actor::SYSTEM, batch(vec![list.clone(), stale])).await;
    assert!(matches!(refused, Err(CoreError::RevisionMismatch { expected: 9, actual: 0, .. })), "{refused:?}");
    let gone = ObjectWrite::Remove { map: "m".into(), key: "zz".into() };
    let missing = store.execute(Actor::SYSTEM, batch(vec![list, gone])).await;
    assert!(matches!(missing, Err(CoreError::NotFound { .. })), "{missing:?}");
    assert_eq!(store.events(&svc, 0, None, 100).await.expect("events").len(), head, "nothing written");
    let map = store.object(&svc, ObjectKind::Map, &ObjectRef::UniqueName("m".into())).await.expect("read");
    let map = map.expect("the Map");
    let c = store.item(&map.sid, &ItemKey::Key("c".into())).await.expect("read");
    assert!(c.is_none(), "the batch's earlier create was undone");
    assert!(store.object(&svc, ObjectKind::List, &ObjectRef::UniqueName("l".into())).await.expect("read").is_none());

    // A replace at the current revision goes through.
    let current = ObjectWrite::Replace { map: "m".into(), key: "a".into(), data: json!({ "v": 4 }), revision: 0 };
    store.execute(Actor::SYSTEM, batch(vec![current])).await.expect("the revision matches");
    let a = store.item(&map.sid, &ItemKey::Key("a".into())).await.expect("read").expect("a");
    assert_eq!((&*a.data, a.revision), (&json!({ "v": 4 }), 1));

    // An entry read through its Map's name or SID; another kind, service, Map or key finds none.
    let other = service(&store).await;
    let (by_name, by_sid) = (ObjectRef::UniqueName("m".into()), ObjectRef::Sid(map.sid.clone()));
    for (svc, kind, r, key, found) in [
        (&svc, ObjectKind::Map, &by_name, "a", true),
        (&svc, ObjectKind::Map, &by_sid, "a", true),
        (&svc, ObjectKind::Map, &by_name, "zz", false),
        (&svc, ObjectKind::List, &by_name, "a", false),
        (&svc, ObjectKind::Map, &ObjectRef::UniqueName("nope".into()), "a", false),
        (&other, ObjectKind::Map, &by_name, "a", false),
        (&other, ObjectKind::Map, &by_sid, "a", false),
    ] {
        let got = store.named_item(svc, kind, r, &ItemKey::Key(key.into())).await.expect("read");
        let want = found.then(|| (map.sid.clone(), json!({ "v": 4 }), 1));
        assert_eq!(
            got.map(|i| (i.object_sid, serde_json::Value::clone(&i.data), i.revision)),
            want,
            "{kind:?} {r:?} {key}"
        );
    }
}

/// Records the sequence numbers of the commits it hears of.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<u64>>);

impl CommitObserver for Heard {
    fn committed(&self, applied: &Applied) {
        self.0.lock().expect("not poisoned").extend(applied.events.iter().map(|e| e.seq));
    }
}

impl Heard {
    fn seqs(&self) -> Vec<u64> {
        self.0.lock().expect("not poisoned").clone()
    }
}

async fn observers_hear_each_commit_in_order_before_its_caller(store: Arc<dyn Store>) {
    let heard = Arc::new(Heard::default());
    let dropped = Arc::new(Heard::default());
    store.observe_commits(Arc::downgrade(&dropped) as std::sync::Weak<dyn CommitObserver>);
    store.observe_commits(Arc::downgrade(&heard) as std::sync::Weak<dyn CommitObserver>);
    drop(dropped);

    let svc = service(&store).await;
    let doc = open(&store, &svc, ObjectKind::Document, "d").await;
    let update = |if_match: Option<u64>| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.clone()),
        data: Some(json!({ "v": 1 })),
        ttl: None,
        if_match,
    };
    let applied = store.execute(Actor::SYSTEM, update(Some(0))).await.expect("updated");
    let seq = applied.events.last().expect("an event").seq;
    assert_eq!(heard.seqs().last(), Some(&seq), "heard of before the caller resumed");
    let before = heard.seqs();
    let refused = store.execute(Actor::SYSTEM, update(Some(0))).await;
    assert!(matches!(refused, Err(CoreError::RevisionMismatch { .. })), "{refused:?}");
    assert_eq!(heard.seqs(), before, "a refused mutation is not heard of");

    // Concurrent writers share batches; observers hear of them in the log's order.
    let writes = (0..16).map(|_| {
        let (store, m) = (store.clone(), update(None));
        tokio::spawn(async move { store.execute(Actor::SYSTEM, m).await })
    });
    for task in writes.collect::<Vec<_>>() {
        task.await.expect("task").expect("updated");
    }
    let logged: Vec<u64> = store.events(&svc, 0, None, 100).await.expect("events").iter().map(|e| e.seq).collect();
    assert_eq!(heard.seqs(), logged, "every commit heard of once, in commit order");
}

/// A commit reaches the engine's readers whoever made it: a write sent to the store directly
/// here, as one from a request dropped before its answer came.
async fn commits_wake_the_engines_readers_whoever_made_them(store: Arc<dyn Store>) {
    use ferrosync_core::auth::{RootCredentials, SecretBox};
    let secrets = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("master key");
    let limits = ferrosync_core::Limits::default();
    let engine = ferrosync_core::Engine::new(store.clone(), limits, RootCredentials::generate(), secrets);
    let svc = service(&store).await;
    let mut wake = engine.notifier().subscribe(&svc);
    let doc = open(&store, &svc, ObjectKind::Document, "d").await;
    assert!(wake.has_changed().expect("open"), "the commit woke the reader");
    let head = *wake.borrow_and_update();
    let events = engine.read_events(&svc, 0, Some(&doc), 10).await.expect("events");
    assert_eq!(events.last().map(|e| e.seq), Some(head), "the woken reader finds the event");
}

async fn list_indexes_are_never_reused(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let list = open(&store, &svc, ObjectKind::List, "l").await;
    let add = |n: i32| Mutation::AddListItem {
        service: svc.clone(),
        target: ObjectRef::Sid(list.clone()),
        data: json!({ "n": n }),
        ttl: None,
        collection_ttl: None,
    };
    for n in 0..3 {
        store.execute(Actor::SYSTEM, add(n)).await.expect("added");
    }
    let rm = Mutation::RemoveItem {
        service: svc.clone(),
        kind: ObjectKind::List,
        target: ObjectRef::Sid(list.clone()),
        key: ItemKey::Index(2),
        if_match: None,
    };
    store.execute(Actor::SYSTEM, rm).await.expect("removed");
    let item = match store.execute(Actor::SYSTEM, add(3)).await.expect("added").outcome {
        Outcome::Item { item, .. } => item,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(item.index, Some(3), "index 2 was removed but is not reused");
}

async fn restored_objects_keep_their_revisions_and_restore_once(store: Arc<dyn Store>) {
    use ferrosync_core::model::{Item, SyncObject};
    let svc = service(&store).await;
    let now = Timestamp::now();
    let list = SyncObject {
        sid: Sid::new(SidKind::List),
        service_sid: svc.clone(),
        kind: ObjectKind::List,
        unique_name: Some("restored".into()),
        data: None,
        revision: 9,
        next_index: 5,
        date_created: now,
        date_updated: now,
        date_expires: None,
        created_by: "exporter".into(),
    };
    let item = |index: u64, revision: u64| Item {
        object_sid: list.sid.clone(),
        index: Some(index),
        key: None,
        data: json!({ "i": index }).into(),
        revision,
        date_created: now,
        date_updated: now,
        date_expires: None,
        created_by: "exporter".into(),
    };
    let restore = || Mutation::RestoreObject { object: list.clone() };
    let items = |v: Vec<Item>| Mutation::RestoreItems { service: svc.clone(), object: list.sid.clone(), items: v };
    let written = |o: Outcome| match o {
        Outcome::Restored { written } => written,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(written(store.execute(Actor::SYSTEM, restore()).await.expect("restored").outcome), 1);
    assert_eq!(written(store.execute(Actor::SYSTEM, restore()).await.expect("again").outcome), 0);
    let applied = store.execute(Actor::SYSTEM, items(vec![item(0, 3), item(4, 1)])).await.expect("items");
    assert_eq!(written(applied.outcome), 2);
    assert_eq!(applied.events.len(), 2, "each restored item is logged");
    assert_eq!(written(store.execute(Actor::SYSTEM, items(vec![item(0, 3)])).await.expect("again").outcome), 0);
    // Another revision of something already there, an index past the list's end, or an
    // identity: refused, changing nothing.
    assert!(store.execute(Actor::SYSTEM, items(vec![item(0, 4)])).await.is_err());
    assert!(store.execute(Actor::SYSTEM, items(vec![item(5, 0)])).await.is_err());
    assert!(store.execute(Actor::identity("eve"), items(vec![item(1, 0)])).await.is_err());
    let stored =
        store.object(&svc, ObjectKind::List, &ObjectRef::Sid(list.sid.clone())).await.expect("reads").expect("exists");
    assert_eq!((stored.revision, stored.next_index), (9, 5));
    let kept = store.item(&list.sid, &ItemKey::Index(0)).await.expect("reads").expect("exists");
    assert_eq!(kept.revision, 3);
    // Appending continues after the exported next index.
    let m = Mutation::AddListItem {
        service: svc.clone(),
        target: ObjectRef::Sid(list.sid.clone()),
        data: json!({}),
        ttl: None,
        collection_ttl: None,
    };
    match store.execute(Actor::SYSTEM, m).await.expect("added").outcome {
        Outcome::Item { item, .. } => assert_eq!(item.index, Some(5)),
        other => panic!("unexpected {other:?}"),
    }
}

async fn paging_orders_and_bounds(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let map = open(&store, &svc, ObjectKind::Map, "m").await;
    for k in ["b", "d", "a", "c", "e"] {
        let m = Mutation::WriteItem {
            service: svc.clone(),
            kind: ObjectKind::Map,
            target: ObjectRef::Sid(map.clone()),
            key: ItemKey::Key(k.into()),
            data: Some(json!({ "k": k })),
            ttl: None,
            collection_ttl: None,
            if_match: None,
            mode: ItemWriteMode::Create,
        };
        store.execute(Actor::SYSTEM, m).await.expect("set");
    }
    let keys = |items: Vec<ferrosync_core::model::Item>| items.into_iter().filter_map(|i| i.key).collect::<Vec<_>>();
    let asc = store.items(&map, ObjectKind::Map, &page(Order::Asc, None, None, 2)).await.expect("items");
    assert_eq!(keys(asc), ["a", "b", "c"], "limit + 1 rows in key order");
    let from = store
        .items(&map, ObjectKind::Map, &page(Order::Asc, Some(Cursor::Key("c".into())), None, 10))
        .await
        .expect("items");
    assert_eq!(keys(from), ["c", "d", "e"]);
    let after = store
        .items(&map, ObjectKind::Map, &page(Order::Desc, None, Some(Cursor::Key("c".into())), 10))
        .await
        .expect("items");
    assert_eq!(keys(after), ["b", "a"]);
}

async fn unique_names_are_unique_per_kind(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let doc = open(&store, &svc, ObjectKind::Document, "same").await;
    let list = open(&store, &svc, ObjectKind::List, "same").await;
    assert_ne!(doc, list);
    let m = Mutation::OpenObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: Some(ObjectRef::UniqueName("same".into())),
        mode: OpenMode::CreateNew,
        ttl: None,
        data: None,
    };
    assert!(matches!(store.execute(Actor::SYSTEM, m).await, Err(CoreError::AlreadyExists { .. })));
    assert_eq!(open(&store, &svc, ObjectKind::Document, "same").await, doc, "open_or_create finds the existing one");
}

async fn pruning_records_the_horizon(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    open(&store, &svc, ObjectKind::Document, "a").await;
    open(&store, &svc, ObjectKind::Document, "b").await;
    let future = Timestamp(Timestamp::now().0 + 60_000);
    let pruned = store.execute(Actor::SYSTEM, Mutation::Prune { before: future }).await.expect("pruned");
    assert!(matches!(pruned.outcome, Outcome::Pruned { events: 2 }));
    let s = store.service(&ObjectRef::Sid(svc.clone())).await.expect("read").expect("exists");
    assert_eq!((s.head_seq, s.pruned_seq), (2, 2));
    open(&store, &svc, ObjectKind::Document, "c").await;
    assert_eq!(store.events(&svc, 2, None, 10).await.expect("events").first().map(|e| e.seq), Some(3));
}

/// What `events(service, after, Some(object), limit)` must return: the service's log filtered
/// to the object, from `after`, at most `limit`.
async fn expect_object_stream(store: &Arc<dyn Store>, svc: &Sid, object: &Sid) {
    let log = store.events(svc, 0, None, 1000).await.expect("events");
    let own: Vec<u64> = log.iter().filter(|e| &e.object_sid == object).map(|e| e.seq).collect();
    let head = log.last().map_or(0, |e| e.seq);
    for after in 0..=head + 1 {
        let expected: Vec<u64> = own.iter().copied().filter(|&s| s > after).collect();
        for limit in [1, 3, 1000] {
            let got: Vec<u64> =
                store.events(svc, after, Some(object), limit).await.expect("events").iter().map(|e| e.seq).collect();
            assert_eq!(got, expected[..expected.len().min(limit as usize)], "{object} after {after} limit {limit}");
        }
    }
    let mut paged = Vec::new();
    loop {
        let page = store.events(svc, paged.last().copied().unwrap_or(0), Some(object), 2).await.expect("events");
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|e| &e.object_sid == object));
        paged.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(paged, own, "{object} paged two at a time");
}

async fn an_objects_stream_is_its_events_through_removal_and_pruning(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let other = service(&store).await;
    let a = open(&store, &svc, ObjectKind::Document, "a").await;
    let list = open(&store, &svc, ObjectKind::List, "l").await;
    let b = open(&store, &svc, ObjectKind::Document, "b").await;
    let elsewhere = open(&store, &other, ObjectKind::Document, "a").await;
    let update = |service: &Sid, doc: &Sid, n: u32| Mutation::UpdateObject {
        service: service.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.clone()),
        data: Some(json!({ "n": n })),
        ttl: None,
        if_match: None,
    };
    // Interleaved, with one object idle for a stretch, so streams share the log unevenly.
    for n in 0..12 {
        let doc = if n % 3 == 0 { &b } else { &a };
        store.execute(Actor::SYSTEM, update(&svc, doc, n)).await.expect("updated");
        if n % 4 == 1 {
            let add = Mutation::AddListItem {
                service: svc.clone(),
                target: ObjectRef::Sid(list.clone()),
                data: json!({ "n": n }),
                ttl: None,
                collection_ttl: None,
            };
            store.execute(Actor::SYSTEM, add).await.expect("added");
        }
        store.execute(Actor::SYSTEM, update(&other, &elsewhere, n)).await.expect("updated");
    }
    for object in [&a, &b, &list] {
        expect_object_stream(&store, &svc, object).await;
    }
    expect_object_stream(&store, &other, &elsewhere).await;
    assert!(store.events(&other, 0, Some(&a), 100).await.expect("events").is_empty(), "another service's object");
    assert!(store.events(&svc, 0, Some(&Sid::new(SidKind::Document)), 100).await.expect("events").is_empty());

    // A long stream: the SQLite store marks every 32nd event of a stream and starts short reads
    // from far back at a mark rather than at the newest event; both must read the same.
    let hot = open(&store, &svc, ObjectKind::Document, "hot").await;
    for n in 0..80 {
        store.execute(Actor::SYSTEM, update(&svc, &hot, n)).await.expect("updated");
        if n % 10 == 0 {
            store.execute(Actor::SYSTEM, update(&svc, &a, n)).await.expect("updated");
        }
    }
    expect_object_stream(&store, &svc, &hot).await;
    expect_object_stream(&store, &svc, &a).await;

    // Item writes move their container's revision and stream together: a map's items set,
    // replaced and removed, past a mark, each bumping the map once.
    let map = open(&store, &svc, ObjectKind::Map, "m").await;
    let (mut writes, mut last) = (0u64, None);
    for n in 0..40u32 {
        let key = ItemKey::Key(format!("k{}", n % 7));
        let mutation = if n % 5 == 4 {
            Mutation::RemoveItem {
                service: svc.clone(),
                kind: ObjectKind::Map,
                target: ObjectRef::Sid(map.clone()),
                key,
                if_match: None,
            }
        } else {
            Mutation::WriteItem {
                service: svc.clone(),
                kind: ObjectKind::Map,
                target: ObjectRef::Sid(map.clone()),
                key,
                data: Some(json!({ "n": n })),
                ttl: None,
                collection_ttl: None,
                if_match: None,
                mode: ItemWriteMode::Upsert,
            }
        };
        if let Ok(applied) = store.execute(Actor::SYSTEM, mutation).await {
            writes += 1;
            last = applied.events.last().map(|e| e.seq);
        }
        if n % 8 == 0 {
            store.execute(Actor::SYSTEM, update(&svc, &hot, 1000 + n)).await.expect("updated");
        }
    }
    let stored = store.object(&svc, ObjectKind::Map, &ObjectRef::Sid(map.clone())).await.expect("read").expect("map");
    assert_eq!(stored.revision, writes, "one revision per item write");
    let stream = store.events(&svc, 0, Some(&map), 1000).await.expect("events");
    assert_eq!(stream.len() as u64, writes + 1, "the creation and one event per item write");
    assert_eq!(stream.last().map(|e| e.seq), last);
    expect_object_stream(&store, &svc, &map).await;

    // A removed object's stream stays readable and ends with its removal.
    let remove = Mutation::RemoveObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(b.clone()),
        if_match: None,
    };
    let removed = store.execute(Actor::SYSTEM, remove).await.expect("removed");
    store.execute(Actor::SYSTEM, update(&svc, &a, 99)).await.expect("updated");
    let stream = store.events(&svc, 0, Some(&b), 100).await.expect("events");
    assert_eq!(stream.last().map(|e| e.seq), removed.events.last().map(|e| e.seq), "ends with the removal");
    for object in [&a, &b, &list] {
        expect_object_stream(&store, &svc, object).await;
    }

    // Pruning the log cuts every stream at the horizon, removed objects' included.
    let future = Timestamp(Timestamp::now().0 + 60_000);
    store.execute(Actor::SYSTEM, Mutation::Prune { before: future }).await.expect("pruned");
    for object in [&a, &b, &list] {
        assert!(store.events(&svc, 0, Some(object), 100).await.expect("events").is_empty(), "{object} pruned");
    }
    store.execute(Actor::SYSTEM, update(&svc, &a, 100)).await.expect("updated");
    let fresh = store.events(&svc, 0, Some(&a), 100).await.expect("events");
    assert_eq!(fresh.len(), 1, "only the write after the prune");
    expect_object_stream(&store, &svc, &a).await;
}

async fn concurrent_conditional_updates_have_one_winner(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    let doc = open(&store, &svc, ObjectKind::Document, "race").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (store, svc, doc) = (store.clone(), svc.clone(), doc.clone());
        tasks.push(tokio::spawn(async move {
            let m = Mutation::UpdateObject {
                service: svc,
                kind: ObjectKind::Document,
                target: ObjectRef::Sid(doc),
                data: Some(json!({ "writer": i })),
                ttl: None,
                if_match: Some(0),
            };
            store.execute(Actor::SYSTEM, m).await.is_ok()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one If-Match: 0 update wins");
}

async fn set_webhook_url(store: &Arc<dyn Store>, service: &Sid, url: Option<&str>) {
    use ferrosync_core::model::ServiceSettingsPatch;
    let settings = ServiceSettingsPatch { webhook_url: Some(url.map(str::to_owned)), ..Default::default() };
    let m = Mutation::UpdateService {
        service: service.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: None,
        settings,
    };
    store.execute(Actor::SYSTEM, m).await.expect("service updated");
}

async fn cursor_of(store: &Arc<dyn Store>, service: &Sid) -> Option<u64> {
    let cursors = store.log_cursors(consumers::WEBHOOKS).await.expect("cursors");
    cursors.into_iter().find(|c| &c.service == service).map(|c| c.delivered_seq)
}

async fn webhook_cursors_start_at_the_head_and_follow_the_url(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    open(&store, &svc, ObjectKind::Document, "a").await;
    open(&store, &svc, ObjectKind::Document, "b").await;
    assert_eq!(cursor_of(&store, &svc).await, None, "no URL, no cursor");

    set_webhook_url(&store, &svc, Some("https://hooks.example/a")).await;
    assert_eq!(cursor_of(&store, &svc).await, Some(2), "starts at the head: history is not replayed");
    open(&store, &svc, ObjectKind::Document, "c").await;
    set_webhook_url(&store, &svc, Some("https://hooks.example/b")).await;
    assert_eq!(cursor_of(&store, &svc).await, Some(2), "a changed URL keeps its place");

    set_webhook_url(&store, &svc, None).await;
    assert_eq!(cursor_of(&store, &svc).await, None, "a cleared URL ends delivery");
    open(&store, &svc, ObjectKind::Document, "d").await;
    set_webhook_url(&store, &svc, Some("https://hooks.example/a")).await;
    assert_eq!(cursor_of(&store, &svc).await, Some(4), "set again, it starts at the head again");

    let with_url = Sid::new(SidKind::Service);
    let m = Mutation::CreateService {
        sid: with_url.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: ferrosync_core::model::ServiceSettings {
            webhook_url: Some("https://hooks.example/new".into()),
            ..Default::default()
        },
    };
    store.execute(Actor::SYSTEM, m).await.expect("service created");
    assert_eq!(cursor_of(&store, &with_url).await, Some(0), "created with a URL: every event is delivered");

    store.execute(Actor::SYSTEM, Mutation::RemoveService { service: with_url.clone() }).await.expect("removed");
    assert_eq!(cursor_of(&store, &with_url).await, None, "the cursor goes with its service");
}

async fn webhook_leases_have_one_holder_and_fence_the_cursor(store: Arc<dyn Store>) {
    let svc = service(&store).await;
    set_webhook_url(&store, &svc, Some("https://hooks.example/a")).await;
    let t = |ms: i64| Timestamp(1_000_000 + ms);

    // Many nodes race for a free lease: exactly one gets it.
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (store, svc) = (store.clone(), svc.clone());
        tasks.push(tokio::spawn(async move {
            store.take_log_lease(consumers::WEBHOOKS, &svc, &format!("node-{n}"), t(0), t(30_000)).await.expect("lease")
        }));
    }
    let mut holders = 0;
    for task in tasks {
        if task.await.expect("task").is_some() {
            holders += 1;
        }
    }
    assert_eq!(holders, 1, "one node holds the lease");
    let holder = store
        .log_cursors(consumers::WEBHOOKS)
        .await
        .expect("cursors")
        .into_iter()
        .find(|c| c.service == svc)
        .and_then(|c| c.lease_owner)
        .expect("a holder is recorded");
    let other = if holder == "node-0" { "node-1" } else { "node-0" };

    assert_eq!(
        store.take_log_lease(consumers::WEBHOOKS, &svc, &holder, t(1), t(30_000)).await.expect("renew"),
        Some(0)
    );
    assert!(store.advance_log_cursor(consumers::WEBHOOKS, &svc, &holder, 3, t(30_000)).await.expect("advance"));
    assert!(
        !store.advance_log_cursor(consumers::WEBHOOKS, &svc, other, 9, t(30_000)).await.expect("advance"),
        "not the holder"
    );
    assert!(store.advance_log_cursor(consumers::WEBHOOKS, &svc, &holder, 1, t(30_000)).await.expect("advance"));
    assert_eq!(cursor_of(&store, &svc).await, Some(3), "never moves back");

    // Before it runs out the lease stays; after, another node takes it over and the old
    // holder can no longer move the cursor.
    assert_eq!(
        store.take_log_lease(consumers::WEBHOOKS, &svc, other, t(29_999), t(60_000)).await.expect("lease"),
        None
    );
    assert_eq!(
        store.take_log_lease(consumers::WEBHOOKS, &svc, other, t(30_001), t(60_000)).await.expect("lease"),
        Some(3)
    );
    assert!(
        !store.advance_log_cursor(consumers::WEBHOOKS, &svc, &holder, 5, t(90_000)).await.expect("advance"),
        "fenced off"
    );
    assert_eq!(cursor_of(&store, &svc).await, Some(3));

    // Released, it is free at once.
    store.release_log_lease(consumers::WEBHOOKS, &svc, other).await.expect("released");
    assert_eq!(
        store.take_log_lease(consumers::WEBHOOKS, &svc, &holder, t(30_002), t(60_000)).await.expect("lease"),
        Some(3)
    );

    // A cleared URL ends the holder's delivery.
    set_webhook_url(&store, &svc, None).await;
    assert!(!store.advance_log_cursor(consumers::WEBHOOKS, &svc, &holder, 4, t(60_000)).await.expect("advance"));
    assert_eq!(
        store.take_log_lease(consumers::WEBHOOKS, &svc, &holder, t(30_003), t(60_000)).await.expect("lease"),
        None
    );
}
