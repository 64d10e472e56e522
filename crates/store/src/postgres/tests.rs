use super::*;

#[test]
fn hints_parse_and_reject_garbage() {
    let sid = Sid::new(ferrosync_core::sid::SidKind::Service);
    let hint = parse_hint(&format!("{sid}:42")).expect("parses");
    assert_eq!((hint.service, hint.seq), (sid, 42));
    assert!(parse_hint("nonsense").is_none());
    assert!(parse_hint("IS00:x").is_none());
}

#[test]
fn urls_get_a_connect_timeout_and_keepalives() {
    let c = parse_url("postgres://u@127.0.0.1:5432/db").expect("parses");
    assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(5)));
    assert!(c.get_keepalives());
    assert!(parse_url("postgres://[::1").is_err());
}

/// A batch committed as the writer thread commits one, its timing recorded nowhere.
fn commit(conn: &mut PgConn, epoch: &str, batch: &[WriteJob]) -> Vec<Result<Applied, CoreError>> {
    let nowhere = crate::CommitMetrics {
        seconds: metrics::Histogram::noop(),
        batch_size: metrics::Histogram::noop(),
        in_place: metrics::Counter::noop(),
        rerun: metrics::Counter::noop(),
    };
    commit_batch(conn, epoch, batch, &nowhere)
}

fn job(mutation: Mutation) -> WriteJob {
    let (reply, _) = tokio::sync::oneshot::channel();
    WriteJob { actor: Actor::SYSTEM, mutation: Some(mutation), reply: Some(reply), runtime: None }
}

fn code(r: &Result<Applied, CoreError>) -> Result<(), ferrosync_core::error::ErrorCode> {
    r.as_ref().map(drop).map_err(CoreError::code)
}

/// A new service's SID and the mutation creating it.
fn new_service(acl_enabled: bool) -> (Sid, Mutation) {
    let sid = Sid::new(ferrosync_core::sid::SidKind::Service);
    let create = Mutation::CreateService {
        sid: sid.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled,
        settings: Default::default(),
    };
    (sid, create)
}

/// A store on a fresh schema with one service, and a connection of its own to run batches on
/// directly (the store's writer stays idle); `None` when no test server is set.
async fn fixture() -> Option<(PgStore, Sid, PgConn)> {
    use ferrosync_core::store::Store;
    let url = crate::testing::fresh_postgres_url().await?;
    let store = PgStore::connect(&url).await.expect("the store connects");
    let (svc, create) = new_service(false);
    store.execute(Actor::SYSTEM, create).await.expect("the service");
    let conn = tokio::task::spawn_blocking(move || connect(&parse_url(&url).expect("url")).expect("a connection"))
        .await
        .expect("joined");
    Some((store, svc, conn))
}

