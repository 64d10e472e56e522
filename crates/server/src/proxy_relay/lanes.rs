//! The relay's jobs in flight: queued by lane, each lane one job at a time and in log order, a
//! bounded number of lanes at once, and the cursor's watermark (the newest seq before which
//! every job is done).
//!
//! The relay reads ahead of its slowest lane: a session whose delivery webhook is being retried
//! holds back its own later messages, not every other session's. What a crash forgets is done
//! again from the watermark, so delivery stays at least once.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

pub(super) struct Lanes<J> {
    /// Jobs not started, by lane, each lane in log order.
    queued: HashMap<String, VecDeque<(u64, J)>>,
    /// Lanes with a job running.
    busy: HashSet<String>,
    /// Lanes with jobs queued and none running, in the order they became so.
    ready: VecDeque<String>,
    /// Seqs of the jobs not done, queued or running.
    pending: BTreeSet<u64>,
    /// Every event up to here was read and its job (if any) queued.
    read_through: u64,
    /// Lanes that may run at once.
    slots: usize,
}

impl<J> Lanes<J> {
    /// Nothing in flight, the log read up to `cursor`.
    pub(super) fn new(cursor: u64, slots: usize) -> Self {
        Lanes {
            queued: HashMap::new(),
            busy: HashSet::new(),
            ready: VecDeque::new(),
            pending: BTreeSet::new(),
            read_through: cursor,
            slots: slots.max(1),
        }
    }

    /// Queues the job of event `seq` behind its lane's earlier ones.
    pub(super) fn push(&mut self, seq: u64, lane: String, job: J) {
        self.pending.insert(seq);
        self.read_through = self.read_through.max(seq);
        let queue = self.queued.entry(lane.clone()).or_default();
        queue.push_back((seq, job));
        // A lane is listed as ready once: when its first job waits and none of it runs.
        if queue.len() == 1 && !self.busy.contains(&lane) {
            self.ready.push_back(lane);
        }
    }

    /// Every event up to `seq` was read (the jobs among them are pushed).
    pub(super) fn read_to(&mut self, seq: u64) {
        self.read_through = self.read_through.max(seq);
    }

    pub(super) fn read_through(&self) -> u64 {
        self.read_through
    }

    /// The next job to start, if a slot is free and a lane waits: its lane, seq and job.
    pub(super) fn start(&mut self) -> Option<(String, u64, J)> {
        if self.busy.len() >= self.slots {
            return None;
        }
        let lane = self.ready.pop_front()?;
        let queue = self.queued.get_mut(&lane)?;
        let (seq, job) = queue.pop_front()?;
        if queue.is_empty() {
            self.queued.remove(&lane);
        }
        self.busy.insert(lane.clone());
        Some((lane, seq, job))
    }

    /// The job `seq` of `lane` is done (or given up): its lane's next job may start.
    pub(super) fn done(&mut self, lane: &str, seq: u64) {
        self.pending.remove(&seq);
        self.busy.remove(lane);
        if self.queued.contains_key(lane) {
            self.ready.push_back(lane.to_owned());
        }
    }

    /// Where the cursor may move: just before the oldest job not done, or as far as was read.
    pub(super) fn watermark(&self) -> u64 {
        self.pending.first().map_or(self.read_through, |oldest| oldest - 1)
    }

    /// Jobs not done.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(lanes: &mut Lanes<&'static str>) -> Vec<(String, u64)> {
        std::iter::from_fn(|| lanes.start()).map(|(lane, seq, _)| (lane, seq)).collect()
    }

    #[test]
    fn a_lane_runs_one_job_at_a_time_in_log_order() {
        let mut lanes = Lanes::new(10, 4);
        lanes.push(11, "a".into(), "a1");
        lanes.push(12, "a".into(), "a2");
        lanes.push(14, "a".into(), "a3");
        lanes.read_to(15);
        assert_eq!(starts(&mut lanes), [("a".to_owned(), 11)]);
        lanes.done("a", 11);
        assert_eq!(starts(&mut lanes), [("a".to_owned(), 12)]);
        lanes.done("a", 12);
        let (lane, seq, job) = lanes.start().expect("the lane's third job");
        assert_eq!((lane.as_str(), seq, job), ("a", 14, "a3"));
        assert!(lanes.start().is_none());
        lanes.done("a", 14);
        assert_eq!((lanes.len(), lanes.busy.len(), lanes.watermark()), (0, 0, 15));
    }

    #[test]
    fn no_more_lanes_run_than_there_are_slots_and_waiting_lanes_take_turns() {
        let mut lanes = Lanes::new(0, 2);
        for (seq, lane) in [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "d")] {
            lanes.push(seq, lane.into(), "job");
        }
        assert_eq!(starts(&mut lanes), [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        // a's next job queues behind c and d, which waited first.
        lanes.done("a", 1);
        assert_eq!(starts(&mut lanes), [("c".to_owned(), 3)]);
        lanes.done("b", 2);
        assert_eq!(starts(&mut lanes), [("d".to_owned(), 5)]);
        lanes.done("c", 3);
        assert_eq!(starts(&mut lanes), [("a".to_owned(), 4)]);
        assert_eq!(lanes.busy.len(), 2);
    }

    #[test]
    fn the_watermark_stops_before_the_oldest_job_not_done() {
        let mut lanes = Lanes::new(100, 8);
        assert_eq!(lanes.watermark(), 100);
        lanes.push(103, "slow".into(), "s");
        lanes.push(105, "quick".into(), "q1");
        lanes.push(109, "quick".into(), "q2");
        lanes.read_to(120);
        starts(&mut lanes);
        assert_eq!(lanes.watermark(), 102);
        // The quick lane finishes everything; the slow one still holds the cursor back.
        lanes.done("quick", 105);
        starts(&mut lanes);
        lanes.done("quick", 109);
        assert_eq!((lanes.watermark(), lanes.len()), (102, 1));
        lanes.done("slow", 103);
        assert_eq!((lanes.watermark(), lanes.len()), (120, 0));
    }

    #[test]
    fn a_stuck_lane_does_not_hold_back_the_others() {
        let mut lanes = Lanes::new(0, 2);
        lanes.push(1, "stuck".into(), "s1");
        lanes.push(2, "stuck".into(), "s2");
        starts(&mut lanes);
        let mut done = Vec::new();
        for seq in 3..=50 {
            lanes.push(seq, format!("lane-{}", seq % 5), "job");
            while let Some((lane, seq, _)) = lanes.start() {
                lanes.done(&lane, seq);
                done.push(seq);
            }
        }
        assert_eq!(done, (3..=50).collect::<Vec<_>>());
        assert_eq!((lanes.watermark(), lanes.len(), lanes.busy.len()), (0, 2, 1));
    }
}
