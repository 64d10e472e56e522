//! Lazy-loaded members: which member events each device already holds.

use std::collections::{HashMap, HashSet};

/// Devices that lazy-load members, past which the memory is dropped (it only saves bytes).
const MAX_LAZY_DEVICES: usize = 100_000;

/// Which member events each lazy-loading device holds, per room, so they are not sent again.
/// What an answer carried counts only once the device syncs from that answer's token: an
/// answer that never arrived changes nothing.
#[derive(Debug, Default)]
pub(crate) struct LazyMembers {
    devices: std::sync::Mutex<HashMap<String, DeviceMembers>>,
}

#[derive(Debug, Default)]
struct DeviceMembers {
    confirmed: HashMap<String, HashSet<String>>,
    pending: Option<(String, Vec<(String, String)>)>,
}

impl LazyMembers {
    /// What the device holds when it syncs from `since` (nothing on a first sync).
    pub(super) fn known(&self, device: &str, since: Option<&str>) -> HashMap<String, HashSet<String>> {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let Some(since) = since else {
            devices.remove(device);
            return HashMap::new();
        };
        let Some(d) = devices.get_mut(device) else { return HashMap::new() };
        if let Some((_, sent)) = d.pending.take_if(|(token, _)| token == since) {
            for (room, user) in sent {
                d.confirmed.entry(room).or_default().insert(user);
            }
        }
        d.confirmed.clone()
    }

    /// Notes what the answer with `token` carried.
    pub(super) fn carried(&self, device: &str, token: String, sent: Vec<(String, String)>) {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.len() >= MAX_LAZY_DEVICES && !devices.contains_key(device) {
            devices.clear();
        }
        devices.entry(device.to_owned()).or_default().pending = Some((token, sent));
    }
}
