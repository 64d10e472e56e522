//! The delivery tasks: a supervisor that takes the leases of services with webhooks, one task
//! per leased service that follows its change log from the cursor, and the reachability lanes.

use super::WebhookSettings;
use super::params;
use super::reachability::{ReachabilityEvent, SettingsLookup};
use super::sender::{Delivered, Sender};
use crate::state::AppState;
use ferrosync_core::Engine;
use ferrosync_core::log::Event;
use ferrosync_core::model::ObjectRef;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Events read from the log at a time.
const BATCH: u32 = 100;
/// Reachability webhooks waiting per service before new ones are dropped (and counted).
const LANE: usize = 256;
/// A reachability lane with nothing to do for this long ends (and is made again when needed).
const LANE_IDLE: Duration = Duration::from_secs(60);

struct Ctx {
    engine: Arc<Engine>,
    sender: Sender,
    settings: WebhookSettings,
    /// This node's name in leases.
    node: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Starts webhook delivery beside the server; every task ends on `state.shutdown`.
pub fn spawn(state: &Arc<AppState>, tasks: &TaskTracker) {
    let settings = state.webhooks.settings().clone();
    let sender = match Sender::new(settings.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    let ctx = Arc::new(Ctx {
        engine: state.engine.clone(),
        sender,
        settings,
        node: ferrosync_core::auth::random_hex(8),
        shutdown: state.shutdown.clone(),
        tasks: tasks.clone(),
    });
    tasks.spawn(supervise(ctx.clone()).instrument(tracing::info_span!("webhooks", node = %ctx.node)));

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

/// Takes the lease of every service with webhooks that no live node delivers, and starts its
/// task; checks again every `recheck`.
async fn supervise(ctx: Arc<Ctx>) {
    let mut running: HashMap<Sid, JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(ctx.settings.recheck);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = ctx.shutdown.cancelled() => break,
        }
        running.retain(|_, task| !task.is_finished());
        let cursors = match ctx.engine.store().webhook_cursors().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read webhook cursors");
                continue;
            }
        };
        let now = Timestamp::now();
        for cursor in cursors {
            if running.contains_key(&cursor.service) {
                continue;
            }
            let free = cursor.lease_owner.as_deref().is_none_or(|o| o == ctx.node) || cursor.lease_expires < now;
            if !free {
                continue;
            }
            let until = until(&ctx);
            match ctx.engine.store().take_webhook_lease(&cursor.service, &ctx.node, now, until).await {
                Ok(Some(delivered)) => {
                    tracing::debug!(service = %cursor.service, delivered, "took the webhook lease");
                    let span = tracing::info_span!("service_webhooks", service = %cursor.service);
                    let task = ctx
                        .tasks
                        .spawn(deliver_service(ctx.clone(), cursor.service.clone(), delivered).instrument(span));
                    running.insert(cursor.service, task);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(service = %cursor.service, error = %e, "cannot take a webhook lease"),
            }
        }
    }
}

fn until(ctx: &Ctx) -> Timestamp {
    Timestamp(Timestamp::now().millis() + ctx.settings.lease.as_millis() as i64)
}

/// Why a service's delivery stopped.
enum Stop {
    Shutdown,
    LeaseLost,
    NoWebhook,
}

/// Delivers one service's webhooks from `cursor` on while this node holds its lease.
async fn deliver_service(ctx: Arc<Ctx>, service: Sid, cursor: u64) {
    let stop = ctx.shutdown.child_token();
    let _stop_renewing = stop.clone().drop_guard();
    ctx.tasks.spawn(renew_lease(ctx.clone(), service.clone(), stop.clone()).in_current_span());
    let why = follow_log(&ctx, &service, cursor, &stop).await;
    match why {
        Stop::Shutdown => {
            // Another node may take over at once rather than when the lease runs out.
            if let Err(e) = ctx.engine.store().release_webhook_lease(&service, &ctx.node).await {
                tracing::debug!(error = %e, "cannot release the webhook lease");
            }
        }
        Stop::LeaseLost => tracing::info!("the webhook lease was lost; another node delivers now"),
        Stop::NoWebhook => tracing::debug!("the service has no webhook any more"),
    }
}

