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
            settings: Default::default(),
        };
        store.execute(ferrosync_core::store::Actor::SYSTEM, m).await.expect("created");
        store.epoch().to_owned()
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("reopens");
    assert_eq!(store.epoch(), epoch);
    let found = store.service(&ferrosync_core::model::ObjectRef::UniqueName("kept".into())).await.expect("reads");
    assert!(found.is_some());
}

/// A data file written before schema versions were recorded (version 0, no settings column)
/// is migrated in place on open: its services keep their data and gain default settings.
#[tokio::test]
async fn an_unversioned_data_file_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
             CREATE TABLE services (sid TEXT PRIMARY KEY, unique_name TEXT UNIQUE, friendly_name TEXT,
               acl_enabled INTEGER NOT NULL, revision INTEGER NOT NULL, date_created INTEGER NOT NULL,
               date_updated INTEGER NOT NULL, head_seq INTEGER NOT NULL DEFAULT 0,
               pruned_seq INTEGER NOT NULL DEFAULT 0) STRICT;
             INSERT INTO services (sid, unique_name, acl_enabled, revision, date_created, date_updated)
               VALUES ('IS0123456789abcdef0123456789abcdef', 'old', 1, 3, 1000, 2000);",
        )
        .expect("old schema");
    }
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    let found = store
        .service(&ferrosync_core::model::ObjectRef::UniqueName("old".into()))
        .await
        .expect("reads")
        .expect("the old service is still there");
    assert!(found.acl_enabled);
    assert_eq!(found.revision, 3);
    assert_eq!(found.settings, ferrosync_core::model::ServiceSettings::default());
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    assert_eq!(version, 8);
}

/// A version-6 file kept each service's head in a column; from version 7 the head is read from
/// the log. Migrating keeps every head where it was, including one whose events were all pruned
/// (it becomes the pruned horizon), so no sequence number is handed out twice.
#[tokio::test]
async fn heads_survive_the_move_from_a_column_to_the_log() {
    use ferrosync_core::model::ObjectRef;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v6.db");
    let (live, pruned) = ("IS00000000000000000000000000000001", "IS00000000000000000000000000000002");
    {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("opens");
        // Back to version 6's shape, as an older binary left it.
        conn.execute_batch(UNDO_V8).expect("version 7");
        conn.execute_batch(&format!(
            "ALTER TABLE services ADD COLUMN head_seq INTEGER NOT NULL DEFAULT 0;
             PRAGMA user_version = 6;
             INSERT INTO services (sid, acl_enabled, revision, date_created, date_updated, head_seq, pruned_seq)
               VALUES ('{live}', 0, 0, 0, 0, 3, 1), ('{pruned}', 0, 0, 0, 0, 9, 4);
             INSERT INTO events (service_sid, seq, object_sid, date, body) VALUES
               ('{live}', 2, 'ET00000000000000000000000000000001', 0, '{{}}'),
               ('{live}', 3, 'ET00000000000000000000000000000001', 0, '{{}}');"
        ))
        .expect("a version-6 file");
    }
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    for (sid, head, horizon) in [(live, 3, 1), (pruned, 9, 9)] {
        let s = store
            .service(&ObjectRef::Sid(ferrosync_core::sid::Sid::parse(sid).expect("sid")))
            .await
            .expect("reads")
            .expect("kept");
        assert_eq!((s.head_seq, s.pruned_seq), (head, horizon), "{sid}");
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('services')")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .expect("columns");
    assert!(!columns.iter().any(|c| c == "head_seq"), "{columns:?}");
}

/// What version 8 added, taken away again: a file as a version-7 binary left it.
const UNDO_V8: &str = "DROP TABLE object_tombstones;
     ALTER TABLE objects DROP COLUMN last_seq;
     ALTER TABLE events DROP COLUMN prev_seq;
     CREATE INDEX events_by_object ON events (object_sid, seq);
     PRAGMA user_version = 7;";

/// A version-7 file found an object's stream through an index over the log; from version 8 each
/// event links to its object's previous one. Migrating links every stored event, a removed
/// object's included, and later writes continue the chains.
#[tokio::test]
async fn object_streams_survive_the_move_from_an_index_to_links() {
    use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode};
    use ferrosync_core::store::{Actor, Mutation, Outcome};
    use ferrosync_core::{Sid, SidKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v7.db");
    let svc = Sid::new(SidKind::Service);
    let create = |name: &str| Mutation::OpenObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: Some(ObjectRef::UniqueName(name.into())),
        mode: OpenMode::OpenOrCreate,
        ttl: None,
        data: None,
    };
    let update = |doc: &Sid, n: u32| Mutation::UpdateObject {
        service: svc.clone(),
        kind: ObjectKind::Document,
        target: ObjectRef::Sid(doc.clone()),
        data: Some(serde_json::json!({ "n": n })),
        ttl: None,
        if_match: None,
    };
    let (a, b) = {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        let m = Mutation::CreateService {
            sid: svc.clone(),
            unique_name: None,
            friendly_name: None,
            acl_enabled: false,
            settings: Default::default(),
        };
        store.execute(Actor::SYSTEM, m).await.expect("service");
        let mut docs = Vec::new();
        for name in ["a", "b"] {
            match store.execute(Actor::SYSTEM, create(name)).await.expect("created").outcome {
                Outcome::Object { object, .. } => docs.push(object.sid),
                other => panic!("unexpected {other:?}"),
            }
        }
        for n in 0..6 {
            store.execute(Actor::SYSTEM, update(&docs[(n % 2) as usize], n)).await.expect("updated");
        }
        let remove = Mutation::RemoveObject {
            service: svc.clone(),
            kind: ObjectKind::Document,
            target: ObjectRef::Sid(docs[1].clone()),
            if_match: None,
        };
        store.execute(Actor::SYSTEM, remove).await.expect("removed");
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(UNDO_V8).expect("a version-7 file");
        (docs[0].clone(), docs[1].clone())
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    store.execute(Actor::SYSTEM, update(&a, 100)).await.expect("updated after the move");
    let log = store.events(&svc, 0, None, 100).await.expect("log");
    assert_eq!(log.len(), 2 + 6 + 1 + 1);
    for doc in [&a, &b] {
        let own: Vec<u64> = log.iter().filter(|e| &e.object_sid == doc).map(|e| e.seq).collect();
        for after in 0..=log.len() as u64 {
            let got: Vec<u64> =
                store.events(&svc, after, Some(doc), 100).await.expect("stream").iter().map(|e| e.seq).collect();
            let expected: Vec<u64> = own.iter().copied().filter(|&s| s > after).collect();
            assert_eq!(got, expected, "{doc} after {after}");
        }
    }
    assert_eq!(store.events(&svc, 0, Some(&a), 100).await.expect("stream").len(), 1 + 3 + 1);
    assert_eq!(store.events(&svc, 0, Some(&b), 100).await.expect("stream").len(), 1 + 3 + 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let index: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'events_by_object'", [], |r| r.get(0))
        .expect("schema");
    assert_eq!(index, 0, "the index is gone");
}
