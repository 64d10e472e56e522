//! The cluster store: PostgreSQL shared by any number of nodes.
//!
//! Like the embedded store, one writer thread per node group-commits whatever is queued (one
//! transaction, a savepoint per mutation, one durable COMMIT), so the same rules run inside the
//! same kind of transaction on both. What a cluster adds:
//! - every mutation locks its service's row first, so mutations of one service run one after
//!   another across nodes and read what the previous one wrote (no lost update), and the
//!   sequence counter is bumped under that lock, so commit order is sequence order;
//! - commits send `NOTIFY` hints ("service S reached seq N"); a listener thread turns other
//!   nodes' hints into local wake-ups and, after reconnecting, re-announces every service's head
//!   so readers catch up from the log;
//! - work that must run once per cluster takes advisory locks or skips locked rows.

mod ahead;
mod analyze;
mod conn;
mod format;
mod listen;
mod pending;
mod rows;
mod stop;

pub use format::{EventFormat, REFRESH as EVENT_FORMAT_REFRESH};

use crate::WriteJob;
use crate::heads::SeqHeads;
use crate::readers::Readers;
use crate::seen::ServicesSeen;
use ferrosync_core::error::CoreError;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use ferrosync_core::page::PageRequest;
use ferrosync_core::rules;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{Actor, ApiKeyRecord, Applied, ChangeHint, Mutation, StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use rows::{PgConn, err};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Schema migrations, applied in order at start; a node applies those the database lacks.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema_v1.sql")),
    (2, include_str!("schema_v2.sql")),
    (3, include_str!("schema_v3.sql")),
    (4, include_str!("schema_v4.sql")),
    (5, include_str!("schema_v5.sql")),
    (6, include_str!("schema_v6.sql")),
    (7, include_str!("schema_v7.sql")),
];
const READERS: usize = 4;
/// The NOTIFY channel commits announce their services' new heads on.
const CHANNEL: &str = "ferrosync_changes";
/// How the writer begins a batch's transaction, in the same round trip: it runs its prepared
/// statements' generic plans. They all find rows through keys, and many take arrays of a length
/// the planner can only guess; left to choose, PostgreSQL keeps planning those afresh at every
/// execution (a third of a millisecond each, on every batch). Set for the transaction only, so
/// it holds behind a pooler that hands out server connections per transaction.
const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";
/// Attempts of one mutation that met a deadlock with another node or a key it committed first.
const ATTEMPTS: usize = 4;

pub struct PgStore {
    epoch: String,
    writer: mpsc::Sender<WriteJob>,
    observers: Arc<crate::Observers>,
    readers: Readers<PgSlot>,
    hints: broadcast::Sender<ChangeHint>,
    stopped: Arc<stop::Stop>,
    /// Set when this node changed the event format: its writer reads it at its next batch.
    format_changed: Arc<AtomicBool>,
}

/// A reader thread's connection, made when first needed and again after the database closed it.
struct PgSlot {
    config: postgres::Config,
    conn: Option<PgConn>,
}

fn connect(config: &postgres::Config) -> Result<PgConn, StoreError> {
    config.connect(postgres::NoTls).map(PgConn::new).map_err(err)
}

/// Parses a `postgres://` URL (or a key=value string) and sets what a server needs of its
/// connections: a bounded connect time and TCP keepalives, so a vanished database is noticed.
pub fn parse_url(url: &str) -> Result<postgres::Config, StoreError> {
    parse_config(url).map(postgres::Config::from)
}

/// [`parse_url`] for the asynchronous client, which the listener waits on.
fn parse_config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.keepalives(true).keepalives_idle(Duration::from_secs(10));
    if config.get_application_name().is_none() {
        config.application_name("ferrosync");
    }
    Ok(config)
}

