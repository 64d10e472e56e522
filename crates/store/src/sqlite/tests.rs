use super::*;
use std::time::Duration;

/// A batch committed as the writer thread commits one, its timing recorded nowhere.
fn commit_batch(
    hot: &HotStatements<'_>,
    epoch: &str,
    memo: &mut Memo,
    batch: &mut [WriteJob],
) -> Vec<Result<Applied, CoreError>> {
    let nowhere = crate::CommitMetrics {
        seconds: metrics::Histogram::noop(),
        batch_size: metrics::Histogram::noop(),
        in_place: metrics::Counter::noop(),
        rerun: metrics::Counter::noop(),
    };
    super::commit_batch(hot, epoch, memo, batch, &nowhere)
}

/// A store with one service, and a connection of its own to run batches on directly (the
/// store's writer stays idle).
async fn batch_fixture() -> (tempfile::TempDir, SqliteStore, Sid, Connection) {
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::store::Store;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("data.db");
    let store = SqliteStore::open(&path, Durability::Normal).expect("the store opens");
    let svc = Sid::new(SidKind::Service);
    store.execute(Actor::SYSTEM, create_service(&svc)).await.expect("the service");
    let conn = Connection::open(&path).expect("a writer connection");
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;").expect("pragmas");
    (dir, store, svc, conn)
}

fn job(actor: Actor, mutation: Mutation) -> WriteJob {
    let (reply, _) = tokio::sync::oneshot::channel();
    WriteJob { actor, mutation: Some(mutation), reply: Some(reply), runtime: None }
}

fn code(r: &Result<Applied, CoreError>) -> Result<(), ferrosync_core::error::ErrorCode> {
    r.as_ref().map(drop).map_err(CoreError::code)
}

fn create_service(sid: &Sid) -> Mutation {
    Mutation::CreateService {
        sid: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: Default::default(),
    }
}

/// Opens (or creates) the object of `kind` named `name` in `service`.
fn open_object(service: &Sid, kind: ObjectKind, name: &str) -> Mutation {
    Mutation::OpenObject {
        service: service.clone(),
        kind,
        target: Some(ObjectRef::UniqueName(name.into())),
        mode: ferrosync_core::model::OpenMode::OpenOrCreate,
        ttl: None,
        data: None,
    }
}

