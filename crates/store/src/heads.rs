//! Sequence numbers handed out in the writer's memory for one batch, for both stores: events
//! take their numbers here rather than from a statement each. PostgreSQL writes each moved head
//! back to its counter row once per batch before COMMIT; SQLite reads heads from its log.

use ferrosync_core::model::Service;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoreError;

/// Each service the batch touched: its head as stored, and as allocated so far. Cloned before a
/// mutation and put back if the mutation's savepoint is rolled back, so the numbers a failed
/// mutation took are handed out again.
#[derive(Debug, Default, Clone)]
// foldhash rather than SipHash: found for every event the writer numbers.
pub(crate) struct SeqHeads(foldhash::HashMap<Sid, (u64, u64)>);

impl SeqHeads {
    /// Notes a service row read inside the batch, and shows it with the head allocated so far
    /// (a rule reading the head after an earlier event in the batch sees that event).
    pub(crate) fn overlay(&mut self, s: &mut Service) {
        let (_, current) = *self.0.entry(s.sid.clone()).or_insert((s.head_seq, s.head_seq));
        s.head_seq = current;
    }

    /// The next sequence number of `service`; `stored` reads its head if the batch has not yet.
    pub(crate) fn next(
        &mut self,
        service: &Sid,
        stored: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        let entry = match self.0.get_mut(service) {
            Some(e) => e,
            None => {
                let head = stored()?;
                self.0.entry(service.clone()).or_insert((head, head))
            }
        };
        entry.1 += 1;
        Ok(entry.1)
    }

    /// Marks every head handed out as stored: the batch that took them committed.
    pub(crate) fn settle(&mut self) {
        for (stored, current) in self.0.values_mut() {
            *stored = *current;
        }
    }

    /// Takes back every head handed out since the last [`SeqHeads::settle`]: what a failed job
    /// that started the batch took. Cheaper than a copy made before it, which would allocate
    /// on every write; heads it read or dropped stay read or dropped, as the log has them.
    pub(crate) fn revert(&mut self) {
        for (stored, current) in self.0.values_mut() {
            *current = *stored;
        }
    }

    /// Drops a removed service's head: one made again under its SID starts its log afresh.
    pub(crate) fn forget(&mut self, service: &Sid) {
        self.0.remove(service);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The services whose head moved in this batch, with their new head: exactly those the
    /// batch wrote events to.
    pub(crate) fn advanced(&self) -> Vec<(&Sid, u64)> {
        self.0
            .iter()
            .filter(|(_, (stored, current))| current != stored)
            .map(|(s, (_, current))| (s, *current))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrosync_core::model::ServiceSettings;
    use ferrosync_core::timestamp::Timestamp;

    pub(crate) fn sid(n: u8) -> Sid {
        Sid::parse(&format!("IS{n:032x}")).expect("sid")
    }

    /// A service row as a batch would read it (tests of the batch's memory share it).
    pub(crate) fn service(sid: &Sid, head_seq: u64) -> Service {
        Service {
            sid: sid.clone(),
            unique_name: None,
            friendly_name: None,
            acl_enabled: false,
            settings: ServiceSettings::default(),
            revision: 0,
            date_created: Timestamp::now(),
            date_updated: Timestamp::now(),
            head_seq,
            pruned_seq: 0,
        }
    }

    fn unread() -> Result<u64, StoreError> {
        Err(StoreError::Backend("the head was read again".into()))
    }

    #[test]
    fn numbers_follow_the_stored_head_and_only_moved_heads_are_written_back() {
        let mut heads = SeqHeads::default();
        let (a, b) = (sid(1), sid(2));
        assert_eq!(heads.next(&a, || Ok(41)).ok(), Some(42));
        // The head is read once per batch; later numbers come from memory.
        assert_eq!(heads.next(&a, unread).ok(), Some(43));
        let mut seen = service(&b, 7);
        heads.overlay(&mut seen);
        assert_eq!(seen.head_seq, 7);
        assert_eq!(heads.advanced(), vec![(&a, 43)], "a service only read has not moved");
        let before = heads.clone();
        assert_eq!(heads.next(&b, unread).ok(), Some(8), "a service read seeds its head");
        let mut again = service(&b, 7);
        heads.overlay(&mut again);
        assert_eq!(again.head_seq, 8, "a later read sees the number the batch handed out");
        // A rolled-back mutation gives its numbers back.
        heads = before;
        assert_eq!(heads.next(&b, unread).ok(), Some(8));
        let mut moved = heads.advanced();
        moved.sort();
        assert_eq!(moved, vec![(&a, 43), (&b, 8)]);
    }

    /// What a failed first job took is given back without a copy made before it: the settled
    /// heads stay, the numbers handed out since are handed out again.
    #[test]
    fn a_revert_hands_out_again_what_was_taken_since_the_last_settle() {
        let mut heads = SeqHeads::default();
        let (a, b) = (sid(1), sid(2));
        assert_eq!(heads.next(&a, || Ok(10)).ok(), Some(11));
        heads.settle();
        assert_eq!(heads.next(&a, unread).ok(), Some(12));
        assert_eq!(heads.next(&b, || Ok(5)).ok(), Some(6));
        heads.revert();
        assert!(heads.advanced().is_empty(), "nothing moved once reverted");
        assert_eq!(heads.next(&a, unread).ok(), Some(12), "the settled head stands");
        assert_eq!(heads.next(&b, unread).ok(), Some(6), "a head read in the failed job is kept, as read");
    }
}
