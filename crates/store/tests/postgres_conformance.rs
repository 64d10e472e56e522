//! The conformance suite against PostgreSQL (skipped, saying so, when no test server is set),
//! and what only a shared store must show: two nodes on one database.

use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::{Actor, Mutation, Outcome, Store};
use ferrosync_store::PgStore;
use ferrosync_store::postgres::EventFormat;
use ferrosync_store::testing::fresh_postgres_url;
use std::sync::Arc;

/// The suite on stores each on a fresh schema, keeping new events in `format`.
async fn conformance(format: EventFormat) {
    if fresh_postgres_url().await.is_none() {
        return;
    }
    ferrosync_store::conformance::run_all(|| async {
        let url = fresh_postgres_url().await.expect("test server configured");
        let store = PgStore::connect(&url).await.expect("connects");
        store.set_event_format(format).await.expect("the event format");
        Arc::new(store) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    conformance(EventFormat::Whole).await;
}

/// The same suite with the cluster keeping events without their head: every read of the log
/// must give back the text as it was sent live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_keeping_events_short_passes_the_conformance_suite() {
    conformance(EventFormat::Short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_epoch_the_data_and_one_sequence() {
    let Some(url) = fresh_postgres_url().await else { return };
    let a = PgStore::connect(&url).await.expect("node a");
    let b = PgStore::connect(&url).await.expect("node b");
    assert_eq!(a.epoch(), b.epoch(), "one database, one epoch");
    let mut hints = b.change_hints().expect("a shared store hints");

    let service = Sid::new(SidKind::Service);
    a.execute(
        Actor::SYSTEM,
        Mutation::CreateService {
            sid: service.clone(),
            unique_name: None,
            friendly_name: None,
            acl_enabled: false,
            settings: Default::default(),
        },
    )
    .await
    .expect("created on a");
    let open = |name: &str| Mutation::OpenObject {
        service: service.clone(),
        kind: ObjectKind::Document,
        target: Some(ObjectRef::UniqueName(name.into())),
        mode: OpenMode::OpenOrCreate,
        ttl: None,
        data: None,
    };
    // Writes alternate between the nodes; the service's sequence stays gapless and ordered.
    let mut handles = Vec::new();
    let (a, b) = (Arc::new(a), Arc::new(b));
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let m = open(&format!("doc-{i}"));
        handles.push(tokio::spawn(async move { node.execute(Actor::SYSTEM, m).await }));
    }
    for h in handles {
        let applied = h.await.expect("joined").expect("applied");
        assert!(matches!(applied.outcome, Outcome::Object { created: true, .. }));
    }
    let events = b.events(&service, 0, None, 1000).await.expect("events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());

    // b hears of a's commits (a hint may also be b's own; both name this service).
    let hint = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match hints.recv().await {
                Ok(h) if h.service == service => return h,
                Ok(_) => continue,
                Err(e) => panic!("hint stream ended: {e}"),
            }
        }
    })
    .await
    .expect("a hint within 5 s");
    assert!(hint.seq >= 1 && hint.seq <= 40);

    // The same unique name created on both nodes at once: one object, both see it.
    let (x, y) = tokio::join!(a.execute(Actor::SYSTEM, open("shared")), b.execute(Actor::SYSTEM, open("shared")));
    let sid_of = |o: Outcome| match o {
        Outcome::Object { object, .. } => object.sid,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(sid_of(x.expect("a opens").outcome), sid_of(y.expect("b opens").outcome));
}
