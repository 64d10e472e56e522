//! Wake-up hints: "service S reached seq N". Hints only; readers always re-read the log.

use crate::sid::Sid;
use std::sync::Mutex;
use tokio::sync::watch;

/// One watch channel per service. A reader subscribes first, then reads the log, then waits,
/// so no wake-up between its read and its wait can be lost.
#[derive(Debug, Default)]
pub struct ChangeNotifier {
    /// Found for every event committed: foldhash rather than SipHash.
    services: Mutex<foldhash::HashMap<Sid, watch::Sender<u64>>>,
}

impl ChangeNotifier {
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
