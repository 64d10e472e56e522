//! The Proxy services the relay's jobs read, kept between jobs.
//!
//! Nearly every job reads its Proxy service (its callback URLs, its chat service), and a relayed
//! message makes three jobs; services change rarely. Every change to one is an event on the
//! `proxy` service's log, the log the relay reads in order: a read that brings such an event
//! forgets what was kept before any job after it starts, so a job later in the log than a
//! change reads the service as changed. A read begun before a forgetting keeps nothing.

use ferrosync_core::engine::ProxyService;
use ferrosync_core::sid::Sid;
use std::collections::HashMap;
use std::sync::Mutex;

/// More services than any account has: past it, everything kept is dropped and read again.
const MOST: usize = 1_024;

#[derive(Default)]
pub(super) struct Kept(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// Counts the forgettings, so that a read begun before one keeps nothing.
    generation: u64,
    services: HashMap<Sid, Option<ProxyService>>,
}

impl Kept {
    /// The service kept under `sid` (`Some(None)`: kept as gone), else the generation a read
    /// of it must hand to [`Kept::keep`].
    pub(super) fn get(&self, sid: &Sid) -> Result<Option<ProxyService>, u64> {
        let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.services.get(sid).cloned().ok_or(inner.generation)
    }

    /// Keeps what a read begun at `generation` found, unless forgotten since.
    pub(super) fn keep(&self, generation: u64, sid: &Sid, found: &Option<ProxyService>) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.services.len() >= MOST {
            inner.services.clear();
        }
        inner.services.insert(sid.clone(), found.clone());
    }

    /// A service changed: nothing kept holds.
    pub(super) fn forget(&self) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.services.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::timestamp::Timestamp;

    fn service(sid: &Sid, url: &str) -> ProxyService {
        let mut service = ProxyService::new("s".into(), Timestamp(0));
        service.sid = sid.clone();
        service.callback_url = Some(url.into());
        service
    }

    /// What a read found is kept until forgotten, and a read begun before a forgetting keeps
    /// nothing: it may have found the service as it was before the change.
    #[test]
    fn a_service_is_kept_until_a_change_and_a_read_from_before_it_keeps_nothing() {
        let kept = Kept::default();
        let sid = Sid::new(SidKind::ProxyService);
        let generation = kept.get(&sid).expect_err("nothing kept yet");
        kept.keep(generation, &sid, &Some(service(&sid, "https://a.example/")));
        assert_eq!(kept.get(&sid).ok().flatten().and_then(|s| s.callback_url), Some("https://a.example/".into()));

        let before = kept.get(&Sid::new(SidKind::ProxyService)).expect_err("another is not kept");
        kept.forget();
        assert!(kept.get(&sid).is_err(), "forgotten");
        kept.keep(before, &sid, &Some(service(&sid, "https://old.example/")));
        assert!(kept.get(&sid).is_err(), "a read from before the change keeps nothing");

        let after = kept.get(&sid).expect_err("not kept");
        kept.keep(after, &sid, &None);
        assert_eq!(kept.get(&sid), Ok(None), "kept as gone");
    }
}