/// Objects' rows and events held back through a batch: a job reads what an earlier one in the
/// batch held (by SID and by unique name), a job that fails before writing drops only what it
/// held, and the batch commits without ever falling back to savepoints. A job that fails after
/// writing (a Map entry it created, before a key already taken) makes the batch roll back and
/// run again with savepoints: only that job is undone. Every event is numbered without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holding_rows_back_reads_them_and_undoes_only_failed_jobs() {
    use ferrosync_core::error::ErrorCode;
    use ferrosync_core::model::{ItemKey, ObjectKind, ObjectRef, OpenMode};
    use ferrosync_core::store::{ObjectWrite, Store};
    use serde_json::json;

    let Some((store, svc, conn)) = fixture().await else { return };
    let name = |n: &str| ObjectRef::UniqueName(n.into());
    let open = |n: &str| Mutation::OpenObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: Some(name(n)),
        mode: OpenMode::OpenOrCreate,
        ttl: None,
        data: None,
    };
    let update = |target: ObjectRef, data: serde_json::Value, if_match: Option<u64>| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target,
        data: Some(data),
        ttl: None,
        if_match,
    };
    store.execute(Actor::SYSTEM, open("d")).await.expect("d");
    let d = store.object(&svc, ObjectKind::Document, &name("d")).await.expect("read").expect("d exists");
    let r0 = d.revision;
    let epoch = store.epoch().to_owned();

    let jobs = [
        job(update(ObjectRef::Sid(d.sid.clone()), json!({ "n": 1 }), Some(r0))),
        // Sees the first job's version, held back, by the name it was not written under.
        job(update(name("d"), json!({ "n": 2 }), Some(r0 + 1))),
        // Stale: fails before writing.
        job(update(name("d"), json!({ "n": 3 }), Some(r0))),
        job(open("e")),
        job(update(name("e"), json!({ "x": 1 }), None)),
    ];
    let (epoch2, mut held) = (epoch.clone(), conn);
    let (codes, committed, round_trips, conn) = tokio::task::spawn_blocking(move || {
        let order: Vec<usize> = (0..jobs.len()).collect();
        let sent = held.sent;
        let results = commit_holding(&mut held, &epoch2, &jobs, &order);
        let committed = results.is_some();
        let codes: Vec<_> = results.unwrap_or_default().iter().map(|r| r.as_ref().map(code)).collect();
        (codes, committed, held.sent - sent, held)
    })
    .await
    .expect("joined");
    assert!(committed, "nothing in the batch needed a savepoint");
    // BEGIN, the service, d and e read ahead together, the rows and the heads in one statement,
    // COMMIT: each job's object and event went out together with the others', not as
    // statements of their own.
    assert_eq!(round_trips, 5);
    let ok = Some(Ok(()));
    assert_eq!(codes, [ok, ok, Some(Err(ErrorCode::RevisionMismatch)), ok, ok]);
    let d = store.object(&svc, ObjectKind::Document, &name("d")).await.expect("read").expect("d");
    assert_eq!((d.data.as_deref(), d.revision), (Some(&json!({ "n": 2 })), r0 + 2));
    let e = store.object(&svc, ObjectKind::Document, &name("e")).await.expect("read").expect("e");
    assert_eq!(e.data.as_deref(), Some(&json!({ "x": 1 })));

    // A Map entry held, then a key already taken: the job only held, so dropping what it held
    // undoes it and the batch commits.
    let create = |service: &Sid, map: &str, keys: &[&str]| Mutation::Batch {
        service: service.clone(),
        writes: keys
            .iter()
            .map(|k| ObjectWrite::Create { map: map.into(), key: (*k).into(), data: json!({}) })
            .collect(),
        txn: None,
    };
    store.execute(Actor::SYSTEM, create(&svc, "m", &["a"])).await.expect("a");
    let jobs = [
        job(create(&svc, "m", &["b"])),
        job(create(&svc, "m", &["c", "a"])),
        job(update(name("d"), json!({ "n": 4 }), Some(r0 + 2))),
    ];
    let (epoch2, mut held) = (epoch.clone(), conn);
    let (codes, conn) = tokio::task::spawn_blocking(move || {
        let results = commit_holding(&mut held, &epoch2, &jobs, &[0, 1, 2]);
        (results.map(|r| r.iter().flatten().map(code).collect::<Vec<_>>()), held)
    })
    .await
    .expect("joined");
    assert_eq!(codes, Some(vec![Ok(()), Err(ErrorCode::AlreadyExists), Ok(())]), "committed holding");

    // A job that wrote (the grant of the Map it made, on a service with access control) and
    // then met a taken key cannot be undone by dropping what it held: the batch runs again
    // with savepoints, and only that job is undone.
    let (acl, create_acl) = new_service(true);
    store.execute(Actor::SYSTEM, create_acl).await.expect("the service");
    let as_alice = |mutation| WriteJob { actor: Actor::identity("alice"), ..job(mutation) };
    let jobs = [
        job(create(&svc, "m", &["e"])),
        as_alice(create(&acl, "p", &["k", "k"])),
        job(update(name("d"), json!({ "n": 5 }), Some(r0 + 3))),
    ];
    // Alone, such a job is answered at once: the transaction's rollback undoes it exactly.
    let lone = [as_alice(create(&acl, "q", &["k", "k"]))];
    let (epoch2, mut held) = (epoch.clone(), conn);
    let (holding, codes, lone) = tokio::task::spawn_blocking(move || {
        let holding = commit_holding(&mut held, &epoch2, &jobs, &[0, 1, 2]).is_some();
        let codes: Vec<_> = commit(&mut held, &epoch2, &jobs).iter().map(code).collect();
        let lone =
            commit_holding(&mut held, &epoch2, &lone, &[0]).map(|r| r.iter().flatten().map(code).collect::<Vec<_>>());
        (holding, codes, lone)
    })
    .await
    .expect("joined");
    assert!(!holding, "the job that wrote and failed sends the batch back");
    assert_eq!(codes, [Ok(()), Err(ErrorCode::AlreadyExists), Ok(())]);
    assert_eq!(lone, Some(vec![Err(ErrorCode::AlreadyExists)]));
    let m = store.object(&svc, ObjectKind::Map, &name("m")).await.expect("read").expect("m");
    for (key, kept) in [("a", true), ("b", true), ("c", false), ("e", true)] {
        let item = store.item(&m.sid, &ItemKey::Key(key.into())).await.expect("read");
        assert_eq!(item.is_some(), kept, "item {key}");
    }
    for map in ["p", "q"] {
        assert!(store.object(&acl, ObjectKind::Map, &name(map)).await.expect("read").is_none(), "map {map} undone");
    }
    assert!(store.events(&acl, 0, None, 10).await.expect("events").is_empty());
    let d = store.object(&svc, ObjectKind::Document, &name("d")).await.expect("read").expect("d");
    assert_eq!((d.data.as_deref(), d.revision), (Some(&json!({ "n": 5 })), r0 + 4));

    let seqs: Vec<u64> = store.events(&svc, 0, None, 100).await.expect("events").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "numbered without gaps");
    // d opened, two updates, e opened and updated; m and a; b and d; e and d.
    assert_eq!(seqs.len(), 11, "{seqs:?}");
}

