//! The embedded store: SQLite in WAL mode, one writer thread that group-commits whatever is
//! queued (one fsync per batch), and a small pool of read-only connections. Without an fsync
//! per commit, a write that finds the writer idle and nothing queued is committed in place, on
//! the caller's thread (see [`SqliteStore::write`]).

pub mod backup;
mod checkpoint;
mod company;
mod hot;
mod kept;
mod rows;
mod vfs;

use crate::WriteJob;
use crate::heads::SeqHeads;
use crate::readers::Readers;
use crate::seen::ServicesSeen;
use ferrosync_core::error::CoreError;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use ferrosync_core::page::PageRequest;
use ferrosync_core::rules;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{Actor, ApiKeyRecord, Applied, Mutation, StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use hot::{HotStatements, WriterConn};
use kept::ObjectsKept;
use rows::err;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Schema migrations in order; `PRAGMA user_version` records how many a file has had. The first
/// is idempotent, so files made before versions were recorded take it again harmlessly.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
    include_str!("schema_v12.sql"),
    include_str!("schema_v13.sql"),
];
const READERS: usize = 4;
/// How long the writer waits for another connection's write lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes in a page of a data file this store creates. A write changes a few hundred bytes on
/// two or three pages (an object's row, its event, an index's last leaf), and the log holds
/// each whole page: at 2 KiB the log, its checksums and its syncs carry a little over half
/// the bytes they would at SQLite's 4 KiB, while a row of up to about 2 KB still fits in its
/// page. SQLite fixes a file's page size when it creates it, so a file made earlier keeps its own.
const PAGE_SIZE: u32 = 2048;
pub struct SqliteStore {
    epoch: String,
    path: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    /// The writer's connection and memo: the writer thread and callers committing in place
    /// take turns on it, one commit at a time, in the order they take it.
    turn: Arc<tokio::sync::Mutex<Writer>>,
    /// Jobs sent to the writer thread (or handed over to it) and not yet committed. While any
    /// are, a write queues behind them rather than overtaking them in place.
    queued: Arc<AtomicUsize>,
    /// Whether writes may be committed in place: only when a commit does not wait for the disk.
    in_place: bool,
    /// Set when the writer thread has a tail of the log to copy (tests set it by hand).
    #[cfg(test)]
    tail: Arc<AtomicBool>,
    /// Whether writes committing in place have lately found others to share a commit with.
    company: company::Company,
    observers: Arc<crate::Observers>,
    readers: Readers<Connection>,
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

/// What a connection to the data file may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Reads only. Opened read-write all the same, with `query_only` set: under `unix-excl` a
    /// read-only connection cannot share the WAL index the process keeps on its heap.
    Query,
}

/// Opens a connection to the data file at `path` as every connection to it must be opened,
/// by this process's store or by anything else in the process (a backup).
///
/// Every connection goes through [`vfs`]: SQLite's `unix-excl`, which locks the file for the
/// whole process at the first connection's first read. From then on the process's connections
/// coordinate in memory, so a commit makes none of the six `fcntl` calls it would make on the
/// `-shm` file, and the WAL index lives on the heap. No other process can open the file
/// meanwhile: `ferrosync` commands reach a running server through its local socket instead.
/// On top of it, a commit's frames reach the log in one write.
pub fn connect(path: &Path, access: Access) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let vfs = vfs::register()
        .map_err(|e| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR), Some(e)))?;
    let conn = Connection::open_with_flags_and_vfs(path, flags, vfs)?;
    if access == Access::Query {
        conn.execute_batch("PRAGMA query_only = 1;")?;
    }
    Ok(conn)
}

