//! Commits in place on the caller's thread, hand-overs to the writer thread and their batches.

use super::*;

/// The thread each committed mutation's observers were told on, with its first event's number.
#[derive(Default)]
struct Tellers(std::sync::Mutex<Vec<(u64, Option<String>)>>);

impl ferrosync_core::store::CommitObserver for Tellers {
    fn committed(&self, applied: &Applied) {
        let seq = applied.stored.first().map_or(0, |e| e.seq);
        let thread = std::thread::current().name().map(str::to_owned);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((seq, thread));
    }
}

impl Tellers {
    fn watch(store: &SqliteStore) -> Arc<Tellers> {
        use ferrosync_core::store::{CommitObserver, Store};
        let tellers = Arc::new(Tellers::default());
        let weak: std::sync::Weak<dyn CommitObserver> = Arc::downgrade(&(tellers.clone() as Arc<dyn CommitObserver>));
        store.observe_commits(weak);
        tellers
    }

    fn threads(&self) -> Vec<Option<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, t)| t.clone()).collect()
    }
}

const WRITER_THREAD: &str = "ferrosync-sqlite-writer";

/// Without an fsync per commit, a write that finds the writer idle and nothing queued is
/// committed on the caller's own thread; with one, every write goes to the writer thread.
#[test]
fn a_lone_write_is_committed_in_place_unless_commits_wait_for_the_disk() {
    use ferrosync_core::store::Store;
    let caller = std::thread::current().name().map(str::to_owned);
    for (durability, expected) in [(Durability::Normal, caller), (Durability::Full, Some(WRITER_THREAD.to_owned()))] {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(async {
            let (_dir, store, svc) = store_with_service(durability).await;
            let tellers = Tellers::watch(&store);
            for i in 0..3 {
                store
                    .execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, &format!("m{i}")))
                    .await
                    .expect("opens");
            }
            assert_eq!(tellers.threads(), vec![expected.clone(); 3], "{durability:?}");
            assert_eq!(store.queued.load(Ordering::Acquire), 0);
        });
    }
}

/// A tail of the log to copy leaves lone writes committed in place: the checkpointer's nudge
/// wakes the writer thread, which copies the tail and starts the log over between them, and
/// commits nothing itself.
#[tokio::test]
async fn a_tail_to_copy_leaves_lone_writes_in_place_and_a_nudge_has_the_writer_thread_copy_it() {
    use ferrosync_core::store::Store;
    let caller = std::thread::current().name().map(str::to_owned);
    let (dir, store, svc) = store_with_service(Durability::Normal).await;
    let tellers = Tellers::watch(&store);
    let open = |name: &str| store.execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, name));
    for i in 0..3 {
        open(&format!("m{i}")).await.expect("opens");
    }
    // The log's salts (header bytes 16..24) change whenever it starts over.
    let salts = || std::fs::read(dir.path().join("data.db-wal")).expect("the log")[16..24].to_vec();
    let before = salts();
    store.tail.store(true, Ordering::Release);
    open("m3").await.expect("opens");
    assert_eq!(tellers.threads(), vec![caller; 4], "committed in place, a tail to copy or not");

    // The checkpointer's own pass, running at that moment, makes the writer's copy wait for
    // the next turn: asked again then, as the checkpointer would.
    for attempt in 0.. {
        assert!(attempt < 20, "the writer thread never started the log over");
        store.tail.store(true, Ordering::Release);
        store.writer.try_send(WriteJob::nudge()).expect("the queue has room");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.tail.load(Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the writer thread never copied the tail");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if salts() != before {
            break;
        }
    }
    assert_eq!(tellers.threads().len(), 4, "the nudge committed nothing");
    assert_eq!(store.queued.load(Ordering::Acquire), 0);
}