/// Map and List items held back through a batch: a job reads the item an earlier one wrote or
/// removed, an item written several times is sent once in its last version, a List's pushes
/// follow one another, the items the jobs name are read together, and every write waits for
/// the batch's one statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holding_items_reads_them_back_and_sends_each_once() {
    use ferrosync_core::error::ErrorCode;
    use ferrosync_core::model::{ItemKey, ObjectKind, ObjectRef, OpenMode};
    use ferrosync_core::store::{ItemWriteMode, Store};
    use serde_json::json;

    let Some((store, svc, mut conn)) = fixture().await else { return };
    let name = |n: &str| ObjectRef::UniqueName(n.into());
    for (kind, n) in [(ObjectKind::Map, "m"), (ObjectKind::List, "l")] {
        let open = Mutation::OpenObject {
            service: svc.clone(),
            kind,
            target: Some(name(n)),
            mode: OpenMode::CreateNew,
            ttl: None,
            data: None,
        };
        store.execute(Actor::SYSTEM, open).await.expect("opened");
    }
    let key = |k: &str| ItemKey::Key(k.into());
    let write = |k: &str, n: i64, if_match: Option<u64>, mode: ItemWriteMode| Mutation::WriteItem {
        service: svc.clone(),
        kind: ObjectKind::Map,
        target: name("m"),
        key: key(k),
        data: Some(json!({ "n": n })),
        ttl: None,
        collection_ttl: None,
        if_match,
        mode,
    };
    let remove = |k: &str| Mutation::RemoveItem {
        service: svc.clone(),
        kind: ObjectKind::Map,
        target: name("m"),
        key: key(k),
        if_match: None,
    };
    let push = |n: i64| Mutation::AddListItem {
        service: svc.clone(),
        target: name("l"),
        data: json!({ "n": n }),
        ttl: None,
        collection_ttl: None,
    };
    store.execute(Actor::SYSTEM, write("a", 1, None, ItemWriteMode::Create)).await.expect("a");
    store.execute(Actor::SYSTEM, push(0)).await.expect("l[0]");
    let head = store.events(&svc, 0, None, 100).await.expect("events").len() as u64;

    let jobs = [
        job(write("a", 2, Some(0), ItemWriteMode::Update)),
        // Sees the held revision 1 of a.
        job(write("a", 3, Some(1), ItemWriteMode::Update)),
        job(write("a", 9, Some(1), ItemWriteMode::Update)),
        job(write("b", 1, None, ItemWriteMode::Create)),
        job(remove("b")),
        // b is held removed.
        job(remove("b")),
        job(write("b", 2, None, ItemWriteMode::Create)),
        job(push(1)),
        job(push(2)),
        job(remove("a")),
        job(write("a", 4, None, ItemWriteMode::Upsert)),
    ];
    let epoch = store.epoch().to_owned();
    let (codes, round_trips, mut conn) = tokio::task::spawn_blocking(move || {
        let sent = conn.sent;
        let order: Vec<usize> = (0..jobs.len()).collect();
        let results = commit_holding(&mut conn, &epoch, &jobs, &order);
        (results.map(|r| r.iter().flatten().map(code).collect::<Vec<_>>()), conn.sent - sent, conn)
    })
    .await
    .expect("joined");
    let (ok, mismatch, gone) = (Ok(()), Err(ErrorCode::RevisionMismatch), Err(ErrorCode::ItemNotFound));
    assert_eq!(codes, Some(vec![ok, ok, mismatch, ok, ok, gone, ok, ok, ok, ok, ok]));
    // BEGIN, the service, m and l read ahead together, a and b read ahead together, everything
    // written in one statement, COMMIT.
    assert_eq!(round_trips, 6);

    let m = store.object(&svc, ObjectKind::Map, &name("m")).await.expect("read").expect("m");
    let a = store.item(&m.sid, &key("a")).await.expect("read").expect("a");
    assert_eq!((&*a.data, a.revision), (&json!({ "n": 4 }), 0), "removed and made anew");
    let b = store.item(&m.sid, &key("b")).await.expect("read").expect("b");
    assert_eq!((&*b.data, b.revision), (&json!({ "n": 2 }), 0));
    let l = store.object(&svc, ObjectKind::List, &name("l")).await.expect("read").expect("l");
    assert_eq!(l.next_index, 3);
    let page = ferrosync_core::page::PageRequest {
        order: ferrosync_core::page::Order::Asc,
        from: None,
        after: None,
        limit: 10,
    };
    let items = store.items(&l.sid, ObjectKind::List, &page).await.expect("items");
    let pushed: Vec<_> = items.iter().map(|i| (i.index, serde_json::Value::clone(&i.data))).collect();
    assert_eq!(pushed, (0..3).map(|n| (Some(n as u64), json!({ "n": n }))).collect::<Vec<_>>());

    let seqs: Vec<u64> = store.events(&svc, 0, None, 100).await.expect("events").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "numbered without gaps");
    assert_eq!(seqs.len() as u64, head + 9, "one event for each job that succeeded");

    // An item held when the batch reads its object's items ahead is not noted as read: once a
    // statement has sent it (here an expiry's read of expired rows), a later job reads it as sent.
    let set = |index: u64, n: i64| Mutation::WriteItem {
        service: svc.clone(),
        kind: ObjectKind::List,
        target: name("l"),
        key: ItemKey::Index(index),
        data: Some(json!({ "n": n })),
        ttl: None,
        collection_ttl: None,
        if_match: None,
        mode: ItemWriteMode::Update,
    };
    let jobs = [
        job(push(3)),
        job(set(0, 10)),
        job(Mutation::Expire { now: ferrosync_core::timestamp::Timestamp::now(), limit: 10 }),
        job(set(3, 33)),
    ];
    let epoch = store.epoch().to_owned();
    let (codes, mut conn) = tokio::task::spawn_blocking(move || {
        let results = commit_holding(&mut conn, &epoch, &jobs, &[0, 1, 2, 3]);
        (results.map(|r| r.iter().flatten().map(code).collect::<Vec<_>>()), conn)
    })
    .await
    .expect("joined");
    assert_eq!(codes, Some(vec![Ok(()); 4]));
    let l3 = store.item(&l.sid, &ItemKey::Index(3)).await.expect("read").expect("l[3]");
    assert_eq!((&*l3.data, l3.revision), (&json!({ "n": 33 }), 1));

    // Several items of one object at once (as a Cognito sync reads its records): one statement
    // for those neither held nor read, a key asked twice answered twice.
    let held_x = ferrosync_core::model::Item { key: Some("x".into()), ..a.clone() };
    let (answers, round_trips, modes) = tokio::task::spawn_blocking(move || {
        let mode = |conn: &mut PgConn| {
            let shown = conn.query("SHOW plan_cache_mode", &[]).expect("shown");
            shown.first().map(|r| r.get::<_, String>(0)).unwrap_or_default()
        };
        conn.batch(BEGIN).expect("begins");
        // The writer's transactions run generic plans, and only they.
        let inside = mode(&mut conn);
        conn.hold();
        rows::put_item(&mut conn, &held_x).expect("held");
        let sent = conn.sent;
        let keys = [key("a"), key("x"), key("b"), key("a"), key("zz")];
        let answers = rows::items_at(&mut conn, &m.sid, &keys).expect("read");
        let round_trips = conn.sent - sent;
        conn.release();
        conn.batch("ROLLBACK").expect("rolls back");
        let modes = (inside, mode(&mut conn));
        (
            answers.iter().map(|i| i.as_ref().map(|i| serde_json::Value::clone(&i.data))).collect::<Vec<_>>(),
            round_trips,
            modes,
        )
    })
    .await
    .expect("joined");
    assert_eq!(modes, ("force_generic_plan".to_owned(), "auto".to_owned()));
    let n = |n: i64| Some(json!({ "n": n }));
    assert_eq!(answers, [n(4), n(4), n(2), n(4), None]);
    assert_eq!(round_trips, 1);
}