/// A job that fails is answered with its own error and leaves no trace, whether it failed
/// before writing (the batch runs without savepoints) or after (the batch runs again with
/// them, or, alone, rolls back); the jobs beside it stand, numbered without gaps.
#[tokio::test]
async fn a_failed_job_undoes_only_its_own_writes() {
    use ferrosync_core::error::ErrorCode;
    use ferrosync_core::store::{ObjectWrite, Store};
    use serde_json::json;

    let (_dir, store, svc, conn) = batch_fixture().await;
    // One writer's memory across the batches, as the writer thread keeps it.
    let mut memo = Memo::default();
    let writes =
        |writes: Vec<ObjectWrite>| job(Actor::SYSTEM, Mutation::Batch { service: svc.clone(), writes, txn: None });
    let create = |key: &str| ObjectWrite::Create { map: "m".into(), key: key.into(), data: json!({ "k": key }) };
    let stale = || ObjectWrite::Replace { map: "m".into(), key: "a".into(), data: json!({}), revision: 9 };

    // A stale revision fails before writing: the jobs around it commit in the same pass.
    let first = commit_batch(
        &HotStatements::new(&conn),
        "e",
        &mut memo,
        &mut [writes(vec![create("a")]), writes(vec![stale()]), writes(vec![create("b")])],
    );
    let codes: Vec<_> = first.iter().map(code).collect();
    assert_eq!(codes, [Ok(()), Err(ErrorCode::RevisionMismatch), Ok(())]);

    // A taken key fails after "d" was written: only "d" is undone.
    let mut mixed = [
        writes(vec![create("c")]),
        writes(vec![create("d"), create("a")]),
        writes(vec![stale()]),
        writes(vec![create("e")]),
    ];
    let codes: Vec<_> = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut mixed).iter().map(code).collect();
    assert_eq!(codes, [Ok(()), Err(ErrorCode::AlreadyExists), Err(ErrorCode::RevisionMismatch), Ok(())]);
    // The batch ran again with savepoints: from its mutations, which it kept for that.
    assert!(mixed.iter().all(|job| job.mutation.is_some()));

    // The first job fails, before writing and after: the jobs behind it number on from where
    // the batch began.
    let mut leading = [writes(vec![stale()]), writes(vec![create("h")])];
    let codes: Vec<_> =
        commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut leading).iter().map(code).collect();
    assert_eq!(codes, [Err(ErrorCode::RevisionMismatch), Ok(())]);
    let mut leading = [writes(vec![create("i"), create("a")]), writes(vec![create("j")])];
    let codes: Vec<_> =
        commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut leading).iter().map(code).collect();
    assert_eq!(codes, [Err(ErrorCode::AlreadyExists), Ok(())]);

    // Alone, a job that fails after writing rolls the transaction back.
    let alone = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [writes(vec![create("f"), create("b")])]);
    assert_eq!(alone.iter().map(code).collect::<Vec<_>>(), [Err(ErrorCode::AlreadyExists)]);
    // The next batch numbers on from the last event committed, not from what the rolled-back
    // batch took.
    let mut lone = [writes(vec![create("g")])];
    let after = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut lone);
    assert_eq!(after.iter().map(code).collect::<Vec<_>>(), [Ok(())]);
    // A batch of one never runs again: its mutation went into the rules uncopied.
    assert!(lone[0].mutation.is_none());

    let map = store.object(&svc, ObjectKind::Map, &ObjectRef::UniqueName("m".into())).await.expect("read");
    let map = map.expect("the Map");
    let kept = [("a", true), ("b", true), ("c", true), ("d", false), ("e", true), ("f", false), ("g", true)];
    for (key, kept) in kept.into_iter().chain([("h", true), ("i", false), ("j", true)]) {
        let item = store.item(&map.sid, &ItemKey::Key(key.into())).await.expect("read");
        assert_eq!(item.is_some(), kept, "item {key}");
    }
    let seqs: Vec<u64> = store.events(&svc, 0, None, 100).await.expect("events").iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "numbers a failed job took are handed out again");
    assert!(seqs.len() >= 4, "an event for each item kept: {seqs:?}");
}

