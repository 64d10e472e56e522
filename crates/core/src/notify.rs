//! Wake-up hints: "service S reached seq N". Hints only; readers always re-read the log.

use crate::log::Event;
use crate::sid::Sid;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use tokio::sync::watch;

/// One watch channel per service. A reader subscribes first, then reads the log, then waits,
/// so no wake-up between its read and its wait can be lost.
#[derive(Debug, Default)]
pub struct ChangeNotifier {
    /// Found for every event committed: foldhash rather than SipHash.
    services: Mutex<foldhash::HashMap<Sid, watch::Sender<u64>>>,
    /// The objects live subscriptions on this node follow, and the services live queries
    /// follow, each with its count of subscriptions.
    interest: RwLock<foldhash::HashMap<Sid, usize>>,
    /// The sum of the counts, read first: a node without subscriptions takes no lock.
    interested: AtomicUsize,
}

impl ChangeNotifier {
    /// A live subscription to `sid` (an object, or a service for a live query) opened.
    pub fn add_interest(&self, sid: &Sid) {
        let mut map = self.interest.write().unwrap_or_else(|e| e.into_inner());
        *map.entry(sid.clone()).or_default() += 1;
        self.interested.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` live subscriptions to `sid` closed.
    pub fn remove_interest(&self, sid: &Sid, n: usize) {
        let mut map = self.interest.write().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(sid) {
            let n = n.min(*count);
            *count -= n;
            if *count == 0 {
                map.remove(sid);
            }
            self.interested.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// The live subscriptions open on this node.
    pub fn subscriptions(&self) -> usize {
        self.interested.load(Ordering::Relaxed)
    }

    /// Whether a live subscription on this node follows `event`'s object or service.
    pub fn is_awaited(&self, event: &Event) -> bool {
        if self.interested.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let map = self.interest.read().unwrap_or_else(|e| e.into_inner());
        map.contains_key(&event.object_sid) || map.contains_key(&event.service_sid)
    }

    pub fn subscribe(&self, service: &Sid) -> watch::Receiver<u64> {
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(service.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// A local commit. Always wakes: a commit below the newest announced head (a hint from
    /// another node may announce a later sequence number first) may be the very event a woken
    /// reader found missing (it stopped at that gap) and must be told about.
    pub fn notify(&self, service: &Sid, seq: u64) {
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let sender = map.entry(service.clone()).or_insert_with(|| watch::channel(0).0);
        sender.send_modify(|cur| *cur = (*cur).max(seq));
    }

    /// A hint from another node: wakes readers of a service only if this node has any (a
    /// reader that subscribes later reads the log first, so it cannot miss the event).
    pub fn notify_watched(&self, service: &Sid, seq: u64) {
        let map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = map.get(service) {
            sender.send_if_modified(|cur| {
                if seq > *cur {
                    *cur = seq;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// The services some reader on this node waits on.
    pub fn watched(&self) -> Vec<Sid> {
        let map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().filter(|(_, s)| s.receiver_count() > 0).map(|(sid, _)| sid.clone()).collect()
    }

    /// Drops channels nobody listens to, so removed services do not accumulate.
    pub fn sweep(&self) {
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.receiver_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::SidKind;
    use std::time::Duration;

    #[test]
    fn an_event_is_awaited_while_a_subscription_follows_its_object_or_its_service() {
        let notifier = ChangeNotifier::default();
        let (service, doc, other) =
            (Sid::new(SidKind::Service), Sid::new(SidKind::Document), Sid::new(SidKind::Document));
        let event = |object: &Sid| -> Event {
            serde_json::from_value(serde_json::json!({
                "seq": 1, "token": "t", "service_sid": service, "type": "document_updated",
                "object_sid": object, "object_kind": "document", "unique_name": null, "revision": 1,
                "data": {}, "date": "2026-01-01T00:00:00Z", "identity": "a"
            }))
            .expect("an event")
        };
        assert!(!notifier.is_awaited(&event(&doc)), "nobody subscribed");
        notifier.add_interest(&doc);
        notifier.add_interest(&doc);
        assert!(notifier.is_awaited(&event(&doc)));
        assert_eq!(notifier.subscriptions(), 2);
        assert!(!notifier.is_awaited(&event(&other)), "another object is not followed");
        notifier.remove_interest(&doc, 1);
        assert!(notifier.is_awaited(&event(&doc)), "one of two subscriptions is left");
        notifier.remove_interest(&doc, 5);
        assert!(!notifier.is_awaited(&event(&doc)), "more removed than counted leaves none");
        assert_eq!(notifier.subscriptions(), 0, "and takes off only what was counted");
        notifier.add_interest(&service);
        assert!(notifier.is_awaited(&event(&other)), "a live query follows the whole service");
        notifier.remove_interest(&service, 1);
        assert!(!notifier.is_awaited(&event(&other)));
    }

    #[tokio::test]
    async fn a_commit_published_after_a_newer_one_still_wakes_readers() {
        let notifier = ChangeNotifier::default();
        let service = Sid::new(SidKind::Service);
        let mut wake = notifier.subscribe(&service);
        notifier.notify(&service, 8);
        wake.changed().await.expect("open");
        // The reader found 7 missing, consumed the wake-up for 8 and waits again; 7 arrives.
        notifier.notify(&service, 7);
        tokio::time::timeout(Duration::from_secs(1), wake.changed())
            .await
            .expect("the late commit wakes the reader")
            .expect("open");
        assert_eq!(*wake.borrow(), 8, "the head never goes back");
    }
}