/// Batches of writes to named Maps (the Proxy and Matrix faces' records) read their Maps
/// together, then each Map's entries together, and see what earlier jobs of the batch wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_batches_read_their_maps_and_entries_ahead() {
    use ferrosync_core::error::ErrorCode;
    use ferrosync_core::model::{ItemKey, ObjectKind, ObjectRef};
    use ferrosync_core::store::{ObjectWrite, Store};
    use serde_json::json;

    let Some((store, svc, mut conn)) = fixture().await else { return };
    let batch = |writes: Vec<ObjectWrite>| Mutation::Batch { service: svc.clone(), writes, txn: None };
    let put =
        |map: &str, key: &str, v: i64| ObjectWrite::Put { map: map.into(), key: key.into(), data: json!({ "v": v }) };
    let create = |map: &str, key: &str| ObjectWrite::Create { map: map.into(), key: key.into(), data: json!({}) };
    store.execute(Actor::SYSTEM, batch(vec![put("m", "a", 1), put("x", "e0", 0)])).await.expect("made");

    let replace = ObjectWrite::Replace { map: "m".into(), key: "a".into(), data: json!({ "v": 2 }), revision: 0 };
    let jobs = [
        job(batch(vec![
            put("m", "b", 1),
            ObjectWrite::Remove { map: "x".into(), key: "e0".into() },
            put("x", "e1", 1),
        ])),
        job(batch(vec![replace, put("x", "e2", 2)])),
        // b was written by the first job.
        job(batch(vec![create("m", "b")])),
        job(batch(vec![create("n", "c")])),
    ];
    let epoch = store.epoch().to_owned();
    let (codes, round_trips) = tokio::task::spawn_blocking(move || {
        let sent = conn.sent;
        let results = commit_holding(&mut conn, &epoch, &jobs, &[0, 1, 2, 3]);
        (results.map(|r| r.iter().flatten().map(code).collect::<Vec<_>>()), conn.sent - sent)
    })
    .await
    .expect("joined");
    assert_eq!(codes, Some(vec![Ok(()), Ok(()), Err(ErrorCode::AlreadyExists), Ok(())]));
    // BEGIN, the service, m, x and n read ahead together, m's a and b with x's three entries,
    // n's c once n is made (the one read a Map not there yet costs), everything written in one
    // statement, COMMIT.
    assert_eq!(round_trips, 7);

    let entry = |map: &str, key: &str| {
        let (r, key) = (ObjectRef::UniqueName(map.into()), ItemKey::Key(key.into()));
        let store = &store;
        let svc = &svc;
        async move {
            store
                .named_item(svc, ObjectKind::Map, &r, &key)
                .await
                .expect("read")
                .map(|i| (serde_json::Value::clone(&i.data), i.revision))
        }
    };
    assert_eq!(entry("m", "a").await, Some((json!({ "v": 2 }), 1)));
    assert_eq!(entry("m", "b").await, Some((json!({ "v": 1 }), 0)));
    assert_eq!(entry("x", "e0").await, None);
    assert_eq!(entry("x", "e2").await, Some((json!({ "v": 2 }), 0)));
    assert_eq!(entry("n", "c").await, Some((json!({}), 0)));
}

