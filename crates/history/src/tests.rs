#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

fn op(client: usize, invoked: u64, completed: u64, kind: OpKind<u64>) -> Op<u64> {
    Op { client, invoked, completed, kind }
}
fn read(version: u64, value: u64) -> OpKind<u64> {
    OpKind::Read { version, value }
}
fn write(version: u64, value: u64) -> OpKind<u64> {
    OpKind::Write { version, value, expected: None }
}
fn cas(version: u64, value: u64) -> OpKind<u64> {
    OpKind::Write { version, value, expected: Some(version - 1) }
}

#[test]
fn sequential_histories_pass() {
    let h = vec![
        op(0, 0, 1, read(0, 0)),
        op(0, 2, 3, write(1, 10)),
        op(1, 4, 5, read(1, 10)),
        op(1, 6, 7, cas(2, 20)),
        op(0, 8, 9, OpKind::Refused { expected: 1 }),
        op(0, 10, 11, read(2, 20)),
    ];
    let s = check((0, 0), &h).unwrap();
    assert_eq!(s, Summary { reads: 3, writes: 2, refused: 1, final_version: 2 });
}

#[test]
fn overlapping_operations_may_take_effect_in_either_order() {
    // The read overlaps the write: either version is a valid answer.
    for seen in [(0, 0), (1, 10)] {
        let h = vec![op(0, 0, 10, write(1, 10)), op(1, 5, 15, read(seen.0, seen.1))];
        assert!(check((0, 0), &h).is_ok(), "{seen:?}");
    }
}

#[test]
fn a_stale_read_is_caught() {
    let h = vec![op(0, 0, 10, write(1, 10)), op(1, 20, 30, read(0, 0))];
    assert_eq!(check((0, 0), &h), Err(Violation::RealTime { earlier: 0, later: 1 }));
}

#[test]
fn reads_going_back_in_time_are_caught() {
    let h = vec![op(0, 0, 100, write(1, 10)), op(1, 10, 20, read(1, 10)), op(2, 30, 40, read(0, 0))];
    assert_eq!(check((0, 0), &h), Err(Violation::RealTime { earlier: 1, later: 2 }));
}

#[test]
fn a_lost_update_is_caught() {
    // Two conditional writes on version 1 both acknowledged.
    let h = vec![op(0, 0, 10, cas(2, 1)), op(1, 0, 10, cas(2, 2))];
    assert_eq!(check((1, 0), &h), Err(Violation::DuplicateVersion { version: 2, first: 0, second: 1 }));
    let h = vec![op(0, 0, 10, OpKind::Write { version: 3, value: 1, expected: Some(1) })];
    assert_eq!(check((1, 0), &h), Err(Violation::ConditionBroken { op: 0, expected: 1, version: 3 }));
}

#[test]
fn values_and_versions_must_agree() {
    assert_eq!(
        check((0, 0), &[op(0, 0, 1, write(1, 10)), op(0, 2, 3, read(1, 11))]),
        Err(Violation::WrongValue { op: 1, version: 1 })
    );
    assert_eq!(check((0, 0), &[op(0, 0, 1, read(5, 1))]), Err(Violation::UnknownVersion { op: 0, version: 5 }));
    assert_eq!(
        check((0, 0), &[op(0, 0, 1, write(1, 1)), op(0, 2, 3, write(3, 3))]),
        Err(Violation::MissingVersion { version: 2, max: 3 })
    );
    assert_eq!(check((4, 0), &[op(0, 0, 1, write(4, 1))]), Err(Violation::StaleVersion { op: 0, version: 4 }));
}

#[test]
fn a_refusal_needs_a_change_in_time() {
    // Nothing ever changed version 0.
    let h = vec![op(0, 0, 1, OpKind::Refused { expected: 0 })];
    assert_eq!(check((0, 0), &h), Err(Violation::RefusedWithoutChange { op: 0, expected: 0 }));
    // The change came only after the refusal, and a read after the refusal still saw version 0.
    let h = vec![op(0, 0, 10, OpKind::Refused { expected: 0 }), op(1, 20, 30, read(0, 0)), op(1, 40, 50, write(1, 1))];
    assert_eq!(check((0, 0), &h), Err(Violation::RealTime { earlier: 0, later: 1 }));
    // Overlapping the change, a refusal is fine.
    let h = vec![op(0, 0, 10, OpKind::Refused { expected: 0 }), op(1, 5, 30, write(1, 1))];
    assert!(check((0, 0), &h).is_ok());
}

/// A linearizable history: each operation takes effect at a random point of its interval, in
/// that order, on a real register.
fn simulate(specs: &[(u8, u64, u64, u64)]) -> Vec<Op<u64>> {
    let mut ops: Vec<(u64, usize, Op<u64>)> = Vec::new();
    for (i, &(kind, start, len, at)) in specs.iter().enumerate() {
        let completed = start + len;
        let point = start + at % (len + 1);
        let placeholder = op(i % 4, start, completed, read(0, 0));
        ops.push((point, kind as usize, placeholder));
    }
    // Ties at one instant keep the spec order.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].0, i));
    let (mut version, mut value) = (0u64, 0u64);
    let mut last_read = 0u64;
    for (n, i) in order.into_iter().enumerate() {
        let kind = match ops[i].1 % 4 {
            0 => read(version, value),
            1 => {
                (version, value) = (version + 1, 1000 + n as u64);
                write(version, value)
            }
            _ if last_read == version => {
                (version, value) = (version + 1, 1000 + n as u64);
                OpKind::Write { version, value, expected: Some(version - 1) }
            }
            _ => OpKind::Refused { expected: last_read },
        };
        if let OpKind::Read { version: v, .. } = kind {
            last_read = v;
        }
        ops[i].2.kind = kind;
    }
    ops.into_iter().map(|(_, _, op)| op).collect()
}

fn specs() -> impl Strategy<Value = Vec<(u8, u64, u64, u64)>> {
    prop::collection::vec((0u8..4, 0u64..1000, 0u64..80, any::<u64>()), 1..120)
}

proptest! {
    #[test]
    fn simulated_linearizable_histories_pass(specs in specs()) {
        let h = simulate(&specs);
        prop_assert!(check((0, 0), &h).is_ok(), "{:?}", check((0, 0), &h));
    }

    #[test]
    fn a_read_moved_before_a_completed_write_fails(specs in specs()) {
        let mut h = simulate(&specs);
        // A read of version v > 0 that began after the write of v completed, made to return v - 1.
        let target = h.iter().enumerate().find_map(|(i, o)| match o.kind {
            OpKind::Read { version, .. } if version > 0 => h
                .iter()
                .any(|w| matches!(w.kind, OpKind::Write { version: wv, .. } if wv == version) && w.completed < o.invoked)
                .then_some((i, version)),
            _ => None,
        });
        prop_assume!(target.is_some());
        let (i, v) = target.unwrap_or_default();
        let previous = h.iter().find_map(|w| match w.kind {
            OpKind::Write { version, value, .. } if version == v - 1 => Some(value),
            _ => None,
        }).unwrap_or(0);
        h[i].kind = read(v - 1, previous);
        let verdict = check((0, 0), &h);
        prop_assert!(matches!(verdict, Err(Violation::RealTime { .. })), "{:?}", verdict);
    }
}
