//! Twilio Proxy's relay: what the Proxy engine queues for the outside world, done.
//!
//! Every change of the Proxy face that has an effect outside the store (a message to relay, an
//! interaction's status for the service's callback, an alert, a message no session holds) is
//! queued as a [`ProxyJob`] in the `outbox` List of the `proxy` service, in the change's own
//! transaction. The relay, [`Leased`] work on that service's change log, does the jobs, so
//! nothing acknowledged is lost to a crash: delivery is at least once, and the cursor moves past
//! a job only when it and every job before it were done or given up.
//!
//! Jobs of one lane ([`ProxyJob::lane`], a session) run strictly in order, so a session's
//! messages and its status callbacks keep their order; lanes run side by side, a bounded number
//! at a time, and the log is read ahead of the slowest (see [`lanes`]). The HTTP side
//! ([`sender`]) uses the webhook settings: their timeouts, their bound on requests in flight and
//! their retry policy.

mod callbacks;
mod delivery;
mod kept;
mod lanes;
mod sender;
mod twiml;

use crate::logfeed::{self, Feeds, Lease, Leased, Retried, RetryPolicy, Stop, with_retries};
use crate::state::AppState;
use ferrosync_core::engine::{PROXY_OUTBOX, PROXY_SERVICE, PROXY_SERVICES, ProxyJob, ProxyService};
use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::ObjectRef;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent, consumers};
use ferrosync_core::{CoreError, Engine};
use kept::Kept;
use lanes::Lanes;
use sender::Sender;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What can go wrong doing a job.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the callback answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("'{0}' is not a URL")]
    Url(String),
    #[error("cannot encode the request: {0}")]
    Encode(String),
    #[error("the request slots are closed")]
    Closed,
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl RelayError {
    /// Worth another try: the receiver could not be reached, timed out, failed, or asked us to
    /// slow down.
    fn retryable(&self) -> bool {
        match self {
            RelayError::Request(_) => true,
            RelayError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            RelayError::Url(_) | RelayError::Encode(_) | RelayError::Closed | RelayError::Core(_) => false,
        }
    }

    /// The receiver could not answer at all (unreachable, or a 5xx): what the intercept callback
    /// retries before it blocks; any other answer of it blocks at once.
    fn unanswered(&self) -> bool {
        match self {
            RelayError::Request(_) => true,
            RelayError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A store failure that may pass (the database is unreachable), as opposed to a refusal.
fn transient(e: &CoreError) -> bool {
    matches!(e, CoreError::Store(StoreError::Unavailable(_) | StoreError::Backend(_)))
}

/// Starts the relay beside the server; it ends on shutdown.
pub fn spawn(state: &Arc<AppState>, feeds: &Arc<Feeds>) {
    let settings = &state.settings.webhooks;
    let sender = match Sender::new(settings, state.engine.webhook_signing_key()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Proxy relay's HTTP client; Proxy messages are not relayed");
            return;
        }
    };
    let relay = Relay { engine: state.engine.clone(), sender, retry: settings.retry.clone(), kept: Kept::default() };
    logfeed::spawn(feeds, Arc::new(ProxyRelay(Arc::new(relay))));
}

/// What the jobs share.
struct Relay {
    engine: Arc<Engine>,
    sender: Sender,
    retry: RetryPolicy,
    /// The Proxy services read, kept until the log says one changed.
    kept: Kept,
}

/// The relay as leased work on the `proxy` service's change log.
struct ProxyRelay(Arc<Relay>);

/// Sessions worked on at once. Most jobs only read and write the store; the HTTP requests
/// among them wait for the sender's own bound (the webhook settings' requests in flight), so
/// sessions waiting out a retry's backoff do not hold the others back.
const LANES: usize = 256;
/// Jobs read ahead of the oldest one not done: the most the relay holds in memory.
const AHEAD: usize = 2_000;
/// Events read at a time.
const BATCH: u32 = 500;
/// How often at most the cursor is moved while jobs finish: each move is a durable write.
const RECORD_EVERY: Duration = Duration::from_millis(50);

/// The jobs running, each task with its lane and seq.
#[derive(Default)]
struct Running {
    tasks: JoinSet<Option<()>>,
    jobs: HashMap<tokio::task::Id, (String, u64)>,
}

impl Running {
    fn spawn(&mut self, relay: Arc<Relay>, lane: String, seq: u64, job: ProxyJob, stop: CancellationToken) {
        let span = tracing::info_span!("proxy_lane", lane = %lane);
        let task = self.tasks.spawn(async move { relay.run(seq, job, &stop).await }.instrument(span));
        self.jobs.insert(task.id(), (lane, seq));
    }

    /// Waits for a job to end and notes it in `lanes`; false when it was stopped first (it is
    /// done again later), `None` when none runs.
    async fn finish(&mut self, lanes: &mut Lanes<ProxyJob>) -> Option<bool> {
        let (id, done) = match self.tasks.join_next_with_id().await? {
            Ok((id, done)) => (id, done.is_some()),
            // A job that panicked is a bug: it is counted and not done again, or it would
            // panic again at every start.
            Err(e) => {
                tracing::error!(error = %e, "a Proxy job failed unexpectedly");
                dropped("panicked");
                (e.id(), true)
            }
        };
        let (lane, seq) = self.jobs.remove(&id)?;
        if done {
            lanes.done(&lane, seq);
        }
        Some(done)
    }
}

impl Leased for ProxyRelay {
    const CONSUMER: &'static str = consumers::PROXY_RELAY;

    /// Reads the log ahead of the jobs in flight and hands each job to its lane (see [`Lanes`]);
    /// moves the cursor to the watermark as jobs finish, at most every [`RECORD_EVERY`].
    async fn run(self: Arc<Self>, lease: Arc<Lease>, cursor: u64) -> Stop {
        let stop = lease.stopped().clone();
        // Whoever held the lease before read the changes since: what was kept may be stale.
        self.0.kept.forget();
        // Subscribe first, then read, then wait: a commit between the read and the wait still
        // wakes us.
        let mut wake = self.0.engine.notifier().subscribe(lease.service());
        let mut lanes = Lanes::new(cursor, LANES);
        let mut running = Running::default();
        let mut recorded = cursor;
        let mut last_record = Instant::now();
        // There may be events after what was read.
        let mut unread = true;
        // When the service was last found to want relaying: looked at again once a re-check,
        // not at every read (the jobs' own writes wake the relay many times a second).
        let mut wanted: Option<Instant> = None;
        let end = loop {
            if stop.is_cancelled() {
                break logfeed::stopped(&lease);
            }
            if unread && lanes.len() < AHEAD {
                let check = wanted.is_none_or(|at| at.elapsed() >= lease.recheck());
                match self.read(lease.service(), lanes.read_through(), check).await {
                    Ok(Some(events)) => {
                        if check {
                            wanted = Some(Instant::now());
                        }
                        unread = events.len() >= BATCH as usize;
                        logfeed::note_pruned(consumers::PROXY_RELAY, lanes.read_through(), &events);
                        let read = jobs(&events);
                        if read.services_changed {
                            self.0.kept.forget();
                        }
                        for (seq, job) in read.jobs {
                            lanes.push(seq, job.lane(), job);
                        }
                        if let Some(last) = events.last() {
                            lanes.read_to(last.seq);
                        }
                    }
                    Ok(None) => break Stop::Done,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the change log");
                        unread = false;
                    }
                }
            }
            while let Some((lane, seq, job)) = lanes.start() {
                running.spawn(self.0.clone(), lane, seq, job, stop.clone());
            }
            metrics::gauge!("ferrosync_proxy_relay_pending").set(lanes.len() as f64);
            let mark = lanes.watermark();
            if mark > recorded && last_record.elapsed() >= RECORD_EVERY {
                if !lease.advance(mark).await {
                    break logfeed::stopped(&lease);
                }
                recorded = mark;
                last_record = Instant::now();
            }
            if unread && lanes.len() < AHEAD {
                continue;
            }
            // Nothing to read for now: wait for a job to end, a commit, the next recording, or
            // the re-check that finds events whose wake-up was lost.
            let wait =
                if mark > recorded { RECORD_EVERY.saturating_sub(last_record.elapsed()) } else { lease.recheck() };
            tokio::select! {
                Some(done) = running.finish(&mut lanes) => {
                    if !done {
                        break logfeed::stopped(&lease);
                    }
                }
                Ok(()) = wake.changed() => unread = true,
                () = tokio::time::sleep(wait) => unread = true,
                () = stop.cancelled() => break logfeed::stopped(&lease),
            }
        };
        if matches!(end, Stop::Done) {
            // The Proxy service is gone: its jobs have nothing left to do, retries included.
            stop.cancel();
        }
        // The jobs in flight see the stop and end; what they finished need not be done again
        // by whoever goes on.
        while running.finish(&mut lanes).await.is_some() {}
        let mark = lanes.watermark();
        if mark > recorded && !matches!(end, Stop::LeaseLost) {
            lease.advance(mark).await;
        }
        end
    }
}

impl ProxyRelay {
    /// The events after `after`, or `None` when (`check`ed first) the service no longer wants
    /// relaying.
    async fn read(&self, service: &Sid, after: u64, check: bool) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let store = self.0.engine.store();
        if check {
            let svc = store.service(&ObjectRef::Sid(service.clone())).await?;
            if svc.is_none_or(|svc| svc.unique_name.as_deref() != Some(PROXY_SERVICE)) {
                return Ok(None);
            }
        }
        store.events(service, after, None, BATCH).await.map(Some)
    }
}