/// A new database's objects are analysed once they fill, before autovacuum's first round: an
/// object named in a service of many objects of its kind is then found through the
/// `(service, kind, name)` index, not by walking every object of the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_databases_objects_are_analysed_once_they_fill() {
    let Some((_store, svc, mut conn)) = fixture().await else { return };
    let plan = tokio::task::spawn_blocking(move || {
        // Autovacuum analysing the table first would leave the store nothing due.
        conn.batch("ALTER TABLE objects SET (autovacuum_enabled = false)").expect("autovacuum off");
        let many = "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index,
                      date_created, date_updated, date_expires, created_by)
                    SELECT 'MP' || lpad(i::text, 32, '0'), $1, 3, 'm' || i, NULL, 0, 0, 0, 0, NULL, 'system'
                    FROM generate_series(1, 5000) AS i";
        conn.execute(many, &[&svc.as_str()]).expect("inserted");
        let analysed = "SELECT 1 FROM pg_stat_user_tables
                        WHERE schemaname = current_schema() AND relname = 'objects' AND last_analyze IS NOT NULL";
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while conn.query(analysed, &[]).expect("read").is_empty() {
            assert!(std::time::Instant::now() < deadline, "objects was not analysed");
            std::thread::sleep(Duration::from_millis(100));
        }
        conn.batch(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE q(text, int8, text) AS SELECT sid FROM objects WHERE service_sid = $1 AND kind = $2 AND unique_name = $3",
        )
        .expect("prepared");
        let rows = conn.query(&format!("EXPLAIN EXECUTE q('{svc}', 3, 'm42')"), &[]).expect("explained");
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
    })
    .await
    .expect("joined");
    assert!(plan.contains("objects_service_sid_kind_unique_name_key"), "{plan}");
}

