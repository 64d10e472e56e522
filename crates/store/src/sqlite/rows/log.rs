//! The change log: events, each linked to its object's previous one, the streams those links
//! make, and pruning.

use super::{RowAt, err, put_object, query_all, sid_col};
use ferrosync_core::model::SyncObject;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{EventJson, StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(crate) fn head_seq(conn: &Connection, service: &Sid) -> Result<u64, StoreError> {
    conn.prepare_cached(concat!("SELECT ", head_seq!(), " FROM services WHERE sid = ?1"))
        .and_then(|mut st| st.query_row([service.as_str()], |r| r.get::<_, i64>(0)))
        .map(|s| s as u64)
        .map_err(err)
}

/// Appends an event and points its object (or tombstone) at it. With `at`, the job read the
/// object's row just before (nothing has written objects since): the link and the row are
/// taken from there. Returns where the row is now, if it is known.
pub(crate) fn insert_event(
    conn: &Connection,
    service: &Sid,
    seq: u64,
    object: &Sid,
    date: Timestamp,
    json: &str,
    at: Option<RowAt>,
) -> Result<Option<RowAt>, StoreError> {
    insert_event_row(conn, service, seq, object, date, json, at)?;
    if let Some(at) = at {
        let linked = conn
            .prepare_cached("UPDATE objects SET last_seq = ?2, stream_len = stream_len + 1 WHERE rowid = ?1")
            .and_then(|mut st| st.execute(params![at.rowid, seq as i64]))
            .map_err(err)?;
        if linked == 1 {
            return counted(conn, service, object, seq, at).map(Some);
        }
    }
    link_event(conn, service, seq, object).map(|()| None)
}

/// Writes a stored object and appends its change's event with one update of the object's row:
/// its new state, and its stream's end and length (which `insert_event` would update after
/// `put_object`, rewriting the row and seeking it a second time). A creation or a rename,
/// which the update does not match, takes those two steps. With `at` (see `insert_event`), the
/// row is not looked up by SID at all. Returns where the row is now, if it is known.
pub(crate) fn put_object_with_event(
    conn: &Connection,
    o: &SyncObject,
    seq: u64,
    date: Timestamp,
    json: &str,
    at: Option<RowAt>,
) -> Result<Option<RowAt>, StoreError> {
    // The event first: its link reads where the object's stream ended before this write.
    insert_event_row(conn, &o.service_sid, seq, &o.sid, date, json, at)?;
    let sid = o.sid.as_str();
    let (sql, row): (&str, &dyn rusqlite::ToSql) = match &at {
        Some(at) => (
            "UPDATE objects SET data = ?2, revision = ?3, next_index = ?4, date_updated = ?5, date_expires = ?6,
                    last_seq = ?8, stream_len = stream_len + 1
             WHERE rowid = ?1 AND unique_name IS ?7",
            &at.rowid,
        ),
        None => (
            "UPDATE objects SET data = ?2, revision = ?3, next_index = ?4, date_updated = ?5, date_expires = ?6,
                    last_seq = ?8, stream_len = stream_len + 1
             WHERE sid = ?1 AND unique_name IS ?7",
            &sid,
        ),
    };
    let updated = conn
        .prepare_cached(sql)
        .and_then(|mut st| {
            st.execute(params![
                row,
                o.data.as_ref().map(|d| d.to_string()),
                o.revision as i64,
                o.next_index as i64,
                o.date_updated.0,
                o.date_expires.map(|t| t.0),
                o.unique_name,
                seq as i64
            ])
        })
        .map_err(err)?;
    if updated == 1 {
        return match at {
            Some(at) => counted(conn, &o.service_sid, &o.sid, seq, at).map(Some),
            None => mark_if_due(conn, &o.sid).map(|()| None),
        };
    }
    put_object(conn, o)?;
    link_event(conn, &o.service_sid, seq, &o.sid).map(|()| None)
}

/// The event's row, linked to its object's previous event: the stream's end `at` gives, or
/// else the one the object's row (or, once it is removed, its tombstone) holds.
fn insert_event_row(
    conn: &Connection,
    service: &Sid,
    seq: u64,
    object: &Sid,
    date: Timestamp,
    json: &str,
    at: Option<RowAt>,
) -> Result<(), StoreError> {
    // The event links to its object's previous one; then the object (or, once it is removed,
    // its tombstone) points at this one (schema_v8.sql) and counts it, and every 32nd event is
    // marked (schema_v9.sql): see `counted` and `mark_if_due`.
    let inserted = match at {
        Some(at) => conn
            .prepare_cached(
                "INSERT INTO events (service_sid, seq, object_sid, date, body, prev_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![service.as_str(), seq as i64, object.as_str(), date.0, json, at.last_seq])
            }),
        None => conn
            .prepare_cached(
                "INSERT INTO events (service_sid, seq, object_sid, date, body, prev_seq) VALUES (?1, ?2, ?3, ?4, ?5,
                   COALESCE((SELECT last_seq FROM objects WHERE sid = ?3),
                            (SELECT last_seq FROM object_tombstones WHERE object_sid = ?3), 0))",
            )
            .and_then(|mut st| st.execute(params![service.as_str(), seq as i64, object.as_str(), date.0, json])),
    };
    inserted.map_err(err).map(drop)
}