/// Keeps the lease while deliveries run (one webhook's retries can outlast it); a lease found
/// lost stops them.
async fn renew_lease(ctx: Arc<Ctx>, service: Sid, stop: CancellationToken) {
    let every = ctx.settings.lease / 3;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        match ctx.engine.store().advance_webhook_cursor(&service, &ctx.node, 0, until(&ctx)).await {
            Ok(true) => {}
            Ok(false) => {
                stop.cancel();
                return;
            }
            // The store is unreachable: keep trying while the lease may still run.
            Err(e) => tracing::warn!(error = %e, "cannot renew the webhook lease"),
        }
    }
}

async fn follow_log(ctx: &Ctx, service: &Sid, mut cursor: u64, stop: &CancellationToken) -> Stop {
    let store = ctx.engine.store();
    // Subscribe first, then read, then wait: a commit between the read and the wait still wakes us.
    let mut wake = ctx.engine.notifier().subscribe(service);
    loop {
        if stop.is_cancelled() {
            return stopped(ctx);
        }
        let read = async {
            let svc = store.service(&ObjectRef::Sid(service.clone())).await?;
            let events = store.events(service, cursor, None, BATCH).await?;
            Ok::<_, StoreError>((svc, events))
        };
        let (svc, events) = match read.await {
            Ok((Some(svc), events)) => (svc, events),
            Ok((None, _)) => return Stop::NoWebhook,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the change log for webhooks");
                if !pause(ctx.settings.recheck, stop).await {
                    return stopped(ctx);
                }
                continue;
            }
        };
        let Some(url) = svc.settings.webhook_url.clone() else { return Stop::NoWebhook };
        if events.is_empty() {
            tokio::select! {
                Ok(()) = wake.changed() => {}
                () = tokio::time::sleep(ctx.settings.recheck) => {}
                () = stop.cancelled() => return stopped(ctx),
            }
            continue;
        }
        if let Some(first) = events.first()
            && first.seq > cursor + 1
        {
            // Retention pruned events that were never delivered (delivery was down for longer
            // than the log keeps them).
            let lost = first.seq - cursor - 1;
            tracing::error!(lost, after = cursor, "webhook events were pruned before delivery");
            metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "pruned").increment(lost);
        }
        // The cursor moves after each delivered event; events not delivered (unwanted) move it
        // along with the next delivery or at the end of the batch.
        let mut passed = cursor;
        for stored in &events {
            match deliver_event(ctx, &url, &svc.settings, svc.head_seq, stored, stop).await {
                Some(true) => {
                    if !advance(ctx, service, stored.seq).await {
                        return Stop::LeaseLost;
                    }
                    cursor = stored.seq;
                }
                Some(false) => {}
                None => return stopped(ctx),
            }
            passed = stored.seq;
        }
        if passed > cursor {
            if !advance(ctx, service, passed).await {
                return Stop::LeaseLost;
            }
            cursor = passed;
        }
    }
}

fn stopped(ctx: &Ctx) -> Stop {
    if ctx.shutdown.is_cancelled() { Stop::Shutdown } else { Stop::LeaseLost }
}

/// Sleeps `d` unless stopped first; false when stopped.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stop.cancelled() => false,
    }
}

/// Moves the cursor to `seq`, retrying while the store is unreachable; false when the lease is
/// lost (or delivery stops meanwhile).
async fn advance(ctx: &Ctx, service: &Sid, seq: u64) -> bool {
    loop {
        match ctx.engine.store().advance_webhook_cursor(service, &ctx.node, seq, until(ctx)).await {
            Ok(held) => return held,
            Err(e) => {
                tracing::warn!(error = %e, seq, "cannot record a webhook delivery; retrying");
                if !pause(Duration::from_millis(500), &ctx.shutdown).await {
                    return false;
                }
            }
        }
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