/// A table that grows to several times what its statistics say is analysed again, so the plans
/// connections keep are made anew for its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_grows_is_analysed_again() {
    let Some((_store, svc, mut conn)) = fixture().await else { return };
    tokio::task::spawn_blocking(move || {
        let fill = |conn: &mut PgConn, from: i64, to: i64| {
            let many = "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index,
                          date_created, date_updated, date_expires, created_by)
                        SELECT 'MP' || lpad(i::text, 32, '0'), $1, 3, 'm' || i, NULL, 0, 0, 0, 0, NULL, 'system'
                        FROM generate_series($2::int8, $3::int8) AS i";
            conn.execute(many, &[&svc.as_str(), &from, &to]).expect("inserted");
        };
        let analysed = |conn: &mut PgConn, at_least: i64| -> f32 {
            let q = "SELECT s.analyze_count, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                     WHERE s.schemaname = current_schema() AND s.relname = 'objects'";
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let row = conn.query_opt(q, &[]).expect("read").expect("the table's statistics");
                let (count, rows): (i64, f32) = (row.get(0), row.get(1));
                if count >= at_least {
                    return rows;
                }
                assert!(std::time::Instant::now() < deadline, "objects was analysed {count} times, not {at_least}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        // Autovacuum analysing the table meanwhile would make the counts its and not the store's.
        conn.batch("ALTER TABLE objects SET (autovacuum_enabled = false)").expect("autovacuum off");
        fill(&mut conn, 1, 600);
        let first = analysed(&mut conn, 1);
        assert!((500.0..2_000.0).contains(&first), "analysed once it filled: {first} rows");
        fill(&mut conn, 601, 6_000);
        let second = analysed(&mut conn, 2);
        assert!(second >= 5_000.0, "analysed again once it grew: {second} rows");
    })
    .await
    .expect("joined");
}

/// The nodes of a cluster analyse a table one at a time: while another session (another node)
/// holds the table's lock, the store leaves the table to it, and analyses it once the lock is
/// let go and the table is still due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_another_node_is_analysing_is_left_to_it() {
    let Some((_store, svc, mut conn)) = fixture().await else { return };
    tokio::task::spawn_blocking(move || {
        let key = super::analyze::lock_key("objects");
        let locked = |conn: &mut PgConn, sql: &str| -> bool {
            conn.query_opt(&format!("SELECT {sql}({key})"), &[]).expect("locking").expect("a row").get(0)
        };
        assert!(locked(&mut conn, "pg_try_advisory_lock"), "the table's lock was free");
        // Autovacuum analysing the table meanwhile would leave the store nothing due: it is kept
        // off this database's table.
        conn.batch("ALTER TABLE objects SET (autovacuum_enabled = false)").expect("autovacuum off");
        let many = "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index,
                      date_created, date_updated, date_expires, created_by)
                    SELECT 'MP' || lpad(i::text, 32, '0'), $1, 3, 'm' || i, NULL, 0, 0, 0, 0, NULL, 'system'
                    FROM generate_series(1, 600) AS i";
        conn.execute(many, &[&svc.as_str()]).expect("inserted");
        // This session's counts reach the shared statistics when it next idles (not up to ten
        // seconds later): only then does the store see the table due.
        conn.batch("SELECT pg_stat_force_next_flush()").expect("flushed");
        let (changed, analyses) = (
            "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'objects'",
            "SELECT analyze_count FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'objects'",
        );
        let count = |conn: &mut PgConn, q: &str| -> i64 {
            conn.query_opt(q, &[]).expect("read").expect("the table's statistics").get(0)
        };
        let until = |conn: &mut PgConn, q: &str, at_least: i64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while count(conn, q) < at_least {
                assert!(std::time::Instant::now() < deadline, "{q} stayed under {at_least}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        until(&mut conn, changed, 600);
        // The store looks every two seconds: it found the table due twice at least.
        std::thread::sleep(Duration::from_secs(5));
        assert_eq!(count(&mut conn, analyses), 0, "analysed while another session held its lock");
        assert!(locked(&mut conn, "pg_advisory_unlock"), "the lock was still held here");
        until(&mut conn, analyses, 1);
    })
    .await
    .expect("joined");
}

