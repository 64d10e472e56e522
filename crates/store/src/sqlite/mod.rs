//! The embedded store: SQLite in WAL mode, one writer thread that group-commits whatever is
//! queued (one fsync per batch), and a small pool of read-only connections.

mod rows;

use async_trait::async_trait;
use ferrosync_core::error::CoreError;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use ferrosync_core::page::PageRequest;
use ferrosync_core::rules;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{Actor, ApiKeyRecord, Applied, Mutation, Store, StoreError, StoredEvent, TxState};
use ferrosync_core::timestamp::Timestamp;
use rows::err;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, oneshot};

const SCHEMA: &str = include_str!("schema.sql");
/// Most mutations one commit carries; bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 512;
const READERS: usize = 4;
/// WAL size (in pages) past which a checkpoint waits for readers to reset the log.
const WAL_TRUNCATE_PAGES: i64 = 64 * 1024;

struct WriteJob {
    actor: Actor,
    mutation: Mutation,
    reply: oneshot::Sender<Result<Applied, CoreError>>,
}

pub struct SqliteStore {
    epoch: String,
    path: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    readers: Arc<ReaderPool>,
}

struct ReaderPool {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// How hard a commit insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync on every commit: an acknowledged write survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash, not power loss.
    Normal,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        // Checkpoints run on their own connection (below), not inside the writer's commits;
        // savepoint journals stay in memory.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let epoch = load_or_create_epoch(&conn)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(err)?;
            r.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
            readers.push(r);
        }

        let (tx, rx) = mpsc::channel(8192);
        let thread_epoch = epoch.clone();
        std::thread::Builder::new()
            .name("ferrosync-sqlite-writer".into())
            .spawn(move || writer_loop(conn, thread_epoch, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;

        let checkpointer = Connection::open(path).map_err(err)?;
        checkpointer.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
        let writer_alive = tx.downgrade();
        std::thread::Builder::new()
            .name("ferrosync-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, writer_alive))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;

        Ok(SqliteStore {
            epoch,
            path: path.to_owned(),
            writer: tx,
            readers: Arc::new(ReaderPool { conns: Mutex::new(readers), permits: Semaphore::new(READERS) }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        let _permit = pool.permits.acquire().await.map_err(|_| StoreError::Unavailable("store is closed".into()))?;
        let conn = pool
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or_else(|| StoreError::Unavailable("no read connection free".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?;
        pool.conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        result
    }
}

fn load_or_create_epoch(conn: &Connection) -> Result<String, StoreError> {
    use rusqlite::OptionalExtension;
    let existing: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| r.get(0)).optional().map_err(err)?;
    if let Some(e) = existing {
        return Ok(e);
    }
    let epoch = ferrosync_core::auth::random_hex(8);
    conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&epoch]).map_err(err)?;
    Ok(epoch)
}

/// Copies the WAL back into the database file every half second, beside the writer, so
/// commits never pay for it; stops once the store (its writer channel) is gone.
fn checkpoint_loop(conn: Connection, writer_alive: mpsc::WeakSender<WriteJob>) {
    while writer_alive.upgrade().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // PASSIVE never blocks the writer or readers; what it cannot copy now waits for the next.
        // Should busy readers keep the log from ever being reset, TRUNCATE (which waits for
        // them) keeps it from growing without bound.
        let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
        let result = match pass {
            Ok(log_pages) if log_pages > WAL_TRUNCATE_PAGES => {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            }
            other => other.map(drop),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

fn writer_loop(mut conn: Connection, epoch: String, mut rx: mpsc::Receiver<WriteJob>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("ferrosync_store_commit_batch_size").record(batch.len() as f64);
        let results = commit_batch(&mut conn, &epoch, &mut batch);
        for (job, result) in batch.drain(..).zip(results) {
            // A caller that went away no longer needs its answer; the write stands.
            let _ = job.reply.send(result);
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Applies every job in one transaction, each inside a savepoint so a failed precondition
/// rolls back only its own mutation; the batch is acknowledged after one durable COMMIT.
fn commit_batch(conn: &mut Connection, epoch: &str, batch: &mut [WriteJob]) -> Vec<Result<Applied, CoreError>> {
    let started = std::time::Instant::now();
    let fail_all =
        |e: StoreError, n: usize| (0..n).map(|_| Err(CoreError::Store(StoreError::Backend(e.to_string())))).collect();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(err(e), batch.len());
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter() {
        if let Err(e) = run_cached(conn, "SAVEPOINT m") {
            results.push(Err(CoreError::Store(err(e))));
            continue;
        }
        let mut tx = SqliteTx { conn, epoch };
        let outcome = rules::apply(&mut tx, &job.actor, job.mutation.clone(), Timestamp::now());
        let end = if outcome.is_ok() {
            run_cached(conn, "RELEASE m")
        } else {
            run_cached(conn, "ROLLBACK TO m").and_then(|()| run_cached(conn, "RELEASE m"))
        };
        match end {
            Ok(()) => results.push(outcome),
            Err(e) => results.push(Err(CoreError::Store(err(e)))),
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return fail_all(err(e), batch.len());
    }
    metrics::histogram!("ferrosync_store_commit_seconds").record(started.elapsed().as_secs_f64());
    results
}

/// Runs a parameterless statement through the statement cache (savepoints run per mutation).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

struct SqliteTx<'a> {
    conn: &'a Connection,
    epoch: &'a str,
}

impl TxState for SqliteTx<'_> {
    fn epoch(&self) -> &str {
        self.epoch
    }
    fn service(&mut self, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
        rows::service(self.conn, r)
    }
    fn put_service(&mut self, service: &Service) -> Result<(), StoreError> {
        rows::put_service(self.conn, service)
    }
    fn delete_service(&mut self, sid: &Sid) -> Result<(), StoreError> {
        rows::delete_by_sid(self.conn, "services", sid).map(drop)
    }
    fn object(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError> {
        rows::object(self.conn, service, kind, r)
    }
    fn object_by_sid(&mut self, sid: &Sid) -> Result<Option<SyncObject>, StoreError> {
        rows::object_by_sid(self.conn, sid)
    }
    fn put_object(&mut self, object: &SyncObject) -> Result<(), StoreError> {
        rows::put_object(self.conn, object)
    }
    fn delete_object(&mut self, sid: &Sid) -> Result<(), StoreError> {
        rows::delete_by_sid(self.conn, "objects", sid).map(drop)
    }
    fn item(&mut self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        rows::item(self.conn, object, key)
    }
    fn put_item(&mut self, item: &Item) -> Result<(), StoreError> {
        rows::put_item(self.conn, item)
    }
    fn delete_item(&mut self, object: &Sid, key: &ItemKey) -> Result<(), StoreError> {
        rows::delete_item(self.conn, object, key)
    }
    fn permission(&mut self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
        rows::permission(self.conn, object, identity)
    }
    fn put_permission(&mut self, permission: &Permission) -> Result<(), StoreError> {
        rows::put_permission(self.conn, permission)
    }
    fn delete_permission(&mut self, object: &Sid, identity: &str) -> Result<bool, StoreError> {
        rows::delete_permission(self.conn, object, identity)
    }
    fn next_seq(&mut self, service: &Sid) -> Result<u64, StoreError> {
        rows::next_seq(self.conn, service)
    }
    fn insert_event(
        &mut self,
        service: &Sid,
        seq: u64,
        object: &Sid,
        date: Timestamp,
        json: &str,
    ) -> Result<(), StoreError> {
        rows::insert_event(self.conn, service, seq, object, date, json)
    }
    fn expired_objects(&mut self, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError> {
        rows::expired_objects(self.conn, now, limit)
    }
    fn expired_items(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
        rows::expired_items(self.conn, now, limit)
    }
    fn prune_events(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        rows::prune_events(self.conn, before)
    }
    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        rows::put_api_key(self.conn, key)
    }
    fn delete_api_key(&mut self, sid: &Sid) -> Result<bool, StoreError> {
        rows::delete_by_sid(self.conn, "api_keys", sid)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn execute(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteJob { actor, mutation, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    async fn service(&self, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
        let r = r.clone();
        self.read(move |c| rows::service(c, &r)).await
    }

    async fn services(&self, page: &PageRequest) -> Result<Vec<Service>, StoreError> {
        let page = page.clone();
        self.read(move |c| rows::services(c, &page)).await
    }

    async fn object(&self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError> {
        let (service, r) = (service.clone(), r.clone());
        self.read(move |c| rows::object(c, &service, kind, &r)).await
    }

    async fn objects(
        &self,
        service: &Sid,
        kind: ObjectKind,
        page: &PageRequest,
    ) -> Result<Vec<SyncObject>, StoreError> {
        let (service, page) = (service.clone(), page.clone());
        self.read(move |c| rows::objects(c, &service, kind, &page)).await
    }

    async fn item(&self, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let (object, key) = (object.clone(), key.clone());
        self.read(move |c| rows::item(c, &object, &key)).await
    }

    async fn items(&self, object: &Sid, kind: ObjectKind, page: &PageRequest) -> Result<Vec<Item>, StoreError> {
        let (object, page) = (object.clone(), page.clone());
        self.read(move |c| rows::items(c, &object, kind, &page)).await
    }

    async fn permission(&self, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
        let (object, identity) = (object.clone(), identity.to_owned());
        self.read(move |c| rows::permission(c, &object, &identity)).await
    }

    async fn permissions(&self, object: &Sid) -> Result<Vec<Permission>, StoreError> {
        let object = object.clone();
        self.read(move |c| rows::permissions(c, &object)).await
    }

    async fn events(
        &self,
        service: &Sid,
        after: u64,
        object: Option<&Sid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (service, object) = (service.clone(), object.cloned());
        self.read(move |c| rows::events(c, &service, after, object.as_ref(), limit)).await
    }

    async fn api_key(&self, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sid = sid.clone();
        self.read(move |c| rows::api_key(c, &sid)).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(rows::api_keys).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(err)).await
    }

    async fn claim_meta(&self, key: &str, proposed: &str) -> Result<(String, bool), StoreError> {
        // Rare (start-up only): its own connection rather than a turn of the writer.
        let (path, key, proposed) = (self.path.clone(), key.to_owned(), proposed.to_owned());
        tokio::task::spawn_blocking(move || {
            use rusqlite::OptionalExtension;
            let conn = Connection::open(&path).map_err(err)?;
            conn.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
            let inserted = conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                    [&key, &proposed],
                )
                .map_err(err)?;
            let value: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| r.get(0))
                .optional()
                .map_err(err)?;
            let value = value.ok_or_else(|| StoreError::Backend(format!("meta key {key} vanished")))?;
            Ok((value, inserted == 1))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("meta task failed: {e}")))?
    }
}