/// The objects the writer keeps from batch to batch are what their rows hold, wherever the
/// row is and however the batch around a write ended: committed, rolled back to a savepoint,
/// rolled back whole. A removed object is not found again, nor written back.
#[tokio::test]
async fn objects_kept_between_batches_are_as_stored() {
    use ferrosync_core::error::ErrorCode;
    use ferrosync_core::store::{ObjectWrite, Outcome};
    use serde_json::json;

    let (_dir, _store, svc, conn) = batch_fixture().await;
    let mut memo = Memo::default();
    let run = |jobs: Vec<Mutation>, memo: &mut Memo| {
        let mut jobs: Vec<WriteJob> = jobs.into_iter().map(|m| job(Actor::SYSTEM, m)).collect();
        commit_batch(&HotStatements::new(&conn), "e", memo, &mut jobs)
    };
    let opened = |results: Vec<Result<Applied, CoreError>>| match results.into_iter().next() {
        Some(Ok(Applied { outcome: Outcome::Object { object, .. }, .. })) => object,
        other => panic!("opening answered {other:?}"),
    };
    let doc = opened(run(vec![open_object(&svc, ObjectKind::Document, "d")], &mut memo));
    let map = opened(run(vec![open_object(&svc, ObjectKind::Map, "m")], &mut memo));
    let stream = opened(run(vec![open_object(&svc, ObjectKind::Stream, "s")], &mut memo));
    let update = |n: u64| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.sid.clone()),
        data: Some(json!({ "n": n })),
        ttl: None,
        if_match: Some(n),
    };
    let writes = |writes: Vec<ObjectWrite>| Mutation::Batch { service: svc.clone(), writes, txn: None };
    let create = |key: &str| ObjectWrite::Create { map: "m".into(), key: key.into(), data: json!({}) };
    let assert_kept = |memo: &mut Memo, kind: ObjectKind, sid: &Sid, step: &str| {
        let stored = rows::object_at(&conn, &svc, kind, &ObjectRef::Sid(sid.clone())).expect("read");
        let kept = memo.objects.get(&svc, kind, &ObjectRef::Sid(sid.clone()));
        assert!(kept.is_some(), "{step}: {sid} is kept");
        assert_eq!(kept, stored, "{step}: {sid} is kept as stored");
    };

    let codes = |results: Vec<Result<Applied, CoreError>>| results.iter().map(code).collect::<Vec<_>>();
    assert_eq!(codes(run(vec![update(0), update(1)], &mut memo)), [Ok(()), Ok(())]);
    assert_kept(&mut memo, ObjectKind::Document, &doc.sid, "committed");
    // By its unique name, as a REST client may name it: the same object, one revision on.
    let mut by_name = update(2);
    if let Mutation::UpdateObject { target, .. } = &mut by_name {
        *target = ObjectRef::UniqueName("d".into());
    }
    assert_eq!(codes(run(vec![by_name], &mut memo)), [Ok(())]);
    assert_kept(&mut memo, ObjectKind::Document, &doc.sid, "written by its name");
    assert_eq!(codes(run(vec![writes(vec![create("a")])], &mut memo)), [Ok(())]);
    assert_kept(&mut memo, ObjectKind::Map, &map.sid, "an item written");
    // A message leaves its stream's state alone and moves only its end.
    let publish = || Mutation::Publish {
        service: svc.clone(),
        target: ObjectRef::Sid(stream.sid.clone()),
        message_sid: Sid::new(ferrosync_core::sid::SidKind::StreamMessage),
        data: json!({}),
    };
    assert_eq!(codes(run(vec![publish(), publish()], &mut memo)), [Ok(()), Ok(())]);
    assert_eq!(codes(run(vec![publish()], &mut memo)), [Ok(())]);
    assert_kept(&mut memo, ObjectKind::Stream, &stream.sid, "messages published");

    // The Map is written, then its job fails: the batch runs again with savepoints, and what
    // the failed job wrote is undone around the document's and the Map's good writes.
    let mixed = vec![update(3), writes(vec![create("b"), create("a")]), writes(vec![create("c")]), update(4)];
    let expected = [Ok(()), Err(ErrorCode::AlreadyExists), Ok(()), Ok(())];
    assert_eq!(codes(run(mixed, &mut memo)), expected);
    assert_eq!(codes(run(vec![update(5), writes(vec![create("d")])], &mut memo)), [Ok(()), Ok(())]);
    assert_kept(&mut memo, ObjectKind::Document, &doc.sid, "after a savepoint's rollback");
    assert_kept(&mut memo, ObjectKind::Map, &map.sid, "after a savepoint's rollback");

    // Alone, the failed job rolls the whole transaction back.
    let alone = run(vec![writes(vec![create("e"), create("a")])], &mut memo);
    assert_eq!(codes(alone), [Err(ErrorCode::AlreadyExists)]);
    assert_eq!(codes(run(vec![writes(vec![create("f")])], &mut memo)), [Ok(())]);
    assert_kept(&mut memo, ObjectKind::Map, &map.sid, "after the batch's rollback");

    let remove = Mutation::RemoveObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.sid.clone()),
        if_match: None,
    };
    assert_eq!(codes(run(vec![remove, update(6)], &mut memo)), [Ok(()), Err(ErrorCode::ObjectNotFound)]);
    assert_eq!(memo.objects.get(&svc, ObjectKind::Document, &ObjectRef::Sid(doc.sid.clone())), None);
    assert_eq!(memo.objects.get(&svc, ObjectKind::Document, &ObjectRef::UniqueName("d".into())), None);
    let row = rows::object_at(&conn, &svc, ObjectKind::Document, &ObjectRef::Sid(doc.sid.clone())).expect("read");
    assert_eq!(row, None, "a removed document is not written back");
}