impl PgStore {
    /// Connects, applies any missing migrations and starts the writer and listener threads.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let listener_config = parse_config(url)?;
        let config = postgres::Config::from(listener_config.clone());
        let setup_config = config.clone();
        let epoch = tokio::task::spawn_blocking(move || -> Result<String, StoreError> {
            let mut conn = connect(&setup_config)?;
            migrate(&mut conn)?;
            claim_meta(&mut conn, "epoch", &ferrosync_core::auth::random_hex(8)).map(|(v, _)| v)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("setup task failed: {e}")))??;

        let (hints, _) = broadcast::channel(16_384);
        let stopped = Arc::new(stop::Stop::default());
        let (tx, rx) = mpsc::channel(8192);
        let (writer_config, writer_epoch) = (config.clone(), epoch.clone());
        let observers = Arc::new(crate::Observers::default());
        let writer_observers = observers.clone();
        let format_changed = Arc::new(AtomicBool::new(false));
        let writer_format_changed = format_changed.clone();
        std::thread::Builder::new()
            .name("ferrosync-pg-writer".into())
            .spawn(move || writer_loop(writer_config, writer_epoch, rx, &writer_observers, &writer_format_changed))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        listen::spawn(listener_config, hints.clone(), stopped.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the listener thread: {e}")))?;
        let (analyze_config, analyze_stop) = (config.clone(), stopped.clone());
        std::thread::Builder::new()
            .name("ferrosync-pg-analyze".into())
            .spawn(move || analyze::analyze_loop(analyze_config, analyze_stop))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the statistics thread: {e}")))?;

        let slots = (0..READERS).map(|_| PgSlot { config: config.clone(), conn: None }).collect();
        Ok(PgStore {
            epoch,
            writer: tx,
            observers,
            readers: Readers::start("ferrosync-pg-reader", slots)?,
            hints,
            stopped,
            format_changed,
        })
    }

    /// How the cluster keeps new events (see [`format`]).
    pub async fn event_format(&self) -> Result<EventFormat, StoreError> {
        self.read(format::read).await
    }

    /// Sets how the cluster keeps new events. Every node's writer follows within
    /// [`format::REFRESH`], this one's at its next batch. Events already kept stay as they are:
    /// see [`Self::rewrite_short_events`].
    pub async fn set_event_format(&self, to: EventFormat) -> Result<(), StoreError> {
        self.bookkeep(move |c| format::write(c, to)).await?;
        self.format_changed.store(true, Ordering::Release);
        Ok(())
    }

    /// Rewrites whole every event kept short, for a node on a version that reads only whole
    /// events; returns how many. Run once no writer keeps events short any more.
    pub async fn rewrite_short_events(&self) -> Result<u64, StoreError> {
        let (mut total, mut from) = (0, None);
        loop {
            let (epoch, after) = (self.epoch.clone(), from.take());
            let (n, next) =
                self.bookkeep(move |c| format::rewrite_whole(c, &epoch, after.clone(), format::REWRITE_BATCH)).await?;
            total += n;
            match next {
                Some(next) => from = Some(next),
                None => return Ok(total),
            }
        }
    }

    /// Bookkeeping writes run as autocommit statements on a pooled connection (see [`Self::read`]).
    async fn bookkeep<T: Send + 'static>(
        &self,
        f: impl Fn(&mut PgConn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read(f).await
    }

    /// Runs `f` on a reader thread's connection, off the async threads. A connection the
    /// database closed (a restart, say) is replaced and the read tried once more.
    async fn read<T: Send + 'static>(
        &self,
        f: impl Fn(&mut PgConn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers
            .run(move |slot| {
                let mut conn = match slot.conn.take() {
                    Some(c) if !c.client.is_closed() => c,
                    _ => connect(&slot.config)?,
                };
                let mut result = f(&mut conn);
                if matches!(result, Err(StoreError::Unavailable(_))) && conn.client.is_closed() {
                    conn = connect(&slot.config)?;
                    result = f(&mut conn);
                }
                if !conn.client.is_closed() {
                    slot.conn = Some(conn);
                }
                result
            })
            .await
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stopped.stop();
    }
}

