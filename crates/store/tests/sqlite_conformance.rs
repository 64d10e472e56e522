//! The conformance suite against the embedded SQLite store, on real files.

use ferrosync_core::store::Store;
use ferrosync_store::sqlite::{Durability, SqliteStore};
use ferrosync_store::testing::Docs;
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
    assert_eq!(version, 13);
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
        conn.execute_batch(UNDO_V12).expect("version 11");
        conn.execute_batch(UNDO_V9).expect("version 8");
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

/// What version 12 changed, undone: a file as a version-11 binary left it, its log keyed by
/// (service_sid, seq) without row ids.
const UNDO_V12: &str = "DROP TRIGGER services_drop_log;
     CREATE TABLE events_v11 (
         service_sid TEXT NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
         seq INTEGER NOT NULL,
         object_sid TEXT NOT NULL,
         date INTEGER NOT NULL,
         body TEXT NOT NULL,
         prev_seq INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (service_sid, seq)
     ) STRICT, WITHOUT ROWID;
     INSERT INTO events_v11 SELECT s.sid, e.id - (s.num << 44), e.object_sid, e.date, e.body, e.prev_seq
       FROM events e JOIN services s ON s.num = e.id >> 44;
     DROP TABLE events;
     ALTER TABLE events_v11 RENAME TO events;
     DROP INDEX services_by_num;
     ALTER TABLE services DROP COLUMN num;
     PRAGMA user_version = 11;";