/// Every 32nd event of each object's stream is marked at its place, whichever way the event
/// was appended: a document update, an item written or added, a message, several writes to
/// one map in one job, creations, removals, and batches whose failed jobs were undone.
#[tokio::test]
async fn marks_fall_every_32nd_event_whatever_wrote_it() {
    use ferrosync_core::store::{ItemWriteMode, ObjectWrite, Store};
    use serde_json::json;

    let (_dir, store, svc, conn) = batch_fixture().await;
    let mut memo = Memo::default();
    let target = |name: &str| ObjectRef::UniqueName(name.into());
    let open = |kind: ObjectKind, name: &str| open_object(&svc, kind, name);
    let update = |n: u64| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: target("doc"),
        data: Some(json!({ "n": n })),
        ttl: None,
        if_match: None,
    };
    let stale = || Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: target("doc"),
        data: Some(json!({})),
        ttl: None,
        if_match: Some(1),
    };
    let item = |n: u64| Mutation::WriteItem {
        service: svc.clone(),
        kind: ObjectKind::Map,
        target: target("map"),
        key: ItemKey::Key(format!("k{}", n % 5)),
        data: Some(json!({ "n": n })),
        ttl: None,
        collection_ttl: None,
        if_match: None,
        mode: ItemWriteMode::Upsert,
    };
    let add = |n: u64| Mutation::AddListItem {
        service: svc.clone(),
        target: target("list"),
        data: json!({ "n": n }),
        ttl: None,
        collection_ttl: None,
    };
    let publish = |n: u64| Mutation::Publish {
        service: svc.clone(),
        target: target("stream"),
        message_sid: Sid::new(ferrosync_core::sid::SidKind::StreamMessage),
        data: json!({ "n": n }),
    };
    // Three writes to the batch map in one job, the last of them failing after the others
    // wrote when `fail` is set: the batch is then run again with savepoints.
    let writes = |n: u64, fail: bool| {
        let put = |key: String| ObjectWrite::Put { map: "batched".into(), key, data: json!({ "n": n }) };
        let mut writes = vec![put(format!("a{n}")), put(format!("b{n}"))];
        if fail {
            writes.push(ObjectWrite::Create { map: "batched".into(), key: "a0".into(), data: json!({}) });
        } else {
            writes.push(put(format!("c{n}")));
        }
        Mutation::Batch { service: svc.clone(), writes, txn: None }
    };
    let opened = [
        open(ObjectKind::Document, "doc"),
        open(ObjectKind::Map, "map"),
        open(ObjectKind::List, "list"),
        open(ObjectKind::Stream, "stream"),
    ];
    commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut opened.map(|m| job(Actor::SYSTEM, m)));
    for round in 0..70u64 {
        let mut batch: Vec<Mutation> = (0..3).map(|i| update(round * 3 + i)).collect();
        batch.extend([item(round), add(round), publish(round), item(round + 1), writes(round, round % 7 == 3)]);
        if round % 5 == 0 {
            batch.insert(2, stale());
        }
        if round == 20 {
            // A removed and recreated map starts a stream of its own.
            batch.push(Mutation::RemoveObject {
                service: svc.clone(),
                kind: ObjectKind::Map,
                target: target("map"),
                if_match: None,
            });
            batch.push(open(ObjectKind::Map, "map"));
        }
        let mut jobs: Vec<WriteJob> = batch.into_iter().map(|m| job(Actor::SYSTEM, m)).collect();
        commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut jobs);
    }

    let log = store.events(&svc, 0, None, 10_000).await.expect("the log");
    let mut streams: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for e in &log {
        streams.entry(e.object_sid.to_string()).or_default().push(e.seq);
    }
    let marks = |object: &str| -> Vec<(i64, i64)> {
        conn.prepare("SELECT ord, seq FROM object_marks WHERE object_sid = ?1 ORDER BY seq")
            .and_then(|mut st| st.query_map([object], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("marks")
    };
    assert!(streams.len() >= 6, "every object wrote events: {}", streams.len());
    for (object, seqs) in &streams {
        let expected: Vec<(i64, i64)> = seqs
            .iter()
            .enumerate()
            .map(|(i, seq)| (i as i64 + 1, *seq as i64))
            .filter(|(ord, _)| ord % 32 == 0)
            .collect();
        assert_eq!(marks(object), expected, "the marks of {object} ({} events)", seqs.len());
    }
    let lengths: Vec<usize> = streams.values().map(Vec::len).collect();
    assert!(lengths.iter().filter(|&&n| n >= 64).count() >= 5, "streams long enough to mark twice: {lengths:?}");
}

/// A service removed and made again under its SID, as a restore does, numbers its log from its
/// own start, though the writer kept the removed one's head.
#[tokio::test]
async fn a_service_made_again_under_its_sid_numbers_its_log_afresh() {
    use ferrosync_core::store::Store;

    let (_dir, store, svc, conn) = batch_fixture().await;
    let mut memo = Memo::default();
    let open = |name: &str| job(Actor::SYSTEM, open_object(&svc, ObjectKind::Document, name));
    let ok = |answers: Vec<Result<Applied, CoreError>>| answers.iter().all(|a| a.is_ok());
    assert!(ok(commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [open("a"), open("b")])));
    let first: Vec<u64> = store.events(&svc, 0, None, 10).await.expect("the log").iter().map(|e| e.seq).collect();
    assert_eq!(first, [1, 2]);

    let remove = job(Actor::SYSTEM, Mutation::RemoveService { service: svc.clone() });
    assert!(ok(commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [remove])));
    assert!(ok(commit_batch(
        &HotStatements::new(&conn),
        "e",
        &mut memo,
        &mut [job(Actor::SYSTEM, create_service(&svc))]
    )));
    assert!(ok(commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [open("c")])));
    let again: Vec<u64> = store.events(&svc, 0, None, 10).await.expect("the log").iter().map(|e| e.seq).collect();
    assert_eq!(again, [1], "the new service's log starts at its own beginning");
}