fn migrate(conn: &mut PgConn) -> Result<(), StoreError> {
    // Nodes starting together take turns; each migration commits with its version row.
    conn.batch(
        "SELECT pg_advisory_lock(hashtext(current_schema() || '.migrate'));
         CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);",
    )?;
    let result = (|| {
        for (version, sql) in MIGRATIONS {
            let done = conn.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version])?.is_some();
            if done {
                continue;
            }
            conn.batch(&format!("BEGIN; {sql}"))?;
            let applied = conn
                .execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &Timestamp::now().0],
                )
                .and_then(|_| conn.batch("COMMIT"));
            if let Err(e) = applied {
                let _ = conn.batch("ROLLBACK");
                return Err(e);
            }
            tracing::info!(version, "applied PostgreSQL schema migration");
        }
        Ok(())
    })();
    let unlocked = conn.batch("SELECT pg_advisory_unlock(hashtext(current_schema() || '.migrate'))");
    result.and(unlocked)
}

/// Stores `proposed` under `key` unless a value is there already; returns the stored value and
/// whether it was this call that stored it.
fn claim_meta(conn: &mut PgConn, key: &str, proposed: &str) -> Result<(String, bool), StoreError> {
    let inserted =
        conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &proposed])?;
    let row = conn
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
        .ok_or_else(|| StoreError::Backend(format!("meta key {key} vanished")))?;
    let value: String = row.try_get(0).map_err(|_| StoreError::Corrupt("meta value".into()))?;
    Ok((value, inserted == 1))
}

fn writer_loop(
    config: postgres::Config,
    epoch: String,
    rx: mpsc::Receiver<WriteJob>,
    observers: &crate::Observers,
    format_changed: &AtomicBool,
) {
    let mut conn: Option<PgConn> = None;
    let metrics = crate::CommitMetrics::taken();
    crate::run_writer(
        rx,
        |batch| {
            if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                conn = connect(&config)
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot reach PostgreSQL; failing this batch"))
                    .ok();
            }
            let results = match conn.as_mut() {
                Some(c) => {
                    format::refresh(c, format_changed);
                    commit_batch(c, &epoch, batch, &metrics)
                }
                None => unavailable(batch.len(), "PostgreSQL is unreachable"),
            };
            observers.tell(&results);
            results
        },
        || (),
    );
    tracing::debug!("postgres writer stopped");
}

fn unavailable(n: usize, why: &str) -> Vec<Result<Applied, CoreError>> {
    (0..n).map(|_| Err(CoreError::Store(StoreError::Unavailable(why.to_owned())))).collect()
}

/// The service a mutation locks first; batches take them in this order so that two nodes'
/// batches never wait on each other in a cycle.
fn lock_key(m: Option<&Mutation>) -> Option<&Sid> {
    m.and_then(Mutation::service)
}

type Results = Vec<Option<Result<Applied, CoreError>>>;

/// Applies the batch in one transaction, acknowledged only after the COMMIT returns. It first
/// runs holding objects' rows and events back (see [`pending`]), with no savepoints: a
/// mutation that fails having only read and held drops what it held. Should a statement fail,
/// or a mutation fail after writing, that transaction is rolled back and the batch runs again
/// with a savepoint per mutation, each statement sent as it comes.
fn commit_batch(
    conn: &mut PgConn,
    epoch: &str,
    batch: &[WriteJob],
    metrics: &crate::CommitMetrics,
) -> Vec<Result<Applied, CoreError>> {
    let started = std::time::Instant::now();
    // A stable sort: one service's mutations keep their order.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|a, b| lock_key(batch[*a].mutation.as_ref()).cmp(&lock_key(batch[*b].mutation.as_ref())));

    let results = match commit_holding(conn, epoch, batch, &order) {
        Some(results) => results,
        None => {
            metrics.rerun.increment(1);
            match commit_with_savepoints(conn, epoch, batch, &order) {
                Ok(results) => results,
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    tracing::warn!(error = %e, "PostgreSQL batch failed; nothing in it was committed");
                    return unavailable(batch.len(), &e.to_string());
                }
            }
        }
    };
    metrics.committed(batch.len(), started);
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(CoreError::Store(StoreError::Backend("mutation was not run".into())))))
        .collect()
}

