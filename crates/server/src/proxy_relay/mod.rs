//! Twilio Proxy's relay: what the Proxy engine queues for the outside world, done.
//!
//! Every change of the Proxy face that has an effect outside the store (a message to relay, an
//! interaction's status for the service's callback, an alert, a message no session holds) is
//! queued as a [`ProxyJob`] in the `outbox` List of the `proxy` service, in the change's own
//! transaction. This [`LogConsumer`] follows that service's change log and does the jobs, so
//! nothing acknowledged is lost to a crash: delivery is at least once, and the cursor moves past
//! a batch only when each of its jobs was done or given up.
//!
//! Jobs of one lane ([`ProxyJob::lane`], a session) run strictly in order, so a session's
//! messages and its status callbacks keep their order; lanes run side by side, a bounded number
//! at a time. The HTTP side ([`sender`]) uses the webhook settings: their timeouts, their bound
//! on requests in flight and their retry policy.

mod callbacks;
mod delivery;
mod sender;
mod twiml;

use crate::logfeed::{self, Feeds, Follow, Lease, LogConsumer, Retried, RetryPolicy, with_retries};
use crate::state::AppState;
use ferrosync_core::engine::{PROXY_OUTBOX, PROXY_SERVICE, ProxyJob, ProxyService};
use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::ObjectRef;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent, consumers};
use ferrosync_core::{CoreError, Engine};
use futures_util::StreamExt;
use sender::Sender;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
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
    let relay = Relay {
        engine: state.engine.clone(),
        sender,
        retry: settings.retry.clone(),
        lanes: settings.max_concurrent.max(1),
    };
    logfeed::spawn(feeds, Arc::new(Follow(ProxyRelay(Arc::new(relay)))));
}

/// What the jobs share.
struct Relay {
    engine: Arc<Engine>,
    sender: Sender,
    retry: RetryPolicy,
    /// Lanes worked on at once.
    lanes: usize,
}

/// The relay as a consumer of the `proxy` service's change log.
struct ProxyRelay(Arc<Relay>);

impl LogConsumer for ProxyRelay {
    const CONSUMER: &'static str = consumers::PROXY_RELAY;
    /// Nothing to read per batch: each job names its Proxy service, read when the job runs.
    type Target = ();

    async fn target(&self, service: &Sid) -> Result<Option<()>, StoreError> {
        let svc = self.0.engine.store().service(&ObjectRef::Sid(service.clone())).await?;
        Ok(svc.filter(|s| s.unique_name.as_deref() == Some(PROXY_SERVICE)).map(|_| ()))
    }

    async fn deliver(&self, _: &(), events: &[StoredEvent], _full: bool, lease: &Lease) -> Option<u64> {
        let last = events.last().map_or(0, |e| e.seq);
        let stop = lease.stopped();
        let runs = lanes(jobs(events)).into_iter().map(|(lane, jobs)| {
            let relay = self.0.clone();
            let span = tracing::info_span!("proxy_lane", lane = %lane);
            async move {
                for (seq, job) in jobs {
                    relay.run(seq, job, stop).await?;
                }
                Some(())
            }
            .instrument(span)
        });
        let done: Vec<Option<()>> = futures_util::stream::iter(runs).buffer_unordered(self.0.lanes).collect().await;
        // Stopped (shutdown, or the lease lost): the batch is done again by whoever goes on.
        if done.iter().any(Option::is_none) { None } else { Some(last) }
    }
}

fn dropped(reason: &'static str) {
    metrics::counter!("ferrosync_log_consumer_dropped_total", "consumer" => consumers::PROXY_RELAY, "reason" => reason)
        .increment(1);
}

/// The jobs queued in `events` (items added to the outbox), with their seqs, in order.
fn jobs(events: &[StoredEvent]) -> Vec<(u64, ProxyJob)> {
    let mut out = Vec::new();
    for stored in events {
        let event: Event = match serde_json::from_str(stored.json.get()) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(seq = stored.seq, error = %e, "a change-log event cannot be read; skipped");
                dropped("unreadable");
                continue;
            }
        };
        if event.kind != EventKind::ListItemAdded || event.unique_name.as_deref() != Some(PROXY_OUTBOX) {
            continue;
        }
        match event.data.map(serde_json::from_value::<ProxyJob>) {
            Some(Ok(job)) => out.push((stored.seq, job)),
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
    out
}

/// `jobs` by lane, each lane in queue order, lanes in the order they first appear.
fn lanes(jobs: Vec<(u64, ProxyJob)>) -> Vec<(String, Vec<(u64, ProxyJob)>)> {
    let mut out: Vec<(String, Vec<(u64, ProxyJob)>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (seq, job) in jobs {
        let lane = job.lane();
        match index.get(&lane) {
            Some(&i) => out[i].1.push((seq, job)),
            None => {
                index.insert(lane.clone(), out.len());
                out.push((lane, vec![(seq, job)]));
            }
        }
    }
    out
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
        self.store_op(stop, || self.engine.proxy_service_for_relay(sid)).await
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
    use ferrosync_core::timestamp::Timestamp;

    fn stored(seq: u64, kind: &str, unique_name: &str, data: serde_json::Value) -> StoredEvent {
        let event = serde_json::json!({
            "seq": seq, "token": "t", "type": kind, "service_sid": Sid::new(SidKind::Service),
            "object_sid": Sid::new(SidKind::List), "object_kind": "list", "unique_name": unique_name,
            "revision": 0, "data": data, "date": Timestamp::now(), "identity": "system",
        });
        StoredEvent {
            seq,
            object_sid: Sid::new(SidKind::List),
            json: serde_json::value::to_raw_value(&event).expect("serialises"),
        }
    }

    #[test]
    fn only_outbox_additions_are_jobs_and_lanes_keep_their_order() {
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
        let got = lanes(jobs(&events));
        let seqs: Vec<(String, Vec<u64>)> =
            got.iter().map(|(lane, jobs)| (lane.clone(), jobs.iter().map(|(s, _)| *s).collect())).collect();
        assert_eq!(seqs, [(a.to_string(), vec![1, 7]), (b.to_string(), vec![3]), ("+1".to_owned(), vec![6])]);
    }
}
