//! Checks that a history of operations on one object is linearizable: that the operations can
//! be put in one order, consistent with real time (an operation that completed before another
//! began comes first), in which every read returns the latest write.
//!
//! The object is a versioned register, as every Ferrosync object is: each acknowledged write
//! takes the next version, reads return a version with its value, and a conditional write
//! (`If-Match`) succeeds only at the version it names. Versions make the check exact and fast
//! (`O(n log n)`) where general linearizability checking is NP-complete: the order must be the
//! version order, with the reads of version `v` between the writes of `v` and `v + 1`, so it is
//! enough to check that no real-time edge goes backwards in it.
//!
//! A conditional write that was refused observed some version after the one it named; it is
//! placed at the earliest point it can be, and everything that began after it completed must
//! come later.
//!
//! Histories must be complete: every write the server acknowledged is in it (a write whose
//! outcome is unknown, cut by a crash or a timeout, cannot be checked this way).
//!
//! ```
//! use ferrosync_history::{Op, OpKind, check};
//! let history = vec![
//!     Op { client: 0, invoked: 0, completed: 10, kind: OpKind::Write { version: 1, value: "a", expected: None } },
//!     Op { client: 1, invoked: 20, completed: 30, kind: OpKind::Read { version: 0, value: "" } },
//! ];
//! // The read began after the write completed, yet saw the version before it.
//! assert!(check((0, ""), &history).is_err());
//! ```

use std::fmt::Debug;

/// One operation with its real-time interval (any monotonic clock, same for every client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<V> {
    pub client: usize,
    pub invoked: u64,
    pub completed: u64,
    pub kind: OpKind<V>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind<V> {
    /// A read that returned `version` holding `value`.
    Read { version: u64, value: V },
    /// An acknowledged write, at `version`; `expected` is the version a conditional write named.
    Write { version: u64, value: V, expected: Option<u64> },
    /// A conditional write refused because the version was no longer `expected`.
    Refused { expected: u64 },
}

/// Why a history is not linearizable. Operations are named by their index in the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("operations {first} and {second} were both acknowledged at version {version}")]
    DuplicateVersion { version: u64, first: usize, second: usize },
    #[error("operation {op} was acknowledged at version {version}, which the object had before it")]
    StaleVersion { op: usize, version: u64 },
    #[error("no acknowledged write produced version {version}, yet versions up to {max} exist")]
    MissingVersion { version: u64, max: u64 },
    #[error("operation {op} succeeded on version {expected} but was given version {version}")]
    ConditionBroken { op: usize, expected: u64, version: u64 },
    #[error("operation {op} read version {version} with a value no write of that version had")]
    WrongValue { op: usize, version: u64 },
    #[error("operation {op} read version {version}, which no acknowledged write produced")]
    UnknownVersion { op: usize, version: u64 },
    #[error("operation {later} began after operation {earlier} completed, but takes effect before it")]
    RealTime { earlier: usize, later: usize },
    #[error("operation {op} was refused at version {expected}, but nothing changed the object in time")]
    RefusedWithoutChange { op: usize, expected: u64 },
}

/// What a linearizable history held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub reads: usize,
    pub writes: usize,
    pub refused: usize,
    /// The last version written.
    pub final_version: u64,
}

/// Where an operation sits in the linearization: a write of `v` at `(v, 0)`, a read of `v` at
/// `(v, 1)`, between the writes of `v` and `v + 1`.
type Point = (u64, u8);