/// How far apart an object's stream is marked.
const MARK_EVERY: i64 = 32;

/// Every 32nd event of an object's stream is marked (schema_v9.sql): the row `at` was found at
/// has just counted event `seq`, so its stream is one longer.
fn counted(conn: &Connection, service: &Sid, object: &Sid, seq: u64, at: RowAt) -> Result<RowAt, StoreError> {
    let (last_seq, stream_len) = (seq as i64, at.stream_len + 1);
    if stream_len % MARK_EVERY == 0 {
        conn.prepare_cached("INSERT INTO object_marks (service_sid, object_sid, seq, ord) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![service.as_str(), object.as_str(), last_seq, stream_len]))
            .map_err(err)?;
    }
    Ok(RowAt { last_seq, stream_len, ..at })
}

/// Marks an object's newest event if its count makes it due, for a row not read before.
fn mark_if_due(conn: &Connection, object: &Sid) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO object_marks (service_sid, object_sid, seq, ord)
         SELECT service_sid, sid, last_seq, stream_len FROM objects WHERE sid = ?1 AND stream_len % ?2 = 0",
    )
    .and_then(|mut st| st.execute(params![object.as_str(), MARK_EVERY]))
    .map(drop)
    .map_err(err)
}

/// Points the object (or its tombstone) at its newest event, and counts it.
fn link_event(conn: &Connection, service: &Sid, seq: u64, object: &Sid) -> Result<(), StoreError> {
    let linked = conn
        .prepare_cached("UPDATE objects SET last_seq = ?2, stream_len = stream_len + 1 WHERE sid = ?1")
        .and_then(|mut st| st.execute(params![object.as_str(), seq as i64]))
        .map_err(err)?;
    if linked == 1 {
        mark_if_due(conn, object)?;
    } else {
        conn.prepare_cached(
            "INSERT INTO object_tombstones (object_sid, service_sid, last_seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (object_sid) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .and_then(|mut st| st.execute(params![object.as_str(), service.as_str(), seq as i64]))
        .map_err(err)?;
    }
    Ok(())
}

fn stored_event_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let body: String = row.get(2)?;
    Ok(StoredEvent { seq: row.get::<_, i64>(0)? as u64, object_sid: sid_col(row, 1)?, json: EventJson::stored(body) })
}

pub(crate) fn events(
    conn: &Connection,
    service: &Sid,
    after: u64,
    object: Option<&Sid>,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    match object {
        None => query_all(
            conn,
            "SELECT seq, object_sid, body FROM events WHERE service_sid = ? AND seq > ? ORDER BY seq LIMIT ?",
            vec![SqlValue::Text(service.to_string()), SqlValue::Integer(after as i64), SqlValue::Integer(limit as i64)],
            stored_event_row,
        ),
        Some(object) => {
            let (events, rewalked) = object_events(conn, service, after, object, limit)?;
            if rewalked {
                // A healthy file never needs the second walk: a count above zero means marks
                // that lie (reads stay right, but walk whole streams).
                metrics::counter!("ferrosync_store_stream_rewalks_total").increment(1);
            }
            Ok(events)
        }
    }
}

/// One object's events after `after`, walked back along the object's chain (schema_v8.sql)
/// from a mark just past the page (schema_v9.sql), or from its newest event when no mark is
/// that far. The walk stops at `after` or where pruning cut the chain, so paging through a long
/// stream costs each page about its own length, however much of the stream is left.
/// Also says whether a mark's promise failed and the stream was walked again from its newest
/// event (which a healthy file never needs).
pub(crate) fn object_events(
    conn: &Connection,
    service: &Sid,
    after: u64,
    object: &Sid,
    limit: u32,
) -> Result<(Vec<StoredEvent>, bool), StoreError> {
    let (svc, obj, after) = (service.as_str(), object.as_str(), after as i64);
    let newest: Option<i64> = conn
        .prepare_cached(
            "SELECT COALESCE((SELECT last_seq FROM objects WHERE sid = ?1 AND service_sid = ?2),
                             (SELECT last_seq FROM object_tombstones WHERE object_sid = ?1 AND service_sid = ?2))",
        )
        .and_then(|mut st| st.query_row(params![obj, svc], |r| r.get(0)))
        .map_err(err)?;
    let Some(newest) = newest.filter(|&n| n > after && limit > 0) else { return Ok((Vec::new(), false)) };
    // Marks are 32 events apart (schema_v9.sql), so the first mark past the cursor is fewer than
    // 32 events past it, and a mark whose position is at least `limit - 1` beyond that one has a
    // whole page between the cursor and itself: the walk back from it is at most `limit + 64`
    // links long.
    let mark: Option<i64> = conn
        .prepare_cached(
            "SELECT m.seq FROM object_marks m
              WHERE m.service_sid = ?1 AND m.object_sid = ?2 AND m.seq > ?3
                AND m.ord >= (SELECT f.ord FROM object_marks f
                               WHERE f.service_sid = ?1 AND f.object_sid = ?2 AND f.seq > ?3
                               ORDER BY f.seq LIMIT 1) + ?4 - 1
              ORDER BY m.seq LIMIT 1",
        )
        .and_then(|mut st| st.query_row(params![svc, obj, after, limit], |r| r.get(0)).optional())
        .map_err(err)?;
    let events = walk_stream(conn, svc, obj, mark.unwrap_or(newest), after, limit)?;
    match mark {
        // A mark promised a whole page; if pruning or a damaged mark broke that promise, the
        // walk from the newest event is the answer (marks only ever choose where to start).
        Some(_) if events.len() < limit as usize => Ok((walk_stream(conn, svc, obj, newest, after, limit)?, true)),
        _ => Ok((events, false)),
    }
}