/// A batch reads each service once, and the writer keeps the row for the batches after, yet a
/// change to the service holds for every job after it: here, access control switched on
/// mid-batch, then off in a batch of its own.
#[tokio::test]
async fn a_service_changed_mid_batch_is_read_afresh() {
    use ferrosync_core::error::ErrorCode;

    let (_dir, _store, svc, conn) = batch_fixture().await;
    let mut memo = Memo::default();
    let open = |name: &str| open_object(&svc, ObjectKind::Document, name);
    let acl = |enabled: bool| Mutation::UpdateService {
        service: svc.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: Some(enabled),
        settings: Default::default(),
    };
    let alice = || Actor::identity("alice");
    let mut batch = [
        job(Actor::SYSTEM, open("doc")),
        job(alice(), open("doc")),
        job(Actor::SYSTEM, acl(true)),
        job(alice(), open("doc")),
    ];
    let codes: Vec<_> = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut batch).iter().map(code).collect();
    assert_eq!(codes, [Ok(()), Ok(()), Ok(()), Err(ErrorCode::Forbidden)]);
    let later = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [job(alice(), open("doc"))]);
    assert_eq!(later.iter().map(code).collect::<Vec<_>>(), [Err(ErrorCode::Forbidden)]);
    // The row kept from the batches before is forgotten when the service changes.
    commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [job(Actor::SYSTEM, acl(false))]);
    let reopened = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut [job(alice(), open("doc"))]);
    assert_eq!(reopened.iter().map(code).collect::<Vec<_>>(), [Ok(())]);
}