/// The error for a data file another process holds: the first read of a connection is where
/// `unix-excl` takes its lock, and where it finds it taken.
fn held_elsewhere(path: &Path, e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(format!(
                "{} is held by another process (a running `ferrosync serve`?): one process at a time opens it",
                path.display()
            ))
        }
        _ => err(e),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", parent.display())))?;
        }
        let mut conn = connect(path, Access::ReadWrite).map_err(err)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        // The page size before the log is set up, while a new file is still empty (an existing
        // one ignores it). Checkpoints run on their own connection (below), not inside the
        // writer's commits; savepoint journals stay in memory.
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; \
             PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(|e| held_elsewhere(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        migrate(&mut conn)?;
        let epoch = load_or_create_epoch(&conn)?;

        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = connect(path, Access::Query).map_err(err)?;
            r.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
            conns.push(r);
        }
        let readers = Readers::start("ferrosync-sqlite-reader", conns)?;

        let (tx, rx) = mpsc::channel(8192);
        let tail = Arc::new(AtomicBool::new(false));
        let observers = Arc::new(crate::Observers::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let turn = Arc::new(tokio::sync::Mutex::new(Writer {
            conn: WriterConn::new(conn, |conn| HotStatements::new(conn)),
            memo: Memo::default(),
            epoch: epoch.clone(),
            handed_over: Vec::new(),
            lone: Vec::with_capacity(1),
            metrics: crate::CommitMetrics::taken(),
        }));
        let thread = WriterThread {
            turn: turn.clone(),
            queued: queued.clone(),
            observers: observers.clone(),
            tail: tail.clone(),
        };
        std::thread::Builder::new()
            .name("ferrosync-sqlite-writer".into())
            .spawn(move || writer_loop(thread, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;

        let checkpointer = connect(path, Access::ReadWrite).map_err(err)?;
        checkpointer.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
        let writer_alive = tx.downgrade();
        std::thread::Builder::new()
            .name("ferrosync-sqlite-checkpoint".into())
            .spawn({
                let tail = tail.clone();
                move || checkpoint::run(checkpointer, writer_alive, tail)
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;

        Ok(SqliteStore {
            epoch,
            path: path.to_owned(),
            writer: tx,
            observers,
            readers,
            turn,
            queued,
            in_place: durability == Durability::Normal,
            #[cfg(test)]
            tail,
            company: company::Company::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader thread's connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.run(move |conn| f(conn)).await
    }
}

impl SqliteStore {
    /// Runs `f` on the writer's connection off the async threads, in a turn of its own (outside
    /// any batch): SQLite lets one connection write at a time, and a commit in place that found
    /// the file locked by another connection would wait on a runtime thread, in SQLite's sleeps.
    async fn bookkeep<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let turn = self.turn.clone();
        tokio::task::spawn_blocking(move || turn.blocking_lock().conn.with_dependent(|conn, _| f(conn)))
            .await
            .map_err(|e| StoreError::Backend(format!("bookkeeping task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
    if applied as usize > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the data file has schema version {applied}, newer than this binary's {}; use a newer ferrosync",
            MIGRATIONS.len()
        )));
    }
    if applied > 0 && (applied as usize) < MIGRATIONS.len() {
        // Some migrations rebuild a table (version 12 the log: about 2 s per million events).
        tracing::info!(from = applied, to = MIGRATIONS.len(), "upgrading the data file's schema");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
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

/// What only the one committing may touch.
struct Writer {
    conn: WriterConn,
    memo: Memo,
    epoch: String,
    /// Jobs handed over by callers that held the turn and found writes queued behind them,
    /// in the order they held it: committed at the head of the writer thread's next batch.
    /// There can be several: a caller that saw nothing queued just before a hand-over may take
    /// the turn after it, ahead of the writer thread, and find writes queued.
    handed_over: Vec<WriteJob>,
    /// The batch of one a commit in place makes, kept empty between commits for its buffer.
    lone: Vec<WriteJob>,
    metrics: crate::CommitMetrics,
}

impl Writer {
    /// Commits the batch behind the jobs handed over (the writer thread's commit).
    fn commit_queued(&mut self, batch: &mut Vec<WriteJob>, observers: &crate::Observers) -> Vec<crate::Answer> {
        if !self.handed_over.is_empty() {
            batch.splice(0..0, self.handed_over.drain(..));
        }
        self.commit(batch, observers)
    }

    /// A job handed over to the writer thread's next batch; its caller has counted it queued.
    fn hand_over(&mut self, job: WriteJob) {
        self.handed_over.push(job);
    }

    /// Commits the batch and tells the observers, in one turn, so they learn of commits in
    /// their order.
    fn commit(&mut self, batch: &mut [WriteJob], observers: &crate::Observers) -> Vec<crate::Answer> {
        let Writer { conn, memo, epoch, metrics, .. } = self;
        let results = conn.with_dependent(|_, hot| commit_batch(hot, epoch, memo, batch, metrics));
        observers.tell(&results);
        results
    }

    /// Commits `job` in place, or gives it back untouched if another connection (another
    /// process's, say) holds the file's write lock: the writer thread waits for that in
    /// SQLite's busy sleeps, a runtime thread must not.
    fn commit_in_place(&mut self, job: WriteJob, observers: &crate::Observers) -> InPlace {
        let set_busy = |conn: &Connection, wait: Duration| {
            if let Err(e) = conn.busy_timeout(wait) {
                tracing::warn!(error = %e, "cannot set the writer's busy timeout");
            }
        };
        // Only this job: one handed over is answered through its own reply, on the writer
        // thread (none waits while nothing is queued, which a commit in place requires).
        let mut lone = std::mem::take(&mut self.lone);
        lone.push(job);
        self.conn.with_dependent(|conn, _| set_busy(conn, Duration::ZERO));
        let results = self.commit(&mut lone, observers);
        self.conn.with_dependent(|conn, _| set_busy(conn, BUSY_TIMEOUT));
        let job = lone.pop();
        lone.clear();
        self.lone = lone;
        match (results.into_iter().next(), job) {
            // The lock was met before the rules took the job's mutation: it goes back whole.
            (Some(Err(CoreError::Store(StoreError::Unavailable(_)))), Some(job)) if job.mutation.is_some() => {
                InPlace::Locked(job)
            }
            (answer, _) => InPlace::Committed(
                answer.unwrap_or_else(|| Err(StoreError::Backend("a commit gave no answer".into()).into())),
            ),
        }
    }
}

/// How a commit in place ended.
enum InPlace {
    /// Committed, or failed for good: the caller's answer.
    Committed(crate::Answer),
    /// The file's write lock is held elsewhere: the job, untouched, for the writer thread.
    Locked(WriteJob),
}

/// What the writer thread shares with the store.
struct WriterThread {
    turn: Arc<tokio::sync::Mutex<Writer>>,
    queued: Arc<AtomicUsize>,
    observers: Arc<crate::Observers>,
    tail: Arc<AtomicBool>,
}

fn writer_loop(thread: WriterThread, rx: mpsc::Receiver<WriteJob>) {
    let WriterThread { turn, queued, observers, tail } = thread;
    crate::run_writer(
        rx,
        |batch| {
            // A nudge asks only for the housekeeping below.
            batch.retain(|job| !job.is_nudge());
            let mut writer = turn.blocking_lock();
            if batch.is_empty() && writer.handed_over.is_empty() {
                return Vec::new();
            }
            let results = writer.commit_queued(batch, &observers);
            queued.fetch_sub(batch.len(), Ordering::Release);
            results
        },
        || {
            if tail.load(Ordering::Acquire) {
                turn.blocking_lock().conn.with_dependent(|conn, _| checkpoint::copy_tail(conn, &tail));
            }
        },
    );
    tracing::debug!("sqlite writer stopped");
}

impl SqliteStore {
    /// Commits a mutation. Where a commit does not wait for the disk, a write that finds the
    /// writer idle and nothing queued is committed here, on the caller's thread: handing it to
    /// the writer thread and back costs a single writer more than the commit (four context
    /// switches a write, and two wake-ups). Writes that arrive together still share a commit:
    /// holding the turn, this one first lets the runtime run the requests ready beside it; if
    /// they queued writes meanwhile, it joins their batch, at its head, on the writer thread.
    /// A writer that keeps finding nobody looks only now and then (see [`company`]).
    async fn write(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError> {
        if self.in_place
            && self.queued.load(Ordering::Acquire) == 0
            && let Ok(mut writer) = self.turn.clone().try_lock_owned()
        {
            if self.company.worth_looking() {
                tokio::task::yield_now().await;
            }
            // A job committed here needs no way back to its caller: the answer is returned.
            let job = WriteJob { actor, mutation: Some(mutation), reply: None, runtime: None };
            let alone = self.queued.load(Ordering::Acquire) == 0;
            self.company.found(!alone);
            let mut job = if alone {
                match writer.commit_in_place(job, &self.observers) {
                    InPlace::Committed(answer) => {
                        writer.metrics.in_place.increment(1);
                        drop(writer);
                        return answer;
                    }
                    InPlace::Locked(job) => job,
                }
            } else {
                job
            };
            let (reply, rx) = tokio::sync::oneshot::channel();
            job.reply = Some(reply);
            job.runtime = tokio::runtime::Handle::try_current().ok();
            let job = if alone {
                // Queued while the turn is held, so nothing sent later overtakes it.
                match self.writer.try_send(job) {
                    Ok(()) => None,
                    Err(mpsc::error::TrySendError::Full(job)) => Some(job),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err(StoreError::Unavailable("the writer has stopped".into()).into());
                    }
                }
            } else {
                Some(job)
            };
            // Counted before the turn is given up, so no write overtakes it in place. A job not
            // queued above waits at the head of the writer thread's next batch, which the writes
            // queued meanwhile (or filling the queue) are about to start.
            self.queued.fetch_add(1, Ordering::AcqRel);
            if let Some(job) = job {
                writer.hand_over(job);
            }
            drop(writer);
            return rx.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?;
        }
        if self.in_place {
            // Others hold the turn or are queued.
            self.company.met();
        }
        crate::queue_write(&self.writer, actor, mutation, Some(&self.queued)).await
    }
}

/// Applies every job in one transaction; the batch is acknowledged after one durable COMMIT.
///
/// Nearly every failed mutation fails a precondition before it writes anything (a stale
/// revision, a missing object), and such a failure needs nothing undone. So jobs first run
/// back to back, without the savepoint each would otherwise pay for (a statement each side and
/// a copy of every page it first touches). Only when a job fails after writing is the batch
/// rolled back and run again with a savepoint around each job, so that only its own writes are
/// undone.
fn commit_batch(
    hot: &HotStatements<'_>,
    epoch: &str,
    memo: &mut Memo,
    batch: &mut [WriteJob],
    metrics: &crate::CommitMetrics,
) -> Vec<Result<Applied, CoreError>> {
    let started = std::time::Instant::now();
    memo.bound();
    let conn = hot.conn();
    match apply_jobs(hot, epoch, memo, batch, metrics) {
        Ok(Answers { results, committed }) => {
            if committed {
                metrics.committed(batch.len(), started);
            }
            results
        }
        Err(e) => {
            // Nothing in the batch stands; the transaction may be gone already.
            memo.forget();
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // A file locked by another connection stays `Unavailable`: nothing was written.
            let failed = |e: &StoreError| match e {
                StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
                other => StoreError::Backend(other.to_string()),
            };
            (0..batch.len()).map(|_| Err(CoreError::Store(failed(&e)))).collect()
        }
    }
}

/// How a batch undoes a job that failed after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// Roll the whole batch back: cheapest while no job needs it, and exact for a batch of one.
    Batch,
    /// A savepoint around each job.
    Savepoint,
}

/// A batch's answers, and whether a commit ended it (a lone failed job rolls back instead).
struct Answers {
    results: Vec<Result<Applied, CoreError>>,
    committed: bool,
}

/// What the writer knows of the services it wrote to, kept from one batch to the next: their
/// rows, and their heads (the writer is the only one that appends to the log, so a head it
/// handed out and committed is the head). A mutation at a time, as a single client writes,
/// would otherwise read its service's row and parse its settings for every write, a sixth of
/// the writer's work for it. Whatever the rules say forgets rows within a batch (see
/// [`ServicesSeen`]); a batch that fails forgets both. The objects it read or wrote are kept
/// too (see [`ObjectsKept`]).
#[derive(Default)]
pub(crate) struct Memo {
    seqs: SeqHeads,
    services: ServicesSeen,
    bases: rows::LogBases,
    objects: ObjectsKept,
}

impl Memo {
    /// Services whose row and head are kept; a writer serving more starts over.
    const SERVICES: usize = 64;

    fn forget(&mut self) {
        self.seqs = SeqHeads::default();
        self.services.forget();
        self.bases.forget();
        self.objects.forget();
    }

    /// Together, so that no row is kept without its head (a row shows the head first read).
    fn bound(&mut self) {
        if [self.seqs.len(), self.services.len(), self.bases.len()].into_iter().any(|n| n > Self::SERVICES) {
            self.forget();
        }
    }
}

/// Runs the batch in one transaction, first without savepoints and, only if a job fails after
/// writing in a batch of several, once more with them: so it runs at most twice.
fn apply_jobs(
    hot: &HotStatements<'_>,
    epoch: &str,
    memo: &mut Memo,
    batch: &mut [WriteJob],
    metrics: &crate::CommitMetrics,
) -> Result<Answers, StoreError> {
    let conn = hot.conn();
    let sql = |statement: &'static str| hot.run(statement).map_err(err);
    let mut undo = Undo::Batch;
    // A batch of one is never run again (a failure after writing answers it at once), so
    // its mutation moves into the rules; a batch of several may run again, with savepoints.
    let lone = batch.len() == 1;
    // The heads as the batch finds them, every one settled: a batch run again starts from them.
    let before = (!lone).then(|| memo.seqs.clone());
    'attempt: loop {
        sql("BEGIN IMMEDIATE")?;
        let Memo { seqs, services, bases, objects } = &mut *memo;
        let mut results = Vec::with_capacity(batch.len());
        for (i, job) in batch.iter_mut().enumerate() {
            if undo == Undo::Savepoint {
                sql("SAVEPOINT m")?;
            }
            // The heads to go back to should the job fail: the first job's are the settled
            // ones, which `revert` restores without a copy.
            let (heads, changes) = ((i > 0).then(|| seqs.clone()), conn.total_changes());
            let mut tx = SqliteTx { conn, hot, epoch, seqs, services, bases, objects, found: None };
            let mutation = if lone { job.mutation.take() } else { job.mutation.clone() };
            let outcome = match mutation {
                Some(mutation) => rules::apply(&mut tx, &job.actor, mutation, Timestamp::now()),
                None => Err(StoreError::Backend("the write was taken before its commit".into()).into()),
            };
            if conn.is_autocommit() {
                // SQLite rolled the transaction back itself (a full disk, an I/O error).
                let cause = outcome.err().map_or_else(|| "the transaction ended".to_owned(), |e| e.to_string());
                return Err(StoreError::Backend(cause));
            }
            if outcome.is_err() {
                // The sequence numbers the job took are handed out again, and rows it may have
                // written are read afresh.
                match heads {
                    Some(heads) => *seqs = heads,
                    None => seqs.revert(),
                }
                services.forget();
                bases.forget();
                let wrote = conn.total_changes() != changes;
                if wrote {
                    // What it wrote is undone, and may have been kept.
                    objects.forget();
                }
                match undo {
                    Undo::Savepoint => sql("ROLLBACK TO m")?,
                    Undo::Batch if wrote && lone => {
                        sql("ROLLBACK")?;
                        return Ok(Answers { results: vec![outcome], committed: false });
                    }
                    Undo::Batch if wrote => {
                        sql("ROLLBACK")?;
                        // The heads as the batch found them; rows are read afresh.
                        match &before {
                            Some(before) => *seqs = before.clone(),
                            None => seqs.revert(),
                        }
                        undo = Undo::Savepoint;
                        metrics.rerun.increment(1);
                        continue 'attempt;
                    }
                    Undo::Batch => {}
                }
            }
            if undo == Undo::Savepoint {
                sql("RELEASE m")?;
            }
            results.push(outcome);
        }
        // The heads the batch moved need no writing back: a head is read from the log itself.
        sql("COMMIT")?;
        seqs.settle();
        return Ok(Answers { results, committed: true });
    }
}

struct SqliteTx<'a, 'c> {
    conn: &'a Connection,
    /// The statements every write runs, prepared once (`conn`'s).
    hot: &'a HotStatements<'c>,
    epoch: &'a str,
    /// Sequence heads handed out in this batch; the only writer of the file, so no lock needed.
    seqs: &'a mut SeqHeads,
    services: &'a mut ServicesSeen,
    /// Where each service's events go in the log; forgotten with `services`.
    bases: &'a mut rows::LogBases,
    objects: &'a mut ObjectsKept,
    /// The object this job read last and where its row is, until anything else writes objects:
    /// a write then appends to its stream without finding the row by SID twice more. Lives for
    /// one job, so no rollback outlives it.
    found: Option<(Sid, rows::RowAt)>,
}

impl SqliteTx<'_, '_> {
    /// The services table was written: rows and numbers are read afresh.
    fn services_written(&mut self) {
        self.services.forget();
        self.bases.forget();
    }

    /// An object's row (`None`: any number of them) written other than by `append_to`.
    fn objects_written(&mut self, sid: Option<&Sid>) {
        self.found = None;
        match sid {
            Some(sid) => self.objects.drop_one(sid),
            None => self.objects.forget(),
        }
    }

    /// Appends to `object`'s stream by `append`, from where its row was found if this job just
    /// read it, and remembers where the row is after (returned, if known).
    fn append_to(
        &mut self,
        object: &Sid,
        append: impl FnOnce(&HotStatements<'_>, Option<rows::RowAt>) -> Result<Option<rows::RowAt>, StoreError>,
    ) -> Result<Option<rows::RowAt>, StoreError> {
        let found = self.found.take().filter(|(sid, _)| sid == object);
        let now = append(self.hot, found.as_ref().map(|(_, at)| *at))?;
        // Only a row found before is known after.
        self.found = found.zip(now).map(|((sid, _), at)| (sid, at));
        let now = self.found.as_ref().map(|(_, at)| *at);
        if now.is_none() {
            self.objects.drop_one(object);
        }
        Ok(now)
    }
}

impl_tx_state!(SqliteTx<'_, '_>, rows, {
    fn epoch(&self) -> &str {
        self.epoch
    }
    fn service(&mut self, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
        let conn = self.conn;
        let mut found = self.services.read(r, || rows::service(conn, r))?;
        if let Some(s) = &mut found {
            self.seqs.overlay(s);
        }
        Ok(found)
    }
    fn next_seq(&mut self, service: &Sid) -> Result<u64, StoreError> {
        let conn = self.conn;
        self.seqs.next(service, || rows::head_seq(conn, service))
    }
    fn object(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError> {
        if let Some((object, at)) = self.objects.get(service, kind, r) {
            self.found = Some((object.sid.clone(), at));
            return Ok(Some(object));
        }
        let found = rows::object_at(self.conn, service, kind, r)?;
        if let Some((object, at)) = &found {
            // Kept as read too: an append that leaves the object's state alone (a stream's
            // message) keeps only where its row is, and would otherwise read it every time.
            self.objects.keep(object, *at);
            self.found = Some((object.sid.clone(), *at));
        }
        Ok(found.map(|(object, _)| object))
    }
    fn insert_event(
        &mut self,
        service: &Sid,
        seq: u64,
        object: &Sid,
        date: Timestamp,
        json: &str,
    ) -> Result<(), StoreError> {
        let base = self.bases.get(self.conn, service)?;
        let body = ferrosync_core::log::stored_body(self.epoch, service, seq, json);
        if let Some(at) =
            self.append_to(object, |hot, at| rows::insert_event(hot, base, service, seq, object, date, body, at))?
        {
            self.objects.moved(object, at);
        }
        Ok(())
    }
    fn put_object_with_event(
        &mut self,
        object: &SyncObject,
        seq: u64,
        date: Timestamp,
        json: &str,
        data: Option<&str>,
    ) -> Result<(), StoreError> {
        let base = self.bases.get(self.conn, &object.service_sid)?;
        let body = ferrosync_core::log::stored_body(self.epoch, &object.service_sid, seq, json);
        if let Some(at) = self.append_to(&object.sid, |hot, at| {
            rows::put_object_with_event(hot, base, object, seq, date, body, data, at)
        })? {
            self.objects.keep(object, at);
        }
        Ok(())
    }
});

impl_store!(SqliteStore, rows, {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(err)).await
    }

    async fn claim_meta(&self, key: &str, proposed: &str) -> Result<(String, bool), StoreError> {
        // Rare (start-up only): its own connection rather than a turn of the writer.
        let (path, key, proposed) = (self.path.clone(), key.to_owned(), proposed.to_owned());
        tokio::task::spawn_blocking(move || {
            use rusqlite::OptionalExtension;
            let conn = connect(&path, Access::ReadWrite).map_err(err)?;
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
});

#[cfg(test)]
mod tests;