/// Writes that arrive together share the writer thread's batch: the first, holding the turn,
/// finds the others queued behind it and joins them at the head of their batch, so every write
/// is committed in the order it reached the store.
#[tokio::test]
async fn writes_that_arrive_together_share_a_batch_in_the_order_they_came() {
    use ferrosync_core::store::Store;
    let (_dir, store, svc) = store_with_service(Durability::Normal).await;
    let tellers = Tellers::watch(&store);
    // Spawned in order on this one thread, and run in that order.
    let writes: Vec<_> = (0..8)
        .map(|i| {
            let (store, svc) = (store.clone(), svc.clone());
            tokio::spawn(async move {
                store.execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, &format!("m{i}"))).await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for write in writes {
        let applied = write.await.expect("the write ran").expect("the write commits");
        seqs.push(applied.stored.first().map(|e| e.seq).expect("an event"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "committed in the order they came: {seqs:?}");
    assert_eq!(tellers.threads(), vec![Some(WRITER_THREAD.to_owned()); 8], "all on the writer thread");
    assert_eq!(store.queued.load(Ordering::Acquire), 0, "every queued write was counted off");
}

/// Two callers can hand their jobs over before the writer thread's next batch: one that saw
/// nothing queued may take the turn just after another handed over, find writes queued, and
/// hand over in turn. Both are committed, at that batch's head in the order they held the
/// turn, and both are answered.
#[tokio::test]
async fn jobs_handed_over_by_two_callers_before_the_next_batch_are_both_committed_and_answered() {
    use ferrosync_core::store::Store;
    let (_dir, store, svc) = store_with_service(Durability::Normal).await;
    let tellers = Tellers::watch(&store);
    let mut writer = store.turn.clone().lock_owned().await;
    let mut answers = Vec::new();
    for i in 0..2 {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = WriteJob {
            actor: Actor::SYSTEM,
            mutation: Some(open_object(&svc, ObjectKind::Map, &format!("m{i}"))),
            reply: Some(reply),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        // As `write` does: counted, then handed over, while the turn is held.
        store.queued.fetch_add(1, Ordering::AcqRel);
        writer.hand_over(job);
        answers.push(rx);
    }
    drop(writer);
    // A write queued behind them wakes the writer thread, whose batch they head.
    let last = store.execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, "m2")).await.expect("m2 commits");
    let mut seqs = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let applied = answer.await.unwrap_or_else(|_| panic!("m{i} is answered")).expect("m{i} commits");
        seqs.push(applied.stored.first().map(|e| e.seq).expect("an event"));
    }
    seqs.push(last.stored.first().map(|e| e.seq).expect("an event"));
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "committed in the order they held the turn: {seqs:?}");
    assert_eq!(tellers.threads(), vec![Some(WRITER_THREAD.to_owned()); 3], "all on the writer thread");
    assert_eq!(store.queued.load(Ordering::Acquire), 0, "every job handed over was counted off");
}

/// Many writers at once, each chaining conditional updates on its own document, on a runtime
/// of two threads, with bookkeeping writes beside them: commits in place, hand-overs and the
/// writer thread's batches mix, and no write overtakes one its writer made before it, none is
/// lost, and the log stays numbered without gaps.
#[test]
fn chained_conditional_writes_from_many_writers_at_once_all_land_in_order() {
    use ferrosync_core::store::Store;
    const WRITERS: usize = 16;
    const UPDATES: u64 = 60;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (_dir, store, svc) = store_with_service(Durability::Normal).await;
        let tellers = Tellers::watch(&store);
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (store, svc) = (store.clone(), svc.clone());
            tasks.push(tokio::spawn(async move {
                let name = format!("d{w}");
                let opened = store
                    .execute(
                        Actor::SYSTEM,
                        Mutation::OpenObject {
                            service: svc.clone(),
                            kind: ObjectKind::Document,
                            target: Some(ObjectRef::UniqueName(name.clone())),
                            mode: ferrosync_core::model::OpenMode::CreateNew,
                            ttl: None,
                            data: Some(serde_json::json!({ "n": 0 })),
                        },
                    )
                    .await
                    .expect("the document");
                let first = match opened.outcome {
                    ferrosync_core::store::Outcome::Object { object, .. } => object.revision,
                    other => panic!("an object, not {other:?}"),
                };
                let mut revision = first;
                for n in 1..=UPDATES {
                    let updated = store
                        .execute(
                            Actor::SYSTEM,
                            Mutation::UpdateObject {
                                service: svc.clone(),
                                kind: ObjectKind::Document,
                                target: ObjectRef::UniqueName(name.clone()),
                                data: Some(serde_json::json!({ "n": n })),
                                ttl: None,
                                if_match: Some(revision),
                            },
                        )
                        .await
                        .unwrap_or_else(|e| panic!("{name}'s update {n} at revision {revision}: {e}"));
                    revision = match updated.outcome {
                        ferrosync_core::store::Outcome::Object { object, .. } => object.revision,
                        other => panic!("an object, not {other:?}"),
                    };
                }
                (first, revision)
            }));
        }
        // Bookkeeping writes take turns with the commits.
        let bookkeeping = {
            let (store, svc) = (store.clone(), svc.clone());
            tokio::spawn(async move {
                for n in 0..40 {
                    let t = |ms: i64| Timestamp(ms);
                    store.take_log_lease("test", &svc, "node", t(n), t(n + 30_000)).await.expect("a lease");
                }
            })
        };
        for task in tasks {
            let (first, last) = task.await.expect("the writer ran");
            assert_eq!(last, first + UPDATES, "each update moved its document on by one");
        }
        bookkeeping.await.expect("bookkeeping ran");
        // The log holds every write, numbered without gaps, in the order they were told.
        let told: Vec<u64> = tellers.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(s, _)| *s).collect();
        assert_eq!(told.len(), WRITERS * (1 + UPDATES as usize));
        assert!(told.windows(2).all(|w| w[1] == w[0] + 1), "told in commit order, without gaps");
        assert_eq!(store.queued.load(Ordering::Acquire), 0);
    });
}