/// A caller that stops waiting mid-read (its client went away) leaves the pool whole.
#[tokio::test]
async fn abandoned_reads_give_their_connections_back() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("data.db"), Durability::Normal).expect("the store opens");
    for _ in 0..READERS * 2 {
        let slow = store.read(|_| {
            std::thread::sleep(Duration::from_millis(50));
            Ok(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(5), slow).await.is_err(), "abandoned mid-read");
    }
    // Every pooled connection is usable again once the abandoned reads finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let one = || {
        store.read(|conn| {
            std::thread::sleep(Duration::from_millis(20));
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(err)
        })
    };
    // As many reads at once as the pool has connections.
    assert_eq!(READERS, 4);
    let (a, b, c, d) = tokio::join!(one(), one(), one(), one());
    for result in [a, b, c, d] {
        assert_eq!(result.expect("a read connection is free"), 1);
    }
}

/// A read that starts at a mark finds its whole page between the cursor and the mark, from
/// every position and at every page size: it never has to walk again from the newest event.
/// (The integration suite damages marks to check the answers stay right when it does.)
#[tokio::test]
async fn a_mark_always_covers_the_page_it_was_chosen_for() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("data.db"), Durability::Normal).expect("the store opens");
    let docs = crate::testing::Docs::create_service(&store).await;
    let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
    for n in 0..150 {
        docs.update(&store, if n % 4 == 0 { &b } else { &a }, n).await;
    }
    let log = ferrosync_core::store::Store::events(&store, &docs.svc, 0, None, 1_000).await.expect("the log");
    for doc in [&a, &b] {
        let own: Vec<u64> = log.iter().filter(|e| &e.object_sid == doc).map(|e| e.seq).collect();
        let sid = doc.to_string();
        let marked: i64 = store
            .read(move |c| {
                c.query_row("SELECT COUNT(*) FROM object_marks WHERE object_sid = ?1", [sid], |r| r.get(0)).map_err(err)
            })
            .await
            .expect("marks");
        assert_eq!(marked as usize, own.len() / 32, "every 32nd event is marked");
        for after in 0..=log.len() as u64 {
            for limit in [1, 2, 5, 31, 32, 33, 40, 64, 100, 1_000] {
                let (svc, doc) = (docs.svc.clone(), doc.clone());
                let (events, rewalked) = store
                    .read(move |c| rows::object_events(c, "epoch", &svc, after, &doc, limit))
                    .await
                    .expect("a read");
                let expected: Vec<u64> = own.iter().copied().filter(|&s| s > after).take(limit as usize).collect();
                assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), expected, "after {after}, {limit}");
                assert!(!rewalked, "after {after}, {limit} at most: the mark fell short");
            }
        }
    }
}

/// Pruning the log drops the marks of every object at or below the pruned horizon and keeps
/// every mark above it.
#[tokio::test]
async fn pruning_drops_the_marks_below_the_horizon_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("data.db");
    let store = SqliteStore::open(&path, Durability::Normal).expect("the store opens");
    let docs = crate::testing::Docs::create_service(&store).await;
    let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
    for n in 0..100 {
        docs.update(&store, if n % 3 == 0 { &b } else { &a }, n).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let horizon_date = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for n in 100..200 {
        docs.update(&store, if n % 3 == 0 { &b } else { &a }, n).await;
    }
    drop(store);
    let conn = Connection::open(&path).expect("opens");
    let marks = |conn: &Connection| -> Vec<i64> {
        conn.prepare("SELECT seq FROM object_marks ORDER BY seq")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("marks")
    };
    let before = marks(&conn);
    let removed = rows::prune_events(&conn, horizon_date).expect("prunes");
    let horizon: i64 = conn
        .query_row("SELECT pruned_seq FROM services WHERE sid = ?1", [docs.svc.to_string()], |r| r.get(0))
        .expect("the pruned horizon");
    assert_eq!(removed as i64, horizon, "every event up to the horizon went");
    let kept: Vec<i64> = before.iter().copied().filter(|&seq| seq > horizon).collect();
    assert!(kept.len() < before.len() && !kept.is_empty(), "marks on both sides: {before:?} at {horizon}");
    assert_eq!(marks(&conn), kept);
}