fn not_taken() -> Result<Applied, CoreError> {
    Err(StoreError::Backend("the write was taken before its commit".into()).into())
}

/// The services whose heads moved, and the notifications announcing them: delivered to every
/// listening node when (and only if) the transaction commits.
fn notifications(seqs: &SeqHeads) -> (Vec<(&Sid, u64)>, Vec<String>) {
    let advanced = seqs.advanced();
    let payload = advanced.iter().map(|(s, seq)| format!("{s}:{seq}")).collect();
    (advanced, payload)
}

/// The batch with objects' rows and events held back; `None` when it was rolled back, to be
/// run again with savepoints.
fn commit_holding(conn: &mut PgConn, epoch: &str, batch: &[WriteJob], order: &[usize]) -> Option<Results> {
    conn.batch(BEGIN).ok()?;
    conn.hold();
    conn.ahead.want(order.iter().filter_map(|&i| batch[i].mutation.as_ref()));
    let mut results: Results = (0..batch.len()).map(|_| None).collect();
    let mut seqs = SeqHeads::default();
    let mut services = ServicesSeen::default();
    let mut clean = true;
    for &i in order {
        let Some(mutation) = &batch[i].mutation else {
            results[i] = Some(not_taken());
            continue;
        };
        conn.begin_mutation();
        let before = seqs.clone();
        let mut tx = PgTx { conn, epoch, seqs: &mut seqs, services: &mut services };
        let outcome = rules::apply(&mut tx, &batch[i].actor, mutation.clone(), Timestamp::now());
        if outcome.is_err() && conn.wrote && !conn.failed && batch.len() == 1 {
            // Alone, it is undone exactly by rolling the transaction back.
            conn.release();
            let _ = conn.batch("ROLLBACK");
            results[i] = Some(outcome);
            return Some(results);
        }
        if conn.failed || (outcome.is_err() && conn.wrote) {
            clean = false;
            break;
        }
        if outcome.is_err() {
            // It wrote nothing, and row locks its reads took are the batch's to keep.
            conn.drop_mutation();
            seqs = before;
        }
        results[i] = Some(outcome);
    }
    if clean {
        let (heads, payload) = notifications(&seqs);
        clean = conn.finish(&heads, CHANNEL, &payload).is_ok();
    }
    conn.release();
    if clean && conn.batch("COMMIT").is_ok() {
        return Some(results);
    }
    let _ = conn.batch("ROLLBACK");
    None
}

/// The batch with a savepoint per mutation, so a failed one rolls back only its own work.
fn commit_with_savepoints(
    conn: &mut PgConn,
    epoch: &str,
    batch: &[WriteJob],
    order: &[usize],
) -> Result<Results, StoreError> {
    conn.batch(BEGIN)?;
    let mut results: Results = (0..batch.len()).map(|_| None).collect();
    let mut seqs = SeqHeads::default();
    let mut services = ServicesSeen::default();
    // A successful mutation's savepoint is released together with the next one's creation
    // (one round trip); COMMIT releases the last.
    let mut release_pending = false;
    for &i in order {
        let job = &batch[i];
        let Some(mutation) = &job.mutation else {
            results[i] = Some(not_taken());
            continue;
        };
        for attempt in 1..=ATTEMPTS {
            conn.last_retryable = false;
            conn.batch(if release_pending { "RELEASE m; SAVEPOINT m" } else { "SAVEPOINT m" })?;
            release_pending = false;
            let before = seqs.clone();
            let mut tx = PgTx { conn, epoch, seqs: &mut seqs, services: &mut services };
            let outcome = rules::apply(&mut tx, &job.actor, mutation.clone(), Timestamp::now());
            if outcome.is_ok() {
                release_pending = true;
            } else {
                // Its savepoint's rollback also gave up the row locks its reads took.
                seqs = before;
                services.forget();
                conn.batch("ROLLBACK TO m; RELEASE m")?;
                if conn.last_retryable && attempt < ATTEMPTS {
                    continue;
                }
            }
            results[i] = Some(outcome);
            break;
        }
    }
    let (heads, payload) = notifications(&seqs);
    conn.finish(&heads, CHANNEL, &payload)?;
    conn.batch("COMMIT")?;
    Ok(results)
}

