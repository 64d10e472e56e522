//! Background readers of services' change logs: Twilio Sync webhooks, Cognito Streams and
//! Cognito push sync, each a [`LogConsumer`].
//!
//! Each consumer has a cursor per service in the store: the last event it handled. A node works
//! on a service's cursor only while it holds that cursor's lease (an expiry in the store,
//! renewed while it works, taken over when it runs out), reads the log in order from the cursor,
//! delivers, and moves the cursor on only after a delivery was acknowledged or given up. So
//! delivery is at least once, in order per service, survives restarts, and one node works on
//! each service and consumer at a time. [`Leased`] work without a log (a bulk publish) uses the
//! same leases.

use backon::{BackoffBuilder, ExponentialBuilder};
use ferrosync_core::Engine;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Events read from the log at a time (more when one unit of delivery spans a whole batch).
const BATCH: u32 = 100;
/// The most events read at once while a unit of delivery still does not fit.
const MAX_BATCH: u32 = 20_000;

/// Tunables of leases.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// How long a node's claim on a service lasts unless renewed (every third of it).
    pub lease: Duration,
    /// How often cursors are re-checked without a wake-up: new ones, leases to take over, and
    /// events whose wake-up was lost.
    pub recheck: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings { lease: Duration::from_secs(30), recheck: Duration::from_secs(2) }
    }
}

/// How often and how patiently one delivery is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before the delivery is given up (logged, counted and skipped).
    pub attempts: usize,
    /// The wait before the first retry; each later one waits three times longer, up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 5 attempts over about 2.5 minutes: 4 s, 12 s, 36 s and 108 s apart (with jitter).
        RetryPolicy { attempts: 5, first_retry: Duration::from_secs(4), max_retry: Duration::from_secs(120) }
    }
}

/// How a delivery with retries ended.
#[derive(Debug)]
pub enum Retried<E> {
    Done,
    /// Every attempt failed, or the error was not worth retrying; the last error.
    GaveUp(E),
    /// Stopped first (shutdown or a lost lease); it will be delivered again.
    Cancelled,
}

/// How long an attempt already under way may still take once work stops. It may have reached
/// its receiver already: dropped, its answer would be lost and the next holder of the lease
/// would deliver it again. Past this, shutdown does not wait and delivery stays at least once.
pub const FINISH_ON_STOP: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails with an error `retryable` refuses, the attempts run
/// out, or `cancel` fires; waits grow threefold with jitter. An attempt under way when `cancel`
/// fires is let finish, for up to [`FINISH_ON_STOP`]; none starts after.
pub async fn with_retries<E, F, Fut>(
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    retryable: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Retried<E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut delays = ExponentialBuilder::new()
        .with_min_delay(policy.first_retry)
        .with_max_delay(policy.max_retry)
        .with_factor(3.0)
        .with_jitter()
        .with_max_times(policy.attempts.saturating_sub(1))
        .build();
    let mut n = 1;
    loop {
        let mut current = std::pin::pin!(attempt());
        let result = tokio::select! {
            r = &mut current => r,
            () = cancel.cancelled() => match tokio::time::timeout(FINISH_ON_STOP, current).await {
                Ok(Ok(())) => return Retried::Done,
                Ok(Err(e)) if !retryable(&e) => return Retried::GaveUp(e),
                _ => return Retried::Cancelled,
            },
        };
        let e = match result {
            Ok(()) => return Retried::Done,
            Err(e) => e,
        };
        if !retryable(&e) {
            return Retried::GaveUp(e);
        }
        let Some(delay) = delays.next() else { return Retried::GaveUp(e) };
        tracing::info!(attempt = n, error = %e, retry_in = ?delay, "delivery attempt failed");
        n += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Retried::Cancelled,
        }
    }
}

