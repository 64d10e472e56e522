//! The delivery tasks: change-log webhooks as one [`LogConsumer`] (leases and cursors are
//! [`crate::logfeed`]'s), and the reachability lanes.

use super::params;
use super::reachability::{ReachabilityEvent, SettingsLookup};
use super::sender::{Delivered, Sender};
use crate::logfeed::{self, Feeds, Follow, Lease, LogConsumer};
use crate::state::AppState;
use ferrosync_core::Engine;
use ferrosync_core::log::Event;
use ferrosync_core::model::{ObjectRef, ServiceSettings};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent, consumers};
use ferrosync_core::timestamp::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Reachability webhooks waiting per service before new ones are dropped (and counted).
const LANE: usize = 256;
/// A reachability lane with nothing to do for this long ends (and is made again when needed).
const LANE_IDLE: Duration = Duration::from_secs(60);

struct Ctx {
    engine: Arc<Engine>,
    sender: Sender,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Starts webhook delivery beside the server; every task ends on `state.shutdown`.
pub fn spawn(state: &Arc<AppState>, feeds: &Arc<Feeds>, tasks: &TaskTracker) {
    let settings = state.webhooks.settings().clone();
    let sender = match Sender::new(settings.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    let ctx =
        Arc::new(Ctx { engine: state.engine.clone(), sender, shutdown: state.shutdown.clone(), tasks: tasks.clone() });
    logfeed::spawn(feeds, Arc::new(Follow(LogWebhooks(ctx.clone()))));

    let tracker = state.webhooks.tracker.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(tracker) = tracker {
        let (tx, rx) = mpsc::channel(4096);
        let engine = state.engine.clone();
        let lookup: SettingsLookup = Arc::new(move |sid: Sid| {
            let engine = engine.clone();
            Box::pin(async move { engine.resolve_service_ref(sid.as_str()).await.ok().map(|s| s.settings) })
        });
        tasks.spawn(tracker.run(lookup, tx, state.shutdown.clone()));
        tasks.spawn(dispatch_reachability(ctx, rx).instrument(tracing::info_span!("reachability_webhooks")));
    }
}

/// Webhooks of change-log events, per service with a webhook URL.
struct LogWebhooks(Arc<Ctx>);

/// A service's webhook URL and settings, and its log's head (for the lag metric).
struct Target {
    url: String,
    settings: ServiceSettings,
    head: u64,
}

impl LogConsumer for LogWebhooks {
    const CONSUMER: &'static str = consumers::WEBHOOKS;
    type Target = Target;

    async fn target(&self, service: &Sid) -> Result<Option<Target>, StoreError> {
        let svc = self.0.engine.store().service(&ObjectRef::Sid(service.clone())).await?;
        Ok(svc.and_then(|svc| {
            let url = svc.settings.webhook_url.clone()?;
            Some(Target { url, settings: svc.settings, head: svc.head_seq })
        }))
    }

    async fn deliver(&self, t: &Target, events: &[StoredEvent], _full: bool, lease: &Lease) -> Option<u64> {
        // The cursor moves after each delivered event; events not delivered (unwanted) move it
        // along with the next delivery or at the end of the batch.
        let mut passed = 0;
        for stored in events {
            match deliver_event(&self.0, &t.url, &t.settings, t.head, stored, lease.stopped()).await {
                Some(true) => {
                    if !lease.advance(stored.seq).await {
                        return None;
                    }
                }
                Some(false) => {}
                None => return None,
            }
            passed = stored.seq;
        }
        Some(passed)
    }
}

/// Delivers one event if the service wants it: `Some(true)` when it was posted (acknowledged or
/// given up), `Some(false)` when there was nothing to post, `None` when stopped first.
async fn deliver_event(
    ctx: &Ctx,
    url: &str,
    settings: &ferrosync_core::model::ServiceSettings,
    head: u64,
    stored: &StoredEvent,
    stop: &CancellationToken,
) -> Option<bool> {
    let event: Event = match serde_json::from_str(stored.json.get()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(seq = stored.seq, error = %e, "a change-log event cannot be read; skipped");
            metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "unreadable").increment(1);
            return Some(false);
        }
    };
    if !params::wanted(&event, settings) {
        return Some(false);
    }
    let Some(form) = params::for_event(ctx.engine.account_sid(), &event) else { return Some(false) };
    metrics::histogram!("ferrosync_webhook_lag_events").record(head.saturating_sub(stored.seq) as f64);
    let key = ctx.engine.webhook_signing_key();
    match ctx.sender.deliver(url, &form, key, "log", stop).await {
        Delivered::Acknowledged => {
            let delay = (Timestamp::now().millis() - event.date.millis()).max(0) as f64 / 1000.0;
            metrics::histogram!("ferrosync_webhook_delay_seconds").record(delay);
            tracing::debug!(seq = stored.seq, event_type = ?event.kind, "webhook delivered");
            Some(true)
        }
        Delivered::GaveUp(e) => {
            tracing::error!(seq = stored.seq, event_type = ?event.kind, error = %e, "webhook given up after every attempt");
            metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "gave_up").increment(1);
            Some(true)
        }
        Delivered::Cancelled => None,
    }
}

/// Hands each reachability event to its service's lane, so one service's slow receiver
/// delays only its own webhooks, which stay in order.
async fn dispatch_reachability(ctx: Arc<Ctx>, mut events: mpsc::Receiver<ReachabilityEvent>) {
    let mut lanes: HashMap<Sid, mpsc::Sender<ReachabilityEvent>> = HashMap::new();
    loop {
        let mut event = tokio::select! {
            e = events.recv() => match e {
                Some(e) => e,
                None => break,
            },
            () = ctx.shutdown.cancelled() => break,
        };
        lanes.retain(|_, lane| !lane.is_closed());
        // A lane that just went idle is closed: the event goes to a new one.
        for _ in 0..2 {
            let lane = lanes.entry(event.service.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(LANE);
                ctx.tasks.spawn(reachability_lane(ctx.clone(), rx).in_current_span());
                tx
            });
            match lane.try_send(event) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(e)) => {
                    lanes.remove(&e.service);
                    event = e;
                }
                Err(mpsc::error::TrySendError::Full(e)) => {
                    tracing::warn!(service = %e.service, "reachability webhooks are backing up; one dropped");
                    metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "reachability_queue_full")
                        .increment(1);
                    break;
                }
            }
        }
    }
}

async fn reachability_lane(ctx: Arc<Ctx>, mut events: mpsc::Receiver<ReachabilityEvent>) {
    loop {
        let event = tokio::select! {
            e = events.recv() => match e {
                Some(e) => e,
                None => return,
            },
            () = tokio::time::sleep(LANE_IDLE) => return,
            () = ctx.shutdown.cancelled() => return,
        };
        let settings = match ctx.engine.resolve_service_ref(event.service.as_str()).await {
            Ok(s) => s.settings,
            Err(_) => continue,
        };
        let Some(url) = settings.webhook_url.filter(|_| settings.reachability_webhooks_enabled) else { continue };
        let form = params::for_reachability(ctx.engine.account_sid(), &event);
        let key = ctx.engine.webhook_signing_key();
        if let Delivered::GaveUp(e) = ctx.sender.deliver(&url, &form, key, "reachability", &ctx.shutdown).await {
            tracing::error!(service = %event.service, event_type = event.kind.event_type(), error = %e,
                "reachability webhook given up after every attempt");
            metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "gave_up").increment(1);
        }
    }
}
