//! The most recent committed events of each service, kept in memory so that readers woken by a
//! commit (long-polls, the fan-out tailer, resuming subscribers) are served without touching
//! the store. Only a run that starts exactly after the reader's cursor and has no gap is ever
//! served; anything else falls back to the store, so the cache can never skip an event.

use crate::sid::Sid;
use crate::store::StoredEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct RecentLog {
    per_service: usize,
    /// Found for every event committed: foldhash rather than SipHash.
    services: Mutex<foldhash::HashMap<Sid, VecDeque<Arc<StoredEvent>>>>,
    /// Whether other nodes commit to the same log. Their events never enter this cache, so a
    /// run that stops at a gap is most likely followed by events the store has: the store
    /// serves the whole batch rather than this cache a short one. Alone, a gap only means a
    /// local commit still on its way in, and the short run is served.
    shared: bool,
}

impl RecentLog {
    pub fn new(per_service: usize) -> Self {
        RecentLog { per_service, services: Mutex::new(foldhash::HashMap::default()), shared: false }
    }

    /// A cache for a node that shares its store with others (see [`RecentLog::shared`]).
    pub fn shared(per_service: usize) -> Self {
        RecentLog { shared: true, ..RecentLog::new(per_service) }
    }

    /// Adds committed events. Callers may arrive out of order; the ring stays sorted by seq.
    pub fn insert(&self, service: &Sid, events: &[StoredEvent]) {
        if events.is_empty() || self.per_service == 0 {
            return;
        }
        let mut map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.entry(service.clone()).or_default();
        for e in events {
            // Commits arrive in order nearly always: append without searching.
            if ring.back().is_none_or(|last| last.seq < e.seq) {
                ring.push_back(Arc::new(e.clone()));
                continue;
            }
            let pos = ring.partition_point(|x| x.seq < e.seq);
            if ring.get(pos).is_some_and(|x| x.seq == e.seq) {
                continue;
            }
            ring.insert(pos, Arc::new(e.clone()));
        }
        while ring.len() > self.per_service {
            ring.pop_front();
        }
    }

    /// Events with `seq > after`, from a gap-free run starting at `after + 1`; `None` when the
    /// cache cannot prove it holds the next event (the caller then reads the store).
    pub fn read(&self, service: &Sid, after: u64, object: Option<&Sid>, limit: u32) -> Option<Vec<StoredEvent>> {
        let map = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.get(service)?;
        let pos = ring.partition_point(|x| x.seq <= after);
        if ring.get(pos)?.seq != after + 1 {
            return None;
        }
        let mut out = Vec::new();
        for (expected, e) in (after + 1..).zip(ring.iter().skip(pos)) {
            if out.len() >= limit as usize {
                break;
            }
            if e.seq != expected {
                if self.shared {
                    return None;
                }
                break;
            }
            if object.is_none_or(|o| &e.object_sid == o) {
                out.push((**e).clone());
            }
        }
        // With a filter, an empty answer must still come from the store, whose reads see
        // everything committed (the run here may stop at a gap).
        if out.is_empty() && object.is_some() { None } else { Some(out) }
    }

    pub fn forget(&self, service: &Sid) {
        self.services.lock().unwrap_or_else(|e| e.into_inner()).remove(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::SidKind;
    use crate::store::EventJson;

    fn ev(seq: u64, object: &Sid) -> StoredEvent {
        StoredEvent { seq, object_sid: object.clone(), json: EventJson::stored(format!("{{\"seq\":{seq}}}")) }
    }

    #[test]
    fn serves_only_gap_free_runs_from_the_cursor() {
        let service = Sid::new(SidKind::Service);
        let doc = Sid::new(SidKind::Document);
        let log = RecentLog::new(4);
        log.insert(&service, &[ev(1, &doc), ev(2, &doc), ev(4, &doc)]);
        let seqs = |v: Option<Vec<StoredEvent>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(log.read(&service, 0, None, 10)), Some(vec![1, 2]), "stops at the gap before 4");
        assert_eq!(seqs(log.read(&service, 2, None, 10)), None, "3 is not known yet");
        log.insert(&service, &[ev(3, &doc)]);
        assert_eq!(seqs(log.read(&service, 2, None, 10)), Some(vec![3, 4]));
        log.insert(&service, &[ev(5, &doc)]);
        assert_eq!(seqs(log.read(&service, 0, None, 10)), None, "1 was evicted");
        assert_eq!(seqs(log.read(&service, 4, None, 10)), Some(vec![5]));
        log.insert(&service, &[ev(5, &doc), ev(4, &doc)]);
        assert_eq!(seqs(log.read(&service, 3, None, 10)), Some(vec![4, 5]), "known events are not added twice");
        assert_eq!(seqs(log.read(&service, 5, None, 10)), None, "nothing after the newest");
    }

    #[test]
    fn a_shared_log_leaves_runs_that_stop_at_a_gap_to_the_store() {
        let service = Sid::new(SidKind::Service);
        let doc = Sid::new(SidKind::Document);
        let log = RecentLog::shared(8);
        // 3 was committed by another node: only the store has it.
        log.insert(&service, &[ev(1, &doc), ev(2, &doc), ev(4, &doc)]);
        let seqs = |v: Option<Vec<StoredEvent>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(log.read(&service, 0, None, 10)), None);
        assert_eq!(seqs(log.read(&service, 0, None, 2)), Some(vec![1, 2]), "the limit is reached before the gap");
        assert_eq!(seqs(log.read(&service, 3, None, 10)), Some(vec![4]));
    }
}