/// The lines of SQLite's plan for `sql` on a freshly migrated file.
fn query_plan(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("data.db");
    drop(SqliteStore::open(&path, Durability::Normal).expect("the store opens"));
    let conn = Connection::open(&path).expect("opens");
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .and_then(|mut st| st.query_map(params, |r| r.get(3))?.collect())
        .expect("a plan")
}

/// Pruning finds the marks below its horizon by position, not by reading every mark of the
/// service (their key leads with the object).
#[test]
fn pruning_finds_the_marks_below_the_horizon_through_their_index() {
    let plan = query_plan(rows::PRUNE_MARKS, rusqlite::params!["s", 10]);
    assert!(
        plan.iter().any(|line| line.contains("USING")
            && line.contains("object_marks_by_service_seq")
            && line.contains("seq<?")),
        "{plan:?}"
    );
}

/// Each step of a stream's walk is one lookup by key. Given the chance, SQLite's planner
/// searched the log by range for every link instead, and a read of a long stream took
/// seconds where it takes milliseconds.
#[test]
fn a_streams_walk_looks_each_link_up_by_key() {
    let plan = query_plan(rows::WALK_STREAM, rusqlite::params![9, 1_i64 << 44, "o", 1, 10]);
    let step = plan.iter().skip_while(|line| *line != "RECURSIVE STEP").collect::<Vec<_>>();
    assert!(step.iter().any(|line| line.as_str() == "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"), "{plan:?}");
    assert!(!step.iter().any(|line| line.contains(">?")), "{plan:?}");
}

/// The log's layout is spelled three times: in Rust, in the SQL the rows module writes, and in
/// the schema's trigger. They must agree, or a service's reads and removal would reach into
/// another's events.
#[test]
fn the_logs_layout_is_the_same_in_rust_sql_and_the_schema() {
    let (bits, max) = (rows::SEQ_BITS_SQL, rows::SEQ_MAX_SQL);
    assert_eq!(bits.parse::<u32>(), Ok(rows::SEQ_BITS));
    assert_eq!(max.parse::<u64>(), Ok(rows::SEQ_MAX));
    assert_eq!(rows::SEQ_MAX, (1 << rows::SEQ_BITS) - 1);
    let schema = include_str!("schema_v12.sql");
    let trigger = &schema[schema.find("CREATE TRIGGER").expect("the trigger")..];
    assert!(trigger.contains(&format!("old.num << {bits}) + {max}")), "{trigger}");
    assert!(schema.contains(&format!("(s.num << {bits}) + e.seq")), "the migration's ids");
}

/// A service's events are one range of the log's row ids (schema_v12.sql): its head is one
/// descent to the range's end and a page of its log one range read, never a scan of the log.
#[test]
fn a_services_head_and_log_are_found_by_row_id() {
    let head = query_plan(&format!("SELECT {} FROM services WHERE sid = ?1", rows::HEAD_SEQ), ["s"]);
    assert!(head.iter().any(|line| line == "SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{head:?}");
    let page = query_plan(rows::LOG_PAGE, rusqlite::params![1_i64 << 44, (1_i64 << 44) + 5, (2_i64 << 44) - 1, 10]);
    assert_eq!(page, ["SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"]);
    for line in head.iter().chain(&page) {
        assert!(!line.starts_with("SCAN"), "{head:?} {page:?}");
    }
}

/// Opens a store on a fresh file with one service in it.
async fn store_with_service(durability: Durability) -> (tempfile::TempDir, Arc<SqliteStore>, Sid) {
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::store::Store;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("data.db"), durability).expect("the store opens");
    let svc = Sid::new(SidKind::Service);
    store.execute(Actor::SYSTEM, create_service(&svc)).await.expect("the service");
    (dir, Arc::new(store), svc)
}

