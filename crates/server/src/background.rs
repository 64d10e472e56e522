//! Work that runs on a timer: TTL expiry (so expired things go within a second) and change-log
//! retention.

use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;
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
        }
    });
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
