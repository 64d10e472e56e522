//! Wake-up hints: "service S reached seq N". Hints only; readers always re-read the log.

use crate::sid::Sid;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// One watch channel per service. A reader subscribes first, then reads the log, then waits,
/// so no wake-up between its read and its wait can be lost.
#[derive(Debug, Default)]
pub struct ChangeNotifier {
    services: Mutex<HashMap<Sid, watch::Sender<u64>>>,
}

impl ChangeNotifier {
    pub fn subscribe(&self, service: &Sid) -> watch::Receiver<u64> {
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(service.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    pub fn notify(&self, service: &Sid, seq: u64) {
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let sender = map.entry(service.clone()).or_insert_with(|| watch::channel(0).0);
        sender.send_if_modified(|cur| {
            if seq > *cur {
                *cur = seq;
                true
            } else {
                false
            }
        });
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
