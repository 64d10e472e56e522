//! The change log: events, each linked to its object's previous one, the streams those links
//! make, and pruning.

use super::{RowAt, err, put_object, query_all, sid_col};
use crate::sqlite::hot::HotStatements;
use ferrosync_core::model::SyncObject;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::borrow::Cow;

/// How many low bits of an event's row id are its sequence number; the rest are its service's
/// number (schema_v12.sql). Read from `seq_bits!`, the SQL's spelling, when the crate is built.
pub(crate) const SEQ_BITS: u32 = match u32::from_str_radix(seq_bits!(), 10) {
    Ok(bits) => bits,
    Err(_) => panic!("seq_bits! is a number"),
};
/// The last sequence number a service's range of row ids holds, from `seq_max!`: the build
/// fails unless the two spellings agree.
pub(crate) const SEQ_MAX: u64 = match u64::from_str_radix(seq_max!(), 10) {
    Ok(max) if max == (1 << SEQ_BITS) - 1 => max,
    _ => panic!("seq_max! is 2^SEQ_BITS - 1"),
};

/// Where a service's events start among the log's row ids: its number shifted past the
/// sequence number's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogBase(i64);

impl LogBase {
    /// The row id of event `seq`, which must fit in the service's range.
    fn id(self, seq: u64) -> Result<i64, StoreError> {
        if seq > SEQ_MAX {
            return Err(StoreError::Backend(format!(
                "the service's log is full: sequence number {seq} is past {SEQ_MAX}"
            )));
        }
        Ok(self.0 + seq as i64)
    }

    /// The row ids after event `after` (a reader's cursor, clamped to the range) to the
    /// range's end.
    fn after(self, after: u64) -> (i64, i64) {
        (self.0 + after.min(SEQ_MAX) as i64, self.0 + SEQ_MAX as i64)
    }
}

/// A service's place in the log, if the service exists.
pub(crate) fn log_base(conn: &Connection, service: &Sid) -> Result<Option<LogBase>, StoreError> {
    conn.prepare_cached(concat!("SELECT num << ", seq_bits!(), " FROM services WHERE sid = ?1"))
        .and_then(|mut st| st.query_row([service.as_str()], |r| r.get(0)).optional())
        .map(|base| base.map(LogBase))
        .map_err(err)
}

/// The writer's [`LogBase`]s, kept across batches like the rest of its memory: a service's
/// number never changes while it exists. Whatever writes the services table forgets them.
#[derive(Debug, Default)]
pub(crate) struct LogBases(Vec<(Sid, LogBase)>);

