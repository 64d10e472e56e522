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

/// A store on a fresh schema with one service, and a connection of its own to run batches on
/// directly (the store's writer stays idle); `None` when no test server is set.
async fn fixture() -> Option<(PgStore, Sid, PgConn)> {
    use ferrosync_core::store::Store;
    let url = crate::testing::fresh_postgres_url().await?;
    let store = PgStore::connect(&url).await.expect("the store connects");
    let svc = Sid::new(ferrosync_core::sid::SidKind::Service);
    let create = Mutation::CreateService {
        sid: svc.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: Default::default(),
    };
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
    assert_eq!((d.data, d.revision), (Some(json!({ "n": 2 })), r0 + 2));
    let e = store.object(&svc, ObjectKind::Document, &name("e")).await.expect("read").expect("e");
    assert_eq!(e.data, Some(json!({ "x": 1 })));

    // A Map entry written, then a key already taken: the job cannot be undone by dropping what
    // it held, so the batch runs again with savepoints.
    let create = |keys: &[&str]| Mutation::Batch {
        service: svc.clone(),
        writes: keys
            .iter()
            .map(|k| ObjectWrite::Create { map: "m".into(), key: (*k).into(), data: json!({}) })
            .collect(),
        txn: None,
    };
    store.execute(Actor::SYSTEM, create(&["a"])).await.expect("a");
    let jobs = [job(create(&["b"])), job(create(&["c", "a"])), job(update(name("d"), json!({ "n": 4 }), Some(r0 + 2)))];
    // Alone, such a job is answered at once: the transaction's rollback undoes it exactly.
    let lone = [job(create(&["x", "a"]))];
    let (epoch2, mut held) = (epoch.clone(), conn);
    let (holding, codes, lone) = tokio::task::spawn_blocking(move || {
        let order: Vec<usize> = (0..jobs.len()).collect();
        let holding = commit_holding(&mut held, &epoch2, &jobs, &order).is_some();
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
    for (key, kept) in [("a", true), ("b", true), ("c", false), ("x", false)] {
        let item = store.item(&m.sid, &ItemKey::Key(key.into())).await.expect("read");
        assert_eq!(item.is_some(), kept, "item {key}");
    }
    let d = store.object(&svc, ObjectKind::Document, &name("d")).await.expect("read").expect("d");
    assert_eq!((d.data, d.revision), (Some(json!({ "n": 4 })), r0 + 3));

    let seqs: Vec<u64> = store.events(&svc, 0, None, 100).await.expect("events").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "numbered without gaps");
    // d opened, two updates, e opened and updated; m and a; b and the last update of d.
    assert_eq!(seqs.len(), 9, "{seqs:?}");
}