/// The oldest ?5 events of object ?3's stream in (?4, ?1], service ?2. Only stored events of
/// the object join, so a link into a pruned stretch ends the walk before the page is cut to its
/// size. CROSS JOIN keeps SQLite's planner from turning each step into a range scan of the log:
/// it infers `e.seq > ?4` from the step's condition and would search the log first.
pub(crate) const WALK_STREAM: &str = "WITH RECURSIVE chain (seq, prev_seq, body) AS (
         SELECT seq, prev_seq, body FROM events WHERE service_sid = ?2 AND seq = ?1 AND object_sid = ?3
         UNION ALL
         SELECT e.seq, e.prev_seq, e.body FROM chain c
           CROSS JOIN events e ON e.service_sid = ?2 AND e.seq = c.prev_seq AND e.object_sid = ?3
          WHERE c.prev_seq > ?4
     )
     SELECT seq, ?3, body FROM chain WHERE seq > ?4 ORDER BY seq LIMIT ?5";

/// The oldest `limit` events of an object's stream in (`after`, `from`], found by following
/// the links back from event `from`; each link's row carries its event, so a link is one
/// lookup.
fn walk_stream(
    conn: &Connection,
    service: &str,
    object: &str,
    from: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    conn.prepare_cached(WALK_STREAM)
        .and_then(|mut st| {
            st.query_map(params![from, service, object, after, limit], stored_event_row)?.collect::<Result<_, _>>()
        })
        .map_err(err)
}

/// Drops a service's marks at or below a pruned horizon (found through their own index).
pub(crate) const PRUNE_MARKS: &str = "DELETE FROM object_marks WHERE service_sid = ?1 AND seq <= ?2";

pub(crate) fn prune_events(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    // Events are dated in sequence order, so each service's oldest events are found by walking
    // its primary key from the pruned horizon: no date index has to be kept up on every write.
    // A run looks at most PRUNE_SCAN events per service; the next run continues.
    const PRUNE_SCAN: i64 = 100_000;
    let cutoffs = query_all(
        conn,
        "SELECT s.sid, (SELECT MAX(seq) FROM (SELECT seq, date FROM events e
                 WHERE e.service_sid = s.sid AND e.seq > s.pruned_seq ORDER BY e.seq LIMIT ?2)
                 WHERE date < ?1)
         FROM services s WHERE EXISTS (SELECT 1 FROM events e WHERE e.service_sid = s.sid AND e.seq > s.pruned_seq)",
        vec![SqlValue::Integer(before.0), SqlValue::Integer(PRUNE_SCAN)],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
    )?;
    let cutoffs = cutoffs.into_iter().filter_map(|(service, seq)| Some((service, seq?)));
    let mut removed = 0;
    for (service, seq) in cutoffs {
        removed += conn
            .prepare_cached("DELETE FROM events WHERE service_sid = ?1 AND seq <= ?2")
            .and_then(|mut st| st.execute(params![service, seq]))
            .map_err(err)? as u64;
        conn.prepare_cached("DELETE FROM object_tombstones WHERE service_sid = ?1 AND last_seq <= ?2")
            .and_then(|mut st| st.execute(params![service, seq]))
            .map_err(err)?;
        conn.prepare_cached(PRUNE_MARKS).and_then(|mut st| st.execute(params![service, seq])).map_err(err)?;
        conn.prepare_cached("UPDATE services SET pruned_seq = MAX(pruned_seq, ?2) WHERE sid = ?1")
            .and_then(|mut st| st.execute(params![service, seq]))
            .map_err(err)?;
    }
    Ok(removed)
}