/// What version 9 added, taken away again: a file as a version-8 binary left it. (Its trigger
/// is gone since version 11, and version 10's index goes with the table.)
const UNDO_V9: &str = "DROP TABLE object_marks;
     ALTER TABLE objects DROP COLUMN stream_len;
     PRAGMA user_version = 8;";

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
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v7.db");
    let (docs, a, b) = {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        let docs = Docs::create_service(&store).await;
        let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
        for n in 0..6 {
            docs.update(&store, if n % 2 == 0 { &a } else { &b }, n).await;
        }
        docs.remove(&store, &b).await;
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(UNDO_V12).expect("a version-11 file");
        conn.execute_batch(UNDO_V9).expect("a version-8 file");
        conn.execute_batch(UNDO_V8).expect("a version-7 file");
        (docs, a, b)
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    docs.update(&store, &a, 100).await;
    let svc = &docs.svc;
    assert_eq!(store.events(svc, 0, None, 100).await.expect("log").len(), 2 + 6 + 1 + 1);
    docs.check_streams(&store, &[&a, &b]).await;
    assert_eq!(store.events(svc, 0, Some(&a), 100).await.expect("stream").len(), 1 + 3 + 1);
    assert_eq!(store.events(svc, 0, Some(&b), 100).await.expect("stream").len(), 1 + 3 + 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let index: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'events_by_object'", [], |r| r.get(0))
        .expect("schema");
    assert_eq!(index, 0, "the index is gone");
}

/// The positions of an object's marks and the events they name.
fn marks(path: &std::path::Path, doc: &ferrosync_core::Sid) -> Vec<(i64, u64)> {
    let conn = rusqlite::Connection::open(path).expect("opens");
    conn.prepare("SELECT ord, seq FROM object_marks WHERE object_sid = ?1 ORDER BY seq")
        .and_then(|mut st| st.query_map([doc.as_str()], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?.collect())
        .expect("marks")
}

/// A version-8 file had links and no marks. Migrating marks every 32nd stored event of each
/// stream and counts each object's events, and later writes go on counting from there.
#[tokio::test]
async fn marks_arrive_on_a_version_8_file_and_later_writes_keep_their_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v8.db");
    let (docs, a, b) = {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        let docs = Docs::create_service(&store).await;
        let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
        for n in 0..90 {
            docs.update(&store, if n % 3 == 0 { &b } else { &a }, n).await;
        }
        docs.remove(&store, &b).await;
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(UNDO_V12).expect("a version-11 file");
        conn.execute_batch(UNDO_V9).expect("a version-8 file");
        (docs, a, b)
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    docs.check_streams(&store, &[&a, &b]).await;
    for n in 0..40 {
        docs.update(&store, &a, 100 + n).await;
    }
    docs.check_streams(&store, &[&a, &b]).await;
    let log = store.events(&docs.svc, 0, None, 10_000).await.expect("log");
    let own: Vec<u64> = log.iter().filter(|e| e.object_sid == a).map(|e| e.seq).collect();
    assert_eq!(own.len(), 1 + 60 + 40);
    let expected: Vec<(i64, u64)> = [32, 64, 96].iter().map(|&ord| (ord, own[ord as usize - 1])).collect();
    drop(store);
    assert_eq!(marks(&path, &a), expected, "marks from the migration, then from the writes");
    assert_eq!(marks(&path, &b).len(), 1, "b's 32 events, its removal included");
}

/// Marks only choose where a read starts walking: a mark whose position is wrong makes the read
/// walk further, never return fewer or other events.
#[tokio::test]
async fn a_wrong_mark_costs_a_longer_walk_not_a_wrong_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let store = SqliteStore::open(&path, Durability::Full).expect("opens");
    let docs = Docs::create_service(&store).await;
    let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
    for n in 0..150 {
        docs.update(&store, if n % 4 == 0 { &b } else { &a }, n).await;
    }
    let before = marks(&path, &a);
    assert_eq!(before.iter().map(|m| m.0).collect::<Vec<_>>(), [32, 64, 96]);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    // The second mark claims to be 100 events further on than it is, and one of b's events is
    // marked as a's.
    conn.execute("UPDATE object_marks SET ord = ord + 100 WHERE object_sid = ?1 AND ord = 64", [a.as_str()])
        .expect("damaged");
    let b_last = store.events(&docs.svc, 0, Some(&b), 1_000).await.expect("b's stream").last().expect("b's events").seq;
    conn.execute(
        "INSERT INTO object_marks (service_sid, object_sid, seq, ord) VALUES (?1, ?2, ?3, 200)",
        rusqlite::params![docs.svc.as_str(), a.as_str(), b_last as i64],
    )
    .expect("a stray mark");
    docs.check_streams(&store, &[&a, &b]).await;
}

/// A version-11 file kept its log keyed by (service_sid, seq); from version 12 an event's row id
/// is its service's number and its sequence number. Migrating numbers the services that exist,
/// keeps every service's log, head and streams, and later services take the lowest number free.
#[tokio::test]
async fn logs_survive_the_move_to_row_ids() {
    use ferrosync_core::model::ObjectRef;
    use ferrosync_core::store::{Actor, Mutation};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v11.db");
    let remove = |svc: &ferrosync_core::Sid| Mutation::RemoveService { service: svc.clone() };
    let (kept, before) = {
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        let services = [Docs::create_service(&store).await, Docs::create_service(&store).await];
        let gone = Docs::create_service(&store).await;
        let mut kept = Vec::new();
        for (i, docs) in services.into_iter().enumerate() {
            let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
            for n in 0..(40 + 30 * i as u32) {
                docs.update(&store, if n % 3 == 0 { &b } else { &a }, n).await;
            }
            docs.remove(&store, &b).await;
            kept.push((docs, a, b));
        }
        gone.create(&store, "a").await;
        store.execute(Actor::SYSTEM, remove(&gone.svc)).await.expect("removed");
        let mut before = Vec::new();
        for (docs, ..) in &kept {
            before.push(store.events(&docs.svc, 0, None, 1_000).await.expect("log"));
        }
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(UNDO_V12).expect("a version-11 file");
        (kept, before)
    };
    let store = SqliteStore::open(&path, Durability::Full).expect("migrates");
    for ((docs, a, b), before) in kept.iter().zip(&before) {
        let after = store.events(&docs.svc, 0, None, 1_000).await.expect("log");
        let seqs = |log: &[ferrosync_core::store::StoredEvent]| log.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&after), seqs(before), "{}", docs.svc);
        assert!(after.iter().zip(before).all(|(x, y)| x.json.get() == y.json.get() && x.object_sid == y.object_sid));
        let service = store.service(&ObjectRef::Sid(docs.svc.clone())).await.expect("reads").expect("kept");
        assert_eq!(service.head_seq, before.len() as u64);
        docs.check_streams(&store, &[a, b]).await;
        docs.update(&store, a, 1_000).await;
        let last = store.events(&docs.svc, before.len() as u64, None, 10).await.expect("log");
        assert_eq!(last.iter().map(|e| e.seq).collect::<Vec<_>>(), [before.len() as u64 + 1]);
    }
    // The two kept services took 1 and 2; a new one takes 3, and after the first is removed,
    // the next takes 1 again, starting an empty log.
    let numbers = |path: &std::path::Path| -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(path).expect("opens");
        conn.prepare("SELECT sid, num FROM services ORDER BY num")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("numbers")
    };
    let third = Docs::create_service(&store).await;
    let expected = [&kept[0].0.svc, &kept[1].0.svc, &third.svc].map(|s| s.to_string());
    assert_eq!(numbers(&path), expected.iter().cloned().zip(1..).collect::<Vec<_>>());
    store.execute(Actor::SYSTEM, remove(&kept[0].0.svc)).await.expect("removed");
    let fourth = Docs::create_service(&store).await;
    assert_eq!(numbers(&path)[0], (fourth.svc.to_string(), 1));
    assert!(store.events(&fourth.svc, 0, None, 10).await.expect("log").is_empty());
    let doc = fourth.create(&store, "a").await;
    fourth.check_streams(&store, &[&doc]).await;
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM events WHERE id >> 44 = 1", [], |r| r.get(0)).expect("count");
    assert_eq!(rows, 1, "the removed service's events went with it");
}