/// What every leased task shares.
pub struct Feeds {
    engine: Arc<Engine>,
    settings: LeaseSettings,
    /// This node's name in leases.
    node: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Feeds {
    pub fn new(
        engine: Arc<Engine>,
        settings: LeaseSettings,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Arc<Self> {
        Arc::new(Feeds { engine, settings, node: ferrosync_core::auth::random_hex(8), shutdown, tasks })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn until(&self) -> Timestamp {
        Timestamp(Timestamp::now().millis() + self.settings.lease.as_millis() as i64)
    }
}

/// A service's lease for one consumer, held while its task works.
pub struct Lease {
    feeds: Arc<Feeds>,
    consumer: &'static str,
    service: Sid,
    stop: CancellationToken,
}

impl Lease {
    pub fn service(&self) -> &Sid {
        &self.service
    }

    /// Fires on shutdown or when the lease is lost.
    pub fn stopped(&self) -> &CancellationToken {
        &self.stop
    }

    /// How long to wait for work without a wake-up before looking again.
    pub fn recheck(&self) -> Duration {
        self.feeds.settings.recheck
    }

    /// Moves the cursor to `seq`, retrying while the store is unreachable; false when the lease
    /// is lost (or work stops meanwhile).
    pub async fn advance(&self, seq: u64) -> bool {
        let store = self.feeds.engine.store();
        loop {
            match store
                .advance_log_cursor(self.consumer, &self.service, &self.feeds.node, seq, self.feeds.until())
                .await
            {
                Ok(true) => return true,
                Ok(false) => {
                    self.stop.cancel();
                    return false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq, "cannot record a delivery; retrying");
                    if !pause(Duration::from_millis(500), &self.stop).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Keeps the lease while work runs (one delivery's retries can outlast it); a lease found
    /// lost stops the work.
    async fn renew(feeds: Arc<Feeds>, consumer: &'static str, service: Sid, stop: CancellationToken) {
        let every = feeds.settings.lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
            match feeds.engine.store().advance_log_cursor(consumer, &service, &feeds.node, 0, feeds.until()).await {
                Ok(true) => {}
                Ok(false) => {
                    stop.cancel();
                    return;
                }
                // The store is unreachable: keep trying while the lease may still run.
                Err(e) => tracing::warn!(error = %e, "cannot renew a lease"),
            }
        }
    }
}

/// Why leased work ended.
pub enum Stop {
    Shutdown,
    LeaseLost,
    /// The service no longer wants it (its cursor may be gone already).
    Done,
}

/// Work that one node at a time does per service: what a cursor of `CONSUMER` asks for.
pub trait Leased: Send + Sync + 'static {
    const CONSUMER: &'static str;

    /// Works on `lease.service()` from `cursor` on while the lease holds.
    fn run(self: Arc<Self>, lease: Arc<Lease>, cursor: u64) -> impl Future<Output = Stop> + Send;
}

/// Starts the supervisor of `work`: it takes the lease of every cursor of its consumer that no
/// live node holds and runs the work for it; checks again every `recheck`. Ends on shutdown.
pub fn spawn<W: Leased>(feeds: &Arc<Feeds>, work: Arc<W>) {
    let span = tracing::info_span!("log_consumer", consumer = W::CONSUMER, node = %feeds.node);
    feeds.tasks.spawn(supervise(feeds.clone(), work).instrument(span));
}

async fn supervise<W: Leased>(feeds: Arc<Feeds>, work: Arc<W>) {
    let mut running: HashMap<Sid, JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(feeds.settings.recheck);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let store = feeds.engine.store();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = feeds.shutdown.cancelled() => break,
        }
        running.retain(|_, task| !task.is_finished());
        let cursors = match store.log_cursors(W::CONSUMER).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read cursors");
                continue;
            }
        };
        let now = Timestamp::now();
        for cursor in cursors {
            if running.contains_key(&cursor.service) {
                continue;
            }
            let free = cursor.lease_owner.as_deref().is_none_or(|o| o == feeds.node) || cursor.lease_expires < now;
            if !free {
                continue;
            }
            match store.take_log_lease(W::CONSUMER, &cursor.service, &feeds.node, now, feeds.until()).await {
                Ok(Some(delivered)) => {
                    tracing::debug!(service = %cursor.service, delivered, "took the lease");
                    let span = tracing::info_span!("service", service = %cursor.service);
                    let task = feeds.tasks.spawn(
                        hold::<W>(feeds.clone(), work.clone(), cursor.service.clone(), delivered).instrument(span),
                    );
                    running.insert(cursor.service, task);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(service = %cursor.service, error = %e, "cannot take a lease"),
            }
        }
    }
}

/// Runs `work` for `service` while renewing its lease.
async fn hold<W: Leased>(feeds: Arc<Feeds>, work: Arc<W>, service: Sid, cursor: u64) {
    let stop = feeds.shutdown.child_token();
    let _stop_renewing = stop.clone().drop_guard();
    feeds.tasks.spawn(Lease::renew(feeds.clone(), W::CONSUMER, service.clone(), stop.clone()).in_current_span());
    let lease = Arc::new(Lease { feeds: feeds.clone(), consumer: W::CONSUMER, service: service.clone(), stop });
    match work.run(lease, cursor).await {
        Stop::Shutdown => {
            // Another node may take over at once rather than when the lease runs out.
            if let Err(e) = feeds.engine.store().release_log_lease(W::CONSUMER, &service, &feeds.node).await {
                tracing::debug!(error = %e, "cannot release the lease");
            }
        }
        Stop::LeaseLost => tracing::info!("the lease was lost; another node works on it now"),
        Stop::Done => tracing::debug!("nothing more to do"),
    }
}

/// Logs and counts the events retention pruned before `consumer` read them (it was down for
/// longer than the log keeps them): those between `after` and the first of `events`.
pub fn note_pruned(consumer: &'static str, after: u64, events: &[StoredEvent]) {
    if let Some(first) = events.first()
        && first.seq > after + 1
    {
        let lost = first.seq - after - 1;
        tracing::error!(lost, after, "events were pruned before delivery");
        metrics::counter!("ferrosync_log_consumer_dropped_total", "consumer" => consumer, "reason" => "pruned")
            .increment(lost);
    }
}

/// Why a lease's work stopped, from its stop token.
pub fn stopped(lease: &Lease) -> Stop {
    if lease.feeds.shutdown.is_cancelled() { Stop::Shutdown } else { Stop::LeaseLost }
}

/// Sleeps `d` unless stopped first; false when stopped.
pub async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stop.cancelled() => false,
    }
}

