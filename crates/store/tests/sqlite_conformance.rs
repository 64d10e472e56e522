//! The conformance suite against the embedded SQLite store, on real files.

use ferrosync_core::store::Store;
use ferrosync_store::sqlite::{Durability, SqliteStore};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    ferrosync_store::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("store-{n}.db"));
        async move { Arc::new(SqliteStore::open(&path, Durability::Full).expect("opens")) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_the_epoch_and_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let epoch = {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        let sid = ferrosync_core::Sid::new(ferrosync_core::SidKind::Service);
        let m = ferrosync_core::store::Mutation::CreateService {
            sid,
            unique_name: Some("kept".into()),
            friendly_name: None,
            acl_enabled: false,
        };
        store.execute(ferrosync_core::store::Actor::SYSTEM, m).await.expect("created");
        store.epoch().to_owned()
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("reopens");
    assert_eq!(store.epoch(), epoch);
    let found = store.service(&ferrosync_core::model::ObjectRef::UniqueName("kept".into())).await.expect("reads");
    assert!(found.is_some());
}