impl LogBases {
    pub(crate) fn get(&mut self, conn: &Connection, service: &Sid) -> Result<LogBase, StoreError> {
        if let Some((_, base)) = self.0.iter().find(|(sid, _)| sid == service) {
            return Ok(*base);
        }
        let base = log_base(conn, service)?
            .ok_or_else(|| StoreError::Backend(format!("no service {service} to append an event to")))?;
        self.0.push((service.clone(), base));
        Ok(base)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn forget(&mut self) {
        self.0.clear();
    }
}

pub(crate) fn head_seq(conn: &Connection, service: &Sid) -> Result<u64, StoreError> {
    conn.prepare_cached(concat!("SELECT ", head_seq!(), " FROM services WHERE sid = ?1"))
        .and_then(|mut st| st.query_row([service.as_str()], |r| r.get::<_, i64>(0)))
        .map(|s| s as u64)
        .map_err(err)
}

/// Appends an event and points its object (or tombstone) at it. With `at`, the job read the
/// object's row just before (nothing has written objects since): the link and the row are
/// taken from there. Returns where the row is now, if it is known.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_event(
    hot: &HotStatements<'_>,
    base: LogBase,
    service: &Sid,
    seq: u64,
    object: &Sid,
    date: Timestamp,
    body: &str,
    at: Option<RowAt>,
) -> Result<Option<RowAt>, StoreError> {
    insert_event_row(hot, base, seq, object, date, body, at)?;
    let conn = hot.conn();
    if let Some(at) = at {
        let linked = hot
            .with("UPDATE objects SET last_seq = ?2, stream_len = stream_len + 1 WHERE rowid = ?1", |st| {
                st.execute(params![at.rowid, seq as i64])
            })
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn put_object_with_event(
    hot: &HotStatements<'_>,
    base: LogBase,
    o: &SyncObject,
    seq: u64,
    date: Timestamp,
    body: &str,
    data: Option<&str>,
    at: Option<RowAt>,
) -> Result<Option<RowAt>, StoreError> {
    debug_assert_eq!(data.map(str::to_owned), data.and(o.data.as_ref()).map(ToString::to_string));
    // The object's data as text: the event's own when given, rather than serialised again.
    let data: Option<Cow<'_, str>> = match data {
        Some(text) => Some(Cow::Borrowed(text)),
        None => o.data.as_ref().map(|d| Cow::Owned(d.to_string())),
    };
    // The event first: its link reads where the object's stream ended before this write.
    insert_event_row(hot, base, seq, &o.sid, date, body, at)?;
    let conn = hot.conn();
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
    let updated = hot
        .with(sql, |st| {
            st.execute(params![
                row,
                data,
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
    hot: &HotStatements<'_>,
    base: LogBase,
    seq: u64,
    object: &Sid,
    date: Timestamp,
    body: &str,
    at: Option<RowAt>,
) -> Result<(), StoreError> {
    // The event links to its object's previous one; then the object (or, once it is removed,
    // its tombstone) points at this one (schema_v8.sql) and counts it, and every 32nd event is
    // marked (schema_v9.sql): see `counted` and `mark_if_due`.
    let id = base.id(seq)?;
    let inserted = match at {
        Some(at) => hot
            .with("INSERT INTO events (id, object_sid, date, body, prev_seq) VALUES (?1, ?2, ?3, ?4, ?5)", |st| {
                st.execute(params![id, object.as_str(), date.0, body, at.last_seq])
            }),
        None => hot.with(
            "INSERT INTO events (id, object_sid, date, body, prev_seq) VALUES (?1, ?2, ?3, ?4,
               COALESCE((SELECT last_seq FROM objects WHERE sid = ?2),
                        (SELECT last_seq FROM object_tombstones WHERE object_sid = ?2), 0))",
            |st| st.execute(params![id, object.as_str(), date.0, body]),
        ),
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

/// An event of `service` from its row: (row id less its service's base, object SID, body),
/// its text's head put back (`ferrosync_core::log::event_from_body`).
fn stored_event_row<'a>(epoch: &'a str, service: &'a Sid) -> impl Fn(&Row<'_>) -> rusqlite::Result<StoredEvent> + 'a {
    move |row| {
        let seq = row.get::<_, i64>(0)? as u64;
        let json = ferrosync_core::log::event_from_body(epoch, service, seq, row.get(2)?);
        Ok(StoredEvent { seq, object_sid: sid_col(row, 1)?, json })
    }
}

/// Up to ?4 events with row ids in (?2, ?3], numbered from ?1: a page of one service's log.
pub(crate) const LOG_PAGE: &str =
    "SELECT id - ?1, object_sid, body FROM events WHERE id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4";

pub(crate) fn events(
    conn: &Connection,
    epoch: &str,
    service: &Sid,
    after: u64,
    object: Option<&Sid>,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    match object {
        None => {
            let Some(base) = log_base(conn, service)? else { return Ok(Vec::new()) };
            let (from, to) = base.after(after);
            conn.prepare_cached(LOG_PAGE)
                .and_then(|mut st| {
                    st.query_map(params![base.0, from, to, limit], stored_event_row(epoch, service))?
                        .collect::<Result<_, _>>()
                })
                .map_err(err)
        }
        Some(object) => {
            let (events, rewalked) = object_events(conn, epoch, service, after, object, limit)?;
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
    epoch: &str,
    service: &Sid,
    after: u64,
    object: &Sid,
    limit: u32,
) -> Result<(Vec<StoredEvent>, bool), StoreError> {
    let (svc, obj, after) = (service.as_str(), object.as_str(), after.min(SEQ_MAX) as i64);
    let newest: Option<i64> = conn
        .prepare_cached(
            "SELECT COALESCE((SELECT last_seq FROM objects WHERE sid = ?1 AND service_sid = ?2),
                             (SELECT last_seq FROM object_tombstones WHERE object_sid = ?1 AND service_sid = ?2))",
        )
        .and_then(|mut st| st.query_row(params![obj, svc], |r| r.get(0)))
        .map_err(err)?;
    let Some(newest) = newest.filter(|&n| n > after && limit > 0) else { return Ok((Vec::new(), false)) };
    let Some(base) = log_base(conn, service)? else { return Ok((Vec::new(), false)) };
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
    let events = walk_stream(conn, epoch, service, base, obj, mark.unwrap_or(newest), after, limit)?;
    match mark {
        // A mark promised a whole page; if pruning or a damaged mark broke that promise, the
        // walk from the newest event is the answer (marks only ever choose where to start).
        Some(_) if events.len() < limit as usize => {
            Ok((walk_stream(conn, epoch, service, base, obj, newest, after, limit)?, true))
        }
        _ => Ok((events, false)),
    }
}

/// The oldest ?5 events of object ?3's stream in (?4, ?1], the service's events starting at
/// row id ?2. Only stored events of the object join, so a link into a pruned stretch ends the
/// walk before the page is cut to its size. CROSS JOIN keeps each step a lookup of one row id.
pub(crate) const WALK_STREAM: &str = "WITH RECURSIVE chain (seq, prev_seq, body) AS (
         SELECT ?1, prev_seq, body FROM events WHERE id = ?2 + ?1 AND object_sid = ?3
         UNION ALL
         SELECT c.prev_seq, e.prev_seq, e.body FROM chain c
           CROSS JOIN events e ON e.id = ?2 + c.prev_seq AND e.object_sid = ?3
          WHERE c.prev_seq > ?4
     )
     SELECT seq, ?3, body FROM chain WHERE seq > ?4 ORDER BY seq LIMIT ?5";

/// The oldest `limit` events of an object's stream in (`after`, `from`], found by following
/// the links back from event `from`; each link's row carries its event, so a link is one
/// lookup.
#[allow(clippy::too_many_arguments)]
fn walk_stream(
    conn: &Connection,
    epoch: &str,
    service: &Sid,
    base: LogBase,
    object: &str,
    from: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    conn.prepare_cached(WALK_STREAM)
        .and_then(|mut st| {
            st.query_map(params![from, base.0, object, after, limit], stored_event_row(epoch, service))?
                .collect::<Result<_, _>>()
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
    // Each service's events are the row ids (base, base + SEQ_MAX] (schema_v12.sql).
    let cutoffs = query_all(
        conn,
        concat!(
            "SELECT s.sid, s.base, (SELECT MAX(id) - s.base FROM (SELECT e.id, e.date FROM events e
                 WHERE e.id > s.base + s.pruned_seq AND e.id <= s.base + ",
            seq_max!(),
            "
                 ORDER BY e.id LIMIT ?2)
                 WHERE date < ?1)
             FROM (SELECT sid, pruned_seq, num << ",
            seq_bits!(),
            " AS base FROM services) s"
        ),
        vec![SqlValue::Integer(before.0), SqlValue::Integer(PRUNE_SCAN)],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)),
    )?;
    let cutoffs = cutoffs.into_iter().filter_map(|(service, base, seq)| Some((service, base, seq?)));
    let mut removed = 0;
    for (service, base, seq) in cutoffs {
        removed += conn
            .prepare_cached("DELETE FROM events WHERE id > ?1 AND id <= ?1 + ?2")
            .and_then(|mut st| st.execute(params![base, seq]))
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