/// A write that would be committed in place but finds the file's write lock held by another
/// connection (another process's, say) waits for it on the writer thread: the runtime's thread
/// never sleeps in SQLite's busy handler.
#[tokio::test]
async fn a_write_that_meets_another_connections_lock_waits_on_the_writer_thread() {
    use ferrosync_core::store::Store;
    let (dir, store, svc) = store_with_service(Durability::Normal).await;
    let tellers = Tellers::watch(&store);
    let other = Connection::open(dir.path().join("data.db")).expect("another connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("the other connection takes the write lock");
    let started = std::time::Instant::now();
    let write = tokio::spawn({
        let (store, svc) = (store.clone(), svc.clone());
        async move { store.execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, "m")).await }
    });
    // This test's one thread runs the runtime: it stays free while the write waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    other.execute_batch("COMMIT").expect("the other connection lets go");
    write.await.expect("the write ran").expect("the write commits once the lock is free");
    // Held in SQLite's busy handler, this thread would have slept out the writer's whole busy
    // timeout before the lock could be let go (and the write then handed over all the same).
    assert!(started.elapsed() < BUSY_TIMEOUT, "the runtime's thread waited out the busy timeout");
    assert_eq!(tellers.threads(), vec![Some(WRITER_THREAD.to_owned())]);
    assert_eq!(store.queued.load(Ordering::Acquire), 0);
}

/// A writer alone stops letting the runtime run other requests before each commit, all but one
/// write in a probe's span; writes that then come together are noticed within that span, and
/// share the writer thread's batches again.
#[tokio::test]
async fn writes_that_come_together_after_a_long_run_alone_share_batches_again() {
    use super::super::company::PROBE;
    use ferrosync_core::store::Store;
    let (_dir, store, svc) = store_with_service(Durability::Normal).await;
    let mut n = 0;
    let mut open = |store: Arc<SqliteStore>| {
        n += 1;
        let svc = svc.clone();
        async move { store.execute(Actor::SYSTEM, open_object(&svc, ObjectKind::Map, &format!("m{n}"))).await }
    };
    for _ in 0..40 {
        open(store.clone()).await.expect("a lone write commits");
    }
    let mut looked = 0;
    for _ in 0..PROBE {
        looked += usize::from(store.company.worth_looking());
        open(store.clone()).await.expect("a lone write commits");
    }
    assert_eq!(looked, 1, "alone, one write in a probe's span looks for others");

    let tellers = Tellers::watch(&store);
    let mut batched = Vec::new();
    for _ in 0..3 {
        // Spawned in order on this one thread, and run in that order.
        let writes: Vec<_> = (0..PROBE).map(|_| tokio::spawn(open(store.clone()))).collect();
        for write in writes {
            write.await.expect("the write ran").expect("the write commits");
        }
        let mut told = tellers.0.lock().unwrap_or_else(|e| e.into_inner());
        batched.push(told.iter().filter(|(_, thread)| thread.as_deref() == Some(WRITER_THREAD)).count());
        told.clear();
    }
    let all = PROBE as usize;
    assert!(batched[0] > 0, "the probe among the first writes found the others: {batched:?}");
    assert_eq!(batched[1..], [all, all], "the rounds after it were batched whole");
    assert!(store.company.worth_looking());
}
