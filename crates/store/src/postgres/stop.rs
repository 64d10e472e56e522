//! The store's stop, as its background threads see it: set once as the store goes, it ends
//! their sleeps between rounds at once, so none keeps its connection open for a whole interval
//! after the store is gone. A thread that waits on a runtime waits for it as a future.

use std::sync::{Condvar, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub(super) struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
    changed_async: Notify,
}

impl Stop {
    pub(super) fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
        self.changed_async.notify_waiters();
    }

    /// Completes once the store has stopped.
    pub(super) async fn stopped(&self) {
        let notified = self.changed_async.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a stop between the two still wakes it.
        notified.as_mut().enable();
        if !self.is_stopped() {
            notified.await;
        }
    }

    pub(super) fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits `period`, or less if the store stops meanwhile; answers whether it has stopped.
    pub(super) fn sleep(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) =
            self.changed.wait_timeout_while(stopped, period, |stopped| !*stopped).unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A thread asleep for an hour wakes when the store stops, and finds it stopped; one that
    /// sleeps after the stop returns at once.
    #[test]
    fn a_stop_wakes_a_sleeping_thread() {
        let stop = Arc::new(Stop::default());
        let sleeper = std::thread::spawn({
            let stop = stop.clone();
            move || stop.sleep(Duration::from_secs(3600))
        });
        assert!(!stop.sleep(Duration::from_millis(1)), "not stopped yet: the sleep runs its course");
        stop.stop();
        assert!(sleeper.join().expect("the sleeper ran"), "woken by the stop");
        assert!(stop.is_stopped());
        assert!(stop.sleep(Duration::from_secs(3600)), "after the stop a sleep returns at once");
    }

    /// The same for a future: one waiting when the store stops completes, and one that starts
    /// waiting after the stop completes at once.
    #[tokio::test]
    async fn a_stop_completes_a_waiting_future() {
        let stop = Arc::new(Stop::default());
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.stopped().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "not stopped yet");
        stop.stop();
        waiter.await.expect("the waiter completed");
        stop.stopped().await;
    }
}