/// A row written again stays on its page: each page keeps room for new versions, so updating a
/// row packed among others is a HOT update, which adds no index entry for a reader to walk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_packed_among_others_is_updated_on_its_own_page() {
    let Some((_store, svc, mut conn)) = fixture().await else { return };
    tokio::task::spawn_blocking(move || {
        let object = "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index,
                        date_created, date_updated, date_expires, created_by)
                      SELECT 'MP' || lpad(i::text, 32, '0'), $1, 3, 'm' || i, NULL, 0, 0, 0, 0, NULL, 'system'
                      FROM generate_series(1, 300) AS i";
        conn.execute(object, &[&svc.as_str()]).expect("objects");
        let items = "INSERT INTO items (object_sid, item_key, item_index, data, revision, date_created,
                       date_updated, date_expires, created_by)
                     SELECT 'MP' || lpad('1', 32, '0'), 'k' || lpad(i::text, 4, '0'), 0, repeat('x', 100), 0, 0, 0,
                       NULL, 'system'
                     FROM generate_series(1, 300) AS i";
        conn.execute(items, &[]).expect("items");
        let page = |conn: &mut PgConn, table: &str, key: &str| -> i64 {
            let q = format!("SELECT ((ctid::text::point)[0])::int8 FROM {table} WHERE {key}");
            conn.query(&q, &[]).expect("read")[0].get(0)
        };
        for (table, key, update) in [
            (
                "items",
                "item_key = 'k0002'",
                "UPDATE items SET revision = revision + 1, data = repeat('y', 100) WHERE item_key = 'k0002'",
            ),
            (
                "objects",
                "unique_name = 'm2'",
                "UPDATE objects SET revision = revision + 1, next_index = next_index + 1 WHERE unique_name = 'm2'",
            ),
        ] {
            let first = page(&mut conn, table, key);
            for _ in 0..5 {
                conn.execute(update, &[]).expect("updated");
            }
            assert_eq!(page(&mut conn, table, key), first, "{table}: the new versions stay on the row's page");
        }
    })
    .await
    .expect("joined");
}