/// Checks `history` against an object that started at `initial` (version, value).
pub fn check<V: PartialEq + Debug>(initial: (u64, V), history: &[Op<V>]) -> Result<Summary, Violation> {
    let mut summary = Summary { final_version: initial.0, ..Summary::default() };
    // Writes by version; each version once.
    let mut writes: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        match &op.kind {
            OpKind::Write { version, expected, .. } => {
                if let Some(&first) = writes.get(version) {
                    return Err(Violation::DuplicateVersion { version: *version, first, second: i });
                }
                if let Some(e) = expected
                    && *version != e + 1
                {
                    return Err(Violation::ConditionBroken { op: i, expected: *e, version: *version });
                }
                if *version <= initial.0 {
                    return Err(Violation::StaleVersion { op: i, version: *version });
                }
                writes.insert(*version, i);
                summary.writes += 1;
            }
            OpKind::Read { .. } => summary.reads += 1,
            OpKind::Refused { .. } => summary.refused += 1,
        }
    }
    let max = writes.keys().next_back().copied().unwrap_or(initial.0);
    summary.final_version = max;
    if let Some(missing) = (initial.0 + 1..=max).find(|v| !writes.contains_key(v)) {
        return Err(Violation::MissingVersion { version: missing, max });
    }
    for (i, op) in history.iter().enumerate() {
        if let OpKind::Read { version, value } = &op.kind {
            let written = if *version == initial.0 {
                Some(&initial.1)
            } else {
                match writes.get(version).map(|&w| &history[w].kind) {
                    Some(OpKind::Write { value, .. }) => Some(value),
                    _ => None,
                }
            };
            match written {
                None => return Err(Violation::UnknownVersion { op: i, version: *version }),
                Some(w) if w != value => return Err(Violation::WrongValue { op: i, version: *version }),
                Some(_) => {}
            }
        }
    }

    // Real time: walk operations in the order they began, keeping the latest point of those
    // that had completed by then; no operation may sit before it.
    let mut by_invoked: Vec<usize> = (0..history.len()).collect();
    by_invoked.sort_by_key(|&i| (history[i].invoked, i));
    let mut by_completed: Vec<usize> = (0..history.len()).collect();
    by_completed.sort_by_key(|&i| (history[i].completed, i));
    let mut points: Vec<Option<Point>> = history
        .iter()
        .map(|op| match &op.kind {
            OpKind::Write { version, .. } => Some((*version, 0)),
            OpKind::Read { version, .. } => Some((*version, 1)),
            OpKind::Refused { .. } => None,
        })
        .collect();
    let mut done = 0;
    let mut latest: Option<(Point, usize)> = None;
    for &b in &by_invoked {
        while done < by_completed.len() && history[by_completed[done]].completed < history[b].invoked {
            let a = by_completed[done];
            // A refused write's point is fixed when it began, which was before it completed.
            if let Some(p) = points[a]
                && latest.is_none_or(|(l, _)| p > l)
            {
                latest = Some((p, a));
            }
            done += 1;
        }
        match (&history[b].kind, points[b]) {
            (OpKind::Refused { expected }, _) => {
                if *expected >= max {
                    return Err(Violation::RefusedWithoutChange { op: b, expected: *expected });
                }
                let earliest = (expected + 1, 0);
                points[b] = Some(latest.map_or(earliest, |(l, _)| l.max(earliest)));
            }
            (_, Some(p)) => {
                if let Some((l, a)) = latest
                    && l > p
                {
                    return Err(Violation::RealTime { earlier: a, later: b });
                }
            }
            (_, None) => {}
        }
    }
    // A refused write also bounds what began after it completed (its point was chosen as early
    // as it could be, so this is the only way it can fail).
    let mut suffix_min: Vec<Option<(Point, usize)>> = vec![None; by_invoked.len() + 1];
    for (k, &i) in by_invoked.iter().enumerate().rev() {
        let here = match history[i].kind {
            OpKind::Refused { .. } => None,
            _ => points[i].map(|p| (p, i)),
        };
        suffix_min[k] = match (here, suffix_min[k + 1]) {
            (Some(h), Some(s)) => Some(if h.0 <= s.0 { h } else { s }),
            (h, s) => h.or(s),
        };
    }
    for (i, op) in history.iter().enumerate() {
        let (OpKind::Refused { .. }, Some(p)) = (&op.kind, points[i]) else { continue };
        let start = by_invoked.partition_point(|&j| history[j].invoked <= op.completed);
        if let Some((s, later)) = suffix_min[start]
            && s < p
        {
            return Err(Violation::RealTime { earlier: i, later });
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