/// A reader of a service's change log.
pub trait LogConsumer: Send + Sync + 'static {
    const CONSUMER: &'static str;
    /// Where deliveries go, read before each batch.
    type Target: Send + Sync;

    /// The service's current target; `None` when it no longer wants deliveries.
    fn target(&self, service: &Sid) -> impl Future<Output = Result<Option<Self::Target>, StoreError>> + Send;

    /// Delivers `events` in order, advancing the lease's cursor as units of delivery are
    /// acknowledged or given up. Returns the last seq handled — short of the batch's end when
    /// its last unit may continue past it — or `None` when stopped.
    fn deliver(
        &self,
        target: &Self::Target,
        events: &[StoredEvent],
        full: bool,
        lease: &Lease,
    ) -> impl Future<Output = Option<u64>> + Send;
}

/// Runs a [`LogConsumer`] as [`Leased`] work.
pub struct Follow<C>(pub C);

impl<C: LogConsumer> Leased for Follow<C> {
    const CONSUMER: &'static str = C::CONSUMER;

    async fn run(self: Arc<Self>, lease: Arc<Lease>, mut cursor: u64) -> Stop {
        let feeds = lease.feeds.clone();
        let store = feeds.engine.store();
        let service = lease.service.clone();
        let stop = lease.stop.clone();
        // Subscribe first, then read, then wait: a commit between the read and the wait still
        // wakes us.
        let mut wake = feeds.engine.notifier().subscribe(&service);
        let mut batch = BATCH;
        loop {
            if stop.is_cancelled() {
                return stopped(&lease);
            }
            let read = async {
                let target = self.0.target(&service).await?;
                let events = store.events(&service, cursor, None, batch).await?;
                Ok::<_, StoreError>((target, events))
            };
            let (target, events) = match read.await {
                Ok((Some(target), events)) => (target, events),
                Ok((None, _)) => return Stop::Done,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the change log");
                    if !pause(feeds.settings.recheck, &stop).await {
                        return stopped(&lease);
                    }
                    continue;
                }
            };
            if events.is_empty() {
                tokio::select! {
                    Ok(()) = wake.changed() => {}
                    () = tokio::time::sleep(feeds.settings.recheck) => {}
                    () = stop.cancelled() => return stopped(&lease),
                }
                continue;
            }
            note_pruned(C::CONSUMER, cursor, &events);
            // Still ours? A consumer turned off and on again meanwhile has a new cursor (at the
            // head) without an owner: what was read here must not go out.
            if !lease.advance(cursor).await {
                return stopped(&lease);
            }
            // At the largest batch a unit is delivered as far as it was read.
            let full = events.len() >= batch as usize && batch < MAX_BATCH;
            let Some(through) = self.0.deliver(&target, &events, full, &lease).await else { return stopped(&lease) };
            if through > cursor {
                if !lease.advance(through).await {
                    return stopped(&lease);
                }
                cursor = through;
                batch = BATCH;
            } else if full {
                // One unit spans the whole batch: read more at once.
                batch = (batch * 4).min(MAX_BATCH);
            } else if !pause(feeds.settings.recheck, &stop).await {
                // Nothing could be handled (the store failed the consumer): wait, then retry.
                return stopped(&lease);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy { attempts: 5, first_retry: Duration::from_millis(100), max_retry: Duration::from_secs(1) }
    }

    /// An attempt that takes `takes`, then answers `ok`, counting how many were started.
    fn attempt(started: &AtomicUsize, takes: Duration, ok: bool) -> impl Future<Output = Result<(), String>> {
        started.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(takes).await;
            if ok { Ok(()) } else { Err("refused".to_owned()) }
        }
    }

