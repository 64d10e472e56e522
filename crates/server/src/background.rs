//! Work that runs beside the requests: TTL expiry (so expired things go within a second),
//! change-log retention, the change log's consumers (webhooks, Cognito Streams and push sync,
//! bulk publishes), usage counters, and, on a shared store, wake-ups for other nodes' commits.
//! Expiry and retention are safe on many nodes at once: the store hands each expired row to one
//! node and lets one node prune at a time; log consumers take a lease per service.

use crate::state::AppState;
use ferrosync_core::model::ObjectRef;
use ferrosync_core::store::ChangeHint;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

pub fn spawn(state: Arc<AppState>) -> TaskTracker {
    let tracker = TaskTracker::new();
    let s = state.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = s.shutdown.cancelled() => break,
            }
            // Keep going until a sweep comes back short, so a burst of expiries drains quickly.
            loop {
                match s.engine.expire_due().await {
                    Ok(n) if n >= 500 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "expiry sweep failed");
                        break;
                    }
                }
            }
            // Proxy sessions past their Ttl or DateExpiry close (and free their numbers) the same way.
            loop {
                match s.engine.expire_proxy_sessions().await {
                    Ok(n) if n >= 100 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "Proxy session expiry failed");
                        break;
                    }
                }
            }
        }
    });
    let feeds = crate::logfeed::Feeds::new(
        state.engine.clone(),
        state.settings.leases.clone(),
        state.shutdown.clone(),
        tracker.clone(),
    );
    crate::webhooks::spawn(&state, &feeds, &tracker);
    crate::proxy_relay::spawn(&state, &feeds);
    let s = state.clone();
    tracker.spawn(async move {
        // Usage counters kept in memory reach the store every second, and once more at the end.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                () = s.shutdown.cancelled() => true,
            };
            if let Err(e) = s.engine.flush_usage().await {
                tracing::warn!(error = %e, "cannot write usage counters; kept for the next try");
            }
            if stopping {
                break;
            }
        }
    });
    crate::cognito::spawn(&feeds, &state.settings.cognito, state.push.clone());
    if let Some(hints) = state.engine.store().change_hints() {
        tracker.spawn(forward_hints(state.clone(), hints));
    }
    let s = state;
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = s.shutdown.cancelled() => break,
            }
            match s.engine.prune_log().await {
                Ok(n) if n > 0 => {
                    tracing::info!(events = n, "pruned change-log events past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "change-log pruning failed"),
            }
            s.engine.notifier().sweep();
        }
    });
    tracker
}

/// Wakes this node's readers for commits made on other nodes. Hints can be dropped (a lagging
/// channel, a lost database connection); then every watched service's head is read again, so a
/// reader is at worst late, never stuck.
async fn forward_hints(state: Arc<AppState>, mut hints: broadcast::Receiver<ChangeHint>) {
    loop {
        let hint = tokio::select! {
            h = hints.recv() => h,
            () = state.shutdown.cancelled() => break,
        };
        match hint {
            Ok(h) => state.engine.notifier().notify_watched(&h.service, h.seq),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "change hints lagged; re-reading watched services' heads");
                for sid in state.engine.notifier().watched() {
                    match state.engine.store().service(&ObjectRef::Sid(sid.clone())).await {
                        Ok(Some(service)) => state.engine.notifier().notify_watched(&sid, service.head_seq),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot read a service head"),
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}