mod in_place;

/// A data file the store creates has its small pages; one made earlier with SQLite's default
/// keeps that size (SQLite fixes it at creation), and the store opens and writes it as before.
#[tokio::test]
async fn a_new_data_file_has_small_pages_and_an_older_one_keeps_its_own() {
    use ferrosync_core::store::Store;
    let page_size = |path: &Path| -> i64 {
        let conn = Connection::open(path).expect("a connection");
        conn.query_row("PRAGMA page_size", [], |r| r.get(0)).expect("the page size")
    };
    let (dir, store, svc) = store_with_service(Durability::Normal).await;
    drop(store);
    assert_eq!(page_size(&dir.path().join("data.db")), i64::from(PAGE_SIZE));

    let older = dir.path().join("older.db");
    Connection::open(&older)
        .expect("a connection")
        .execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE made_before (x);")
        .expect("a file with SQLite's default pages");
    let store = SqliteStore::open(&older, Durability::Normal).expect("the older file opens");
    store.execute(Actor::SYSTEM, create_service(&svc)).await.expect("a write to it commits");
    drop(store);
    assert_eq!(page_size(&older), 4096);
}

/// A document's data is held once however many places keep it: the object a write answers
/// with, the event of its change, and the object the writer keeps for the next write share it,
/// and the next write's event carries the data it replaced without copying it. A document near
/// the 16 KiB limit with a few hundred fields cost three copies of itself and their drops per
/// write before.
#[tokio::test]
async fn a_documents_data_is_shared_by_its_write_its_event_and_the_kept_object() {
    use ferrosync_core::store::Outcome;
    use serde_json::json;
    use std::sync::Arc;

    let (_dir, _store, svc, conn) = batch_fixture().await;
    let mut memo = Memo::default();
    let mut run = |mutation: Mutation| {
        let mut jobs = [job(Actor::SYSTEM, mutation)];
        let mut results = commit_batch(&HotStatements::new(&conn), "e", &mut memo, &mut jobs);
        let applied = results.pop().expect("an answer").expect("applied");
        let Outcome::Object { object, .. } = applied.outcome else { panic!("answered {:?}", applied.outcome) };
        let kept = memo.objects.get(&svc, ObjectKind::Document, &ObjectRef::Sid(object.sid.clone()));
        (object, applied.events, kept.map(|(kept, _)| kept.data))
    };
    let (doc, _, _) = run(open_object(&svc, ObjectKind::Document, "d"));
    let update = |n: u64| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.sid.clone()),
        data: Some(
            json!({ "n": n, "fields": (0..300).map(|i| (format!("f{i}"), json!(i))).collect::<serde_json::Map<_, _>>() }),
        ),
        ttl: None,
        if_match: Some(n),
    };
    let shared = |a: &Option<Arc<serde_json::Value>>, b: &Option<Arc<serde_json::Value>>| match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };

    let (first, events, kept) = run(update(0));
    assert_eq!(first.data.as_deref().map(|d| d["n"].clone()), Some(json!(0)));
    assert!(shared(&first.data, &events[0].data), "the event holds the written data itself");
    assert!(shared(&first.data, &kept.flatten()), "so does the object kept for the next write");

    let (second, events, kept) = run(update(1));
    assert!(shared(&events[0].previous_data, &first.data), "the replaced data moved into the event");
    assert!(shared(&second.data, &events[0].data) && shared(&second.data, &kept.flatten()));
    assert!(!shared(&first.data, &second.data));
}