/// Events are kept without the head of their text (schema_v13.sql) and read back byte for byte
/// as they were sent when written; events a version-12 binary kept whole are read as they are,
/// mixed in the same log and the same streams.
#[tokio::test]
async fn events_are_kept_without_their_head_and_older_ones_whole() {
    use ferrosync_core::store::{Actor, Mutation};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let store = SqliteStore::open(&path, Durability::Full).expect("opens");
    let docs = Docs::create_service(&store).await;
    let (a, b) = (docs.create(&store, "a").await, docs.create(&store, "b").await);
    let mut sent = Vec::new();
    for n in 0..20 {
        let m = Mutation::UpdateObject {
            service: docs.svc.clone(),
            kind: ferrosync_core::model::ObjectKind::Document,
            target: ferrosync_core::model::ObjectRef::Sid(if n % 2 == 0 { a.clone() } else { b.clone() }),
            data: Some(serde_json::json!({ "n": n, "type": "a key like the head's" })),
            ttl: None,
            if_match: None,
        };
        let applied = store.execute(Actor::SYSTEM, m).await.expect("updated");
        sent.extend(applied.stored.into_iter().map(|e| (e.seq, e.json.get().to_owned())));
    }
    let log = store.events(&docs.svc, 0, None, 100).await.expect("log");
    let read: Vec<(u64, String)> = log.iter().map(|e| (e.seq, e.json.get().to_owned())).collect();
    assert_eq!(&read[2..], &sent[..], "read back as sent");
    drop(store);

    let conn = rusqlite::Connection::open(&path).expect("opens");
    let bodies: Vec<(i64, String)> = conn
        .prepare("SELECT id & 17592186044415, body FROM events ORDER BY id")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("rows");
    assert_eq!(bodies.len(), 22);
    for ((seq, body), (_, text)) in bodies.iter().zip(&read) {
        assert!(body.starts_with("\"type\":") && text.ends_with(body.as_str()), "event {seq}: {body}");
        assert!(!body.contains(docs.svc.as_str()) && !body.contains("\"token\""), "event {seq}: {body}");
    }
    let (kept, whole): (usize, usize) =
        (bodies.iter().map(|(_, b)| b.len()).sum(), read.iter().map(|(_, t)| t.len()).sum());
    assert!(kept * 10 < whole * 7, "a third less: {kept} of {whole} bytes");
    // Every third event as a version-12 binary kept it: whole.
    for (seq, text) in read.iter().filter(|(seq, _)| seq % 3 == 0) {
        conn.execute(
            "UPDATE events SET body = ?2 WHERE id & 17592186044415 = ?1",
            rusqlite::params![*seq as i64, text],
        )
        .expect("an older row");
    }
    drop(conn);

    let store = SqliteStore::open(&path, Durability::Full).expect("reopens");
    let again: Vec<(u64, String)> = store
        .events(&docs.svc, 0, None, 100)
        .await
        .expect("log")
        .iter()
        .map(|e| (e.seq, e.json.get().to_owned()))
        .collect();
    assert_eq!(again, read, "both forms read back the same");
    for doc in [&a, &b] {
        let stream = store.events(&docs.svc, 0, Some(doc), 100).await.expect("stream");
        let expected: Vec<&(u64, String)> =
            read.iter().filter(|(seq, _)| log.iter().any(|e| e.seq == *seq && &e.object_sid == doc)).collect();
        assert_eq!(
            stream.iter().map(|e| (e.seq, e.json.get().to_owned())).collect::<Vec<_>>(),
            expected.into_iter().cloned().collect::<Vec<_>>()
        );
    }
    docs.check_streams(&store, &[&a, &b]).await;
}