fn dropped(reason: &'static str) {
    metrics::counter!("ferrosync_log_consumer_dropped_total", "consumer" => consumers::PROXY_RELAY, "reason" => reason)
        .increment(1);
}

/// What a read of the log brings.
#[derive(Default)]
struct Read {
    /// The jobs queued (items added to the outbox), with their seqs, in order.
    jobs: Vec<(u64, ProxyJob)>,
    /// Whether a Proxy service was made, changed or removed.
    services_changed: bool,
}

fn jobs(events: &[StoredEvent]) -> Read {
    let mut read = Read::default();
    for stored in events {
        let event: Event = match serde_json::from_str(stored.json.get()) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(seq = stored.seq, error = %e, "a change-log event cannot be read; skipped");
                dropped("unreadable");
                continue;
            }
        };
        if event.unique_name.as_deref() == Some(PROXY_SERVICES) {
            read.services_changed = true;
        }
        if event.kind != EventKind::ListItemAdded || event.unique_name.as_deref() != Some(PROXY_OUTBOX) {
            continue;
        }
        match event.data.as_deref().map(<ProxyJob as serde::Deserialize>::deserialize) {
            Some(Ok(job)) => read.jobs.push((stored.seq, job)),
            Some(Err(e)) => {
                tracing::warn!(seq = stored.seq, error = %e, "a queued Proxy job cannot be read; skipped");
                dropped("undecodable");
            }
            None => {
                tracing::warn!(seq = stored.seq, "a queued Proxy job has no data; skipped");
                dropped("undecodable");
            }
        }
    }
    read
}

