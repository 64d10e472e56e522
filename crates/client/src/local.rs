//! Telling this client's own changes from others' (`is_local`).
//!
//! Writes go over HTTP and their events come back over the WebSocket, in either order. While a
//! write to an object is in flight, that object's events are held; when the write's answer
//! names the revision it made, the held events are released and the one carrying that
//! revision is marked local. The count is raised before the request leaves, so an event can
//! never overtake the knowledge that a write is pending.

use crate::events::LocalMark;
use ferrosync_protocol::Event;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Marks older than this many writes are forgotten (their events were never subscribed to).
const MARKS_KEPT: usize = 4096;

#[derive(Default)]
pub(crate) struct LocalWrites {
    pending: HashMap<String, usize>,
    marks: VecDeque<LocalMark>,
    held: HashMap<String, Vec<Event>>,
}

impl LocalWrites {
    pub fn lock(this: &Mutex<Self>) -> MutexGuard<'_, Self> {
        this.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `event` when a write to its object is in flight; otherwise gives it back with
    /// whether this client made it.
    pub fn admit(&mut self, event: Event) -> Option<(Event, bool)> {
        let sid = event.object_sid.to_string();
        if self.pending.get(&sid).is_some_and(|n| *n > 0) {
            self.held.entry(sid).or_default().push(event);
            return None;
        }
        let local = self.take(&LocalMark::of_event(&event));
        Some((event, local))
    }

    /// The events held for `sid`, now that no write to it is in flight.
    pub fn release(&mut self, sid: &str) -> Vec<(Event, bool)> {
        if self.pending.get(sid).is_some_and(|n| *n > 0) {
            return Vec::new();
        }
        let held = self.held.remove(sid).unwrap_or_default();
        held.into_iter()
            .map(|e| {
                let local = self.take(&LocalMark::of_event(&e));
                (e, local)
            })
            .collect()
    }

    fn take(&mut self, mark: &LocalMark) -> bool {
        match self.marks.iter().position(|m| m == mark) {
            Some(i) => {
                self.marks.remove(i);
                true
            }
            None => false,
        }
    }
}

/// One write in flight; dropping it without [`WriteGuard::finish`] (an error, a cancelled
/// future) still releases the object's events.
pub(crate) struct WriteGuard {
    writes: Arc<Mutex<LocalWrites>>,
    sid: String,
    release: Box<dyn Fn(String) + Send + Sync>,
    done: bool,
}

impl WriteGuard {
    pub fn begin(writes: Arc<Mutex<LocalWrites>>, sid: &str, release: Box<dyn Fn(String) + Send + Sync>) -> Self {
        *LocalWrites::lock(&writes).pending.entry(sid.to_owned()).or_default() += 1;
        WriteGuard { writes, sid: sid.to_owned(), release, done: false }
    }

    /// The write succeeded and made `slot` at `revision` (`None`: removed it).
    pub fn finish(mut self, slot: impl Into<String>, revision: Option<u64>) {
        let mark = LocalMark { object_sid: self.sid.clone(), slot: slot.into(), revision };
        self.end(Some(mark));
    }

    fn end(&mut self, mark: Option<LocalMark>) {
        if self.done {
            return;
        }
        self.done = true;
        let mut w = LocalWrites::lock(&self.writes);
        if let Some(m) = mark {
            if w.marks.len() >= MARKS_KEPT {
                w.marks.pop_front();
            }
            w.marks.push_back(m);
        }
        let left = match w.pending.get_mut(&self.sid) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if left == 0 {
            w.pending.remove(&self.sid);
            if w.held.contains_key(&self.sid) {
                drop(w);
                (self.release)(self.sid.clone());
            }
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.end(None);
    }
}