    /// A token that fires `after` from now.
    fn stopping_after(after: Duration) -> CancellationToken {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            stop.cancel();
        });
        cancel
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_under_way_when_work_stops_is_let_finish() {
        let (cancel, started) = (stopping_after(Duration::from_millis(10)), AtomicUsize::new(0));
        let took = tokio::time::Instant::now();
        let r = with_retries(&policy(), &cancel, |_| true, || attempt(&started, Duration::from_secs(2), true)).await;
        assert!(matches!(r, Retried::Done), "{r:?}");
        assert_eq!(took.elapsed(), Duration::from_secs(2), "it ran to its end");
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_outlasts_the_grace_is_dropped_and_delivered_again_later() {
        let (cancel, started) = (CancellationToken::new(), AtomicUsize::new(0));
        cancel.cancel();
        let took = tokio::time::Instant::now();
        let r = with_retries(&policy(), &cancel, |_| true, || attempt(&started, FINISH_ON_STOP * 2, true)).await;
        assert!(matches!(r, Retried::Cancelled), "{r:?}");
        assert_eq!(took.elapsed(), FINISH_ON_STOP);
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_once_work_stopped() {
        // During the first attempt, which fails: its retry would start at 100 ms.
        let (cancel, started) = (stopping_after(Duration::from_millis(20)), AtomicUsize::new(0));
        let r =
            with_retries(&policy(), &cancel, |_| true, || attempt(&started, Duration::from_millis(50), false)).await;
        assert!(matches!(r, Retried::Cancelled), "{r:?}");
        assert_eq!(started.load(Ordering::SeqCst), 1, "the failed attempt is not retried");

        // A failure not worth retrying still ends the delivery, as it would have without a stop.
        let started = AtomicUsize::new(0);
        let r =
            with_retries(&policy(), &cancel, |_| false, || attempt(&started, Duration::from_millis(50), false)).await;
        assert!(matches!(r, Retried::GaveUp(ref e) if e == "refused"), "{r:?}");
    }
}