/// How a job ended, for the metrics and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Done as asked (`delivered`, `sent`, posted).
    Ok,
    /// Nothing to do: no callback configured, or the service is gone.
    Skipped,
    /// The intercept callback blocked the message.
    Blocked,
    /// The message could not be delivered (no delivery URL, a refused stream message).
    Undelivered,
    /// Given up after every attempt, or refused.
    Failed,
}

impl Done {
    fn as_str(self) -> &'static str {
        match self {
            Done::Ok => "ok",
            Done::Skipped => "skipped",
            Done::Blocked => "blocked",
            Done::Undelivered => "undelivered",
            Done::Failed => "failed",
        }
    }
}

fn job_kind(job: &ProxyJob) -> &'static str {
    match job {
        ProxyJob::Relay { .. } => "relay",
        ProxyJob::Status { .. } => "status",
        ProxyJob::Alert { .. } => "alert",
        ProxyJob::OutOfSession { .. } => "out_of_session",
        ProxyJob::OpenInbox { .. } => "open_inbox",
    }
}

impl Relay {
    /// Does one job; `None` when stopped first.
    async fn run(&self, seq: u64, job: ProxyJob, stop: &CancellationToken) -> Option<()> {
        let kind = job_kind(&job);
        let span = tracing::info_span!("proxy_job", seq, job = kind);
        let done = async {
            match job {
                ProxyJob::Relay { service_sid, session_sid, interaction_sid, from, to, body, media, intercept } => {
                    let leg = delivery::Leg { session_sid, interaction_sid, from, to, body, media };
                    self.relay(&service_sid, leg, intercept, stop).await
                }
                ProxyJob::Status { service_sid, interaction } => self.status(&service_sid, &interaction, stop).await,
                ProxyJob::Alert { service_sid, alert } => self.alert(&service_sid, &alert, stop).await,
                ProxyJob::OutOfSession { service_sid, message } => {
                    self.out_of_session(&service_sid, &message, stop).await
                }
                ProxyJob::OpenInbox { service_sid, identity } => self.open_inbox(&service_sid, &identity, stop).await,
            }
        }
        .instrument(span)
        .await?;
        metrics::counter!("ferrosync_proxy_relay_total", "job" => kind, "result" => done.as_str()).increment(1);
        Some(())
    }

    /// The Proxy service a job names; `Ok(None)` when it is gone.
    async fn service(&self, sid: &Sid, stop: &CancellationToken) -> Option<Result<Option<ProxyService>, CoreError>> {
        let generation = match self.kept.get(sid) {
            Ok(kept) => return Some(Ok(kept)),
            Err(generation) => generation,
        };
        let found = self.store_op(stop, || self.engine.proxy_service_for_relay(sid)).await?;
        if let Ok(found) = &found {
            self.kept.keep(generation, sid, found);
        }
        Some(found)
    }