fn parse_hint(payload: &str) -> Option<ChangeHint> {
    let (service, seq) = payload.split_once(':')?;
    Some(ChangeHint { service: Sid::parse(service).ok()?, seq: seq.parse().ok()? })
}

struct PgTx<'a> {
    conn: &'a mut PgConn,
    epoch: &'a str,
    /// Sequence heads of the services this batch has locked, allocated in memory: the lock
    /// taken when the service was read keeps every other writer out until COMMIT.
    seqs: &'a mut SeqHeads,
    /// Service rows this batch has read, each under the lock that read took.
    services: &'a mut ServicesSeen,
}

impl_tx_state!(PgTx<'_>, rows, {
    fn epoch(&self) -> &str {
        self.epoch
    }
    fn service(&mut self, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
        let conn = &mut *self.conn;
        let mut found = self.services.read(r, || rows::service_for_update(conn, r))?;
        if let Some(s) = &mut found {
            self.seqs.overlay(s);
        }
        Ok(found)
    }
    fn next_seq(&mut self, service: &Sid) -> Result<u64, StoreError> {
        let conn = &mut *self.conn;
        self.seqs.next(service, || rows::lock_head_seq(conn, service))
    }
    fn object(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Result<Option<SyncObject>, StoreError> {
        rows::object(self.conn, service, kind, r)
    }
    fn items_at(&mut self, object: &Sid, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        rows::items_at(self.conn, object, keys)
    }
    fn insert_event(
        &mut self,
        service: &Sid,
        seq: u64,
        object: &Sid,
        date: Timestamp,
        json: &str,
    ) -> Result<(), StoreError> {
        let body = self.conn.event_format.body(self.epoch, service, seq, json);
        rows::insert_event(self.conn, service, seq, object, date, body)
    }
    fn put_object_with_event(
        &mut self,
        object: &SyncObject,
        seq: u64,
        date: Timestamp,
        json: &str,
        // Bound as JSON here, not as text: the value is what is sent.
        _data: Option<&str>,
    ) -> Result<(), StoreError> {
        let body = self.conn.event_format.body(self.epoch, &object.service_sid, seq, json);
        rows::put_object_with_event(self.conn, object, seq, date, body)
    }
});

impl PgTx<'_> {
    /// The services table was written: rows are read afresh.
    fn services_written(&mut self) {
        self.services.forget();
    }

    /// Nothing to forget: this transaction keeps no row between statements.
    fn objects_written(&mut self, _sid: Option<&Sid>) {}
}

impl PgStore {
    /// Every write takes a turn of the writer thread's group commit: a commit here is a round
    /// trip to the server, too long to hold a runtime thread for.
    async fn write(&self, actor: Actor, mutation: Mutation) -> Result<Applied, CoreError> {
        crate::queue_write(&self.writer, actor, mutation, None).await
    }
}

impl_store!(PgStore, rows, {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.batch("SELECT 1")).await
    }

    async fn claim_meta(&self, key: &str, proposed: &str) -> Result<(String, bool), StoreError> {
        let (key, proposed) = (key.to_owned(), proposed.to_owned());
        self.read(move |c| claim_meta(c, &key, &proposed)).await
    }

    fn change_hints(&self) -> Option<broadcast::Receiver<ChangeHint>> {
        Some(self.hints.subscribe())
    }
});

#[cfg(test)]
mod tests;
