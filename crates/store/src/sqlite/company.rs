//! Whether a write about to commit in place should first let the runtime run the requests ready
//! beside it, so that writes arriving together share a commit.
//!
//! Looking costs a lone writer a scheduling round and a poll of the sockets (an `epoll_wait`)
//! on every write, for nothing; skipping it costs writers that arrive together a commit each,
//! which halves their throughput. So a writer looks while looking pays: after a run of looks
//! that found nobody it stops, except on one write in [`PROBE`], and any company seen (found by
//! a look, or met as a write queued behind another) starts it looking on every write again.

use std::sync::atomic::{AtomicU32, Ordering};

/// Looks in a row that may find nobody before writes stop looking.
const PATIENCE: u32 = 8;

/// While writes do not look, one in this many still does, so company that comes is noticed.
pub(super) const PROBE: u32 = 16;

#[derive(Debug, Default)]
pub(super) struct Company {
    /// Writes in a row that found nobody (or did not look).
    alone: AtomicU32,
}

impl Company {
    /// Whether this write should look for others before it commits.
    pub(super) fn worth_looking(&self) -> bool {
        let alone = self.alone.load(Ordering::Relaxed);
        alone < PATIENCE || alone.is_multiple_of(PROBE)
    }

    /// Notes what a write found: others queued (`true`) or nobody.
    pub(super) fn found(&self, others: bool) {
        if others {
            self.met();
        } else {
            // Wrapping is harmless: the count then starts looking again for a few writes.
            self.alone.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes a write that met others (it queued behind them, or found the turn taken).
    pub(super) fn met(&self) {
        if self.alone.load(Ordering::Relaxed) != 0 {
            self.alone.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looks(company: &Company, writes: u32) -> u32 {
        (0..writes)
            .filter(|_| {
                let look = company.worth_looking();
                company.found(false);
                look
            })
            .count() as u32
    }

    /// A lone writer looks at first, then only on probes; company found or met makes every
    /// write look again.
    #[test]
    fn a_lone_writer_stops_looking_and_company_starts_it_again() {
        let company = Company::default();
        assert_eq!(looks(&company, PATIENCE), PATIENCE, "every write looks at first");
        let probes = looks(&company, 10 * PROBE);
        assert_eq!(probes, 10, "alone, one write in {PROBE} looks");
        company.found(true);
        assert_eq!(looks(&company, PATIENCE), PATIENCE, "found company: every write looks");
        looks(&company, 3 * PROBE + 1);
        assert!(!company.worth_looking(), "alone again, and this write is no probe");
        company.met();
        assert!(company.worth_looking(), "a write that met others makes the next one look");
        assert_eq!(looks(&company, PATIENCE), PATIENCE);
    }
}