    /// Runs a store operation, again (with the retry policy's waits) while the store fails in a
    /// way that may pass; `None` when stopped first.
    async fn store_op<T, F, Fut>(&self, stop: &CancellationToken, op: F) -> Option<Result<T, CoreError>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CoreError>>,
    {
        retry_for(&self.retry, stop, transient, op).await
    }

    /// Posts a signed form to a callback with the retry policy, retrying what `retryable`
    /// allows; the 2xx answer, or the last error. `None` when stopped first.
    async fn post_form(
        &self,
        url: &str,
        params: &[(String, String)],
        callback: &'static str,
        retryable: fn(&RelayError) -> bool,
        stop: &CancellationToken,
    ) -> Option<Result<sender::Answer, RelayError>> {
        retry_for(&self.retry, stop, retryable, || self.sender.post_form(url, params, callback)).await
    }
}

/// [`with_retries`] for attempts that produce a value: the value of the one that succeeded, or
/// the last error; `None` when stopped first.
async fn retry_for<T, E, F, Fut>(
    policy: &RetryPolicy,
    stop: &CancellationToken,
    retryable: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let slot = std::sync::Mutex::new(None);
    let once = || {
        let fut = attempt();
        let slot = &slot;
        async move {
            let value = fut.await?;
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            Ok(())
        }
    };
    match with_retries(policy, stop, retryable, once).await {
        // An attempt succeeded, so its value is in the slot.
        Retried::Done => slot.into_inner().unwrap_or_else(|e| e.into_inner()).map(Ok),
        Retried::GaveUp(e) => Some(Err(e)),
        Retried::Cancelled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::engine::{InboundMessage, ProxyAlert};
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::store::EventJson;
    use ferrosync_core::timestamp::Timestamp;
    use serde_json::json;

    fn stored(seq: u64, kind: &str, unique_name: &str, data: serde_json::Value) -> StoredEvent {
        let event = serde_json::json!({
            "seq": seq, "token": "t", "type": kind, "service_sid": Sid::new(SidKind::Service),
            "object_sid": Sid::new(SidKind::List), "object_kind": "list", "unique_name": unique_name,
            "revision": 0, "data": data, "date": Timestamp::now(), "identity": "system",
        });
        StoredEvent {
            seq,
            object_sid: Sid::new(SidKind::List),
            json: EventJson::serialized(&event).expect("serialises"),
        }
    }

    #[test]
    fn only_outbox_additions_are_jobs_each_in_its_sessions_lane() {
        let service = Sid::new(SidKind::ProxyService);
        let (a, b) = (Sid::new(SidKind::ProxySession), Sid::new(SidKind::ProxySession));
        let alert = |session: &Sid| ProxyJob::Alert {
            service_sid: service.clone(),
            alert: ProxyAlert {
                sid: Sid::new(SidKind::Alert),
                code: 80802,
                level: "error".into(),
                service_sid: service.clone(),
                session_sid: Some(session.clone()),
                participant_sid: None,
                message: "m".into(),
                date_created: Timestamp::now(),
            },
        };
        let out_of_session = ProxyJob::OutOfSession {
            service_sid: service.clone(),
            message: InboundMessage { from: "+1".into(), to: "+2".into(), body: "b".into(), media: vec![] },
        };
        let value = |job: &ProxyJob| serde_json::to_value(job).expect("serialises");
        let events = [
            stored(1, "list_item_added", "outbox", value(&alert(&a))),
            stored(2, "list_item_added", "elsewhere", value(&alert(&b))),
            stored(3, "list_item_added", "outbox", value(&alert(&b))),
            stored(4, "list_item_added", "outbox", serde_json::json!({ "kind": "unknown" })),
            stored(5, "list_item_removed", "outbox", value(&alert(&a))),
            stored(6, "list_item_added", "outbox", value(&out_of_session)),
            stored(7, "list_item_added", "outbox", value(&alert(&a))),
        ];
        let read = jobs(&events);
        let got: Vec<(u64, String)> = read.jobs.into_iter().map(|(seq, job)| (seq, job.lane())).collect();
        assert_eq!(got, [(1, a.to_string()), (3, b.to_string()), (6, "+1".to_owned()), (7, a.to_string())]);
        assert!(!read.services_changed);

        // Any change to the services Map, an entry's or the Map's own, is a service changed.
        for kind in ["map_item_updated", "map_item_removed", "map_removed"] {
            let events =
                [stored(1, "list_item_added", "outbox", value(&alert(&a))), stored(2, kind, "services", json!({}))];
            let read = jobs(&events);
            assert!(read.services_changed, "{kind}");
            assert_eq!(read.jobs.len(), 1);
        }
    }
}