/// Events kept without their head once the cluster says so: the switch reaches this node's
/// writer at its next batch and a node connecting later at its first; every event reads back
/// byte for byte as it was sent live, kept whole or short. Switched back, the short ones are
/// rewritten whole, a page of the log at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_kept_short_once_the_cluster_says_so_and_rewritten_whole_after() {
    use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode};
    use ferrosync_core::store::Store;
    use serde_json::json;

    let Some(url) = crate::testing::fresh_postgres_url().await else { return };
    let store = PgStore::connect(&url).await.expect("the store connects");
    let (svc, create) = new_service(false);
    store.execute(Actor::SYSTEM, create).await.expect("the service");
    let open = |n: &str| Mutation::OpenObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: Some(ObjectRef::UniqueName(n.into())),
        mode: OpenMode::OpenOrCreate,
        ttl: None,
        data: Some(json!({"n": 0})),
    };
    let update = |n: &str, v: u64| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::UniqueName(n.into()),
        data: Some(json!({"n": v, "text": "é \"quoted\""})),
        ttl: None,
        if_match: None,
    };
    let mut sent = Vec::new();
    async fn run(sent: &mut Vec<(u64, String)>, store: &PgStore, m: Mutation) {
        let applied = store.execute(Actor::SYSTEM, m).await.expect("applied");
        sent.extend(applied.stored.iter().map(|e| (e.seq, e.json.get().to_owned())));
    }
    assert_eq!(store.event_format().await.expect("read"), EventFormat::Whole, "whole until said otherwise");
    run(&mut sent, &store, open("a")).await;
    run(&mut sent, &store, update("a", 1)).await;

    store.set_event_format(EventFormat::Short).await.expect("set");
    assert_eq!(store.event_format().await.expect("read"), EventFormat::Short);
    run(&mut sent, &store, update("a", 2)).await;
    run(&mut sent, &store, open("b")).await;
    // Another node, connecting after the switch, keeps its first events short too.
    let other = PgStore::connect(&url).await.expect("another node");
    run(&mut sent, &other, update("b", 3)).await;
    run(&mut sent, &other, update("a", 4)).await;

    let mut conn = Some(
        tokio::task::spawn_blocking(move || connect(&parse_url(&url).expect("url")).expect("conn"))
            .await
            .expect("joined"),
    );
    let of_svc = svc.clone();
    let bodies = move |conn: &mut PgConn| -> Vec<(u64, String)> {
        let rows = conn
            .query("SELECT seq, body FROM events WHERE service_sid = $1 ORDER BY seq", &[&of_svc.as_str()])
            .expect("events");
        rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect()
    };
    let kept = blocking(&mut conn, bodies.clone()).await;
    assert_eq!(kept.len(), sent.len(), "one row per event sent");
    let short: Vec<u64> = kept.iter().filter(|(_, b)| !b.starts_with('{')).map(|(s, _)| *s).collect();
    let whole: Vec<u64> = kept.iter().filter(|(_, b)| b.starts_with('{')).map(|(s, _)| *s).collect();
    assert_eq!(whole.len(), 2, "the two events before the switch stay whole: {kept:?}");
    assert_eq!(short.len(), 4, "every event after it is short: {kept:?}");
    assert!(whole.iter().all(|w| short.iter().all(|s| w < s)));
    for (seq, body) in &kept {
        let (_, live) = sent.iter().find(|(s, _)| s == seq).expect("sent");
        if !body.starts_with('{') {
            assert!(live.ends_with(body.as_str()) && live.len() > body.len() + 100, "{body} is {live} less its head");
        }
    }
    let read_back = |events: Vec<StoredEvent>| -> Vec<(u64, String)> {
        events.iter().map(|e| (e.seq, e.json.get().to_owned())).collect()
    };
    let doc_a = store.object(&svc, ObjectKind::Document, &ObjectRef::UniqueName("a".into())).await.expect("read");
    let doc_a = doc_a.expect("a exists");
    for reader in [&store, &other] {
        assert_eq!(read_back(reader.events(&svc, 0, None, 100).await.expect("log")), sent, "the log as sent live");
        let of_a: Vec<_> = sent.iter().filter(|(_, j)| j.contains(doc_a.sid.as_str())).cloned().collect();
        assert_eq!(of_a.len(), 4);
        assert_eq!(read_back(reader.events(&svc, 0, Some(&doc_a.sid), 100).await.expect("a's log")), of_a);
    }

    // Back to whole: new events are whole, and the short ones are rewritten a page at a time.
    store.set_event_format(EventFormat::Whole).await.expect("set");
    run(&mut sent, &store, update("b", 5)).await;
    let epoch = store.epoch().to_owned();
    let (rewritten, pages) = blocking(&mut conn, move |conn| {
        let (mut total, mut pages, mut from) = (0, 0, None);
        loop {
            let (n, next) = format::rewrite_whole(conn, &epoch, from.take(), 2).expect("a page");
            (total, pages) = (total + n, pages + 1);
            match next {
                Some(next) => from = Some(next),
                None => return (total, pages),
            }
        }
    })
    .await;
    assert_eq!(rewritten, 4, "the four short events");
    assert!(pages >= 4, "seven events, two a page, so at least four pages: {pages}");
    let kept = blocking(&mut conn, bodies.clone()).await;
    assert_eq!(kept, sent, "every event kept whole, as sent");
    assert_eq!(read_back(other.events(&svc, 0, None, 100).await.expect("log")), sent);
    assert_eq!(store.rewrite_short_events().await.expect("again"), 0, "nothing left to rewrite");
    // The sync client is dropped off the runtime's threads, where it may block.
    let c = conn.take();
    tokio::task::spawn_blocking(move || drop(c)).await.expect("joined");
}

/// Runs `f` on the sync client off the runtime's threads, and puts the connection back.
async fn blocking<T: Send + 'static>(
    conn: &mut Option<PgConn>,
    f: impl FnOnce(&mut PgConn) -> T + Send + 'static,
) -> T {
    let mut c = conn.take().expect("the connection is back");
    let (c, t) = tokio::task::spawn_blocking(move || {
        let t = f(&mut c);
        (c, t)
    })
    .await
    .expect("joined");
    *conn = Some(c);
    t
}
