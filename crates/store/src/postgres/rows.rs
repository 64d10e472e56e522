//! SQL shared by the writer's transaction and the read pool: one function per query, each over
//! a connection that keeps its prepared statements (one round trip per query, not two).

use crate::{settings_from_json, settings_to_json};
use ferrosync_core::log::event_from_body;
use ferrosync_core::model::{Item, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{ApiKeyRecord, LogCursor, StoreError, StoredEvent};
use ferrosync_core::timestamp::Timestamp;
use postgres::Row;

mod cognito;
mod items;
mod matrix;
pub(crate) use super::conn::{Param, PgConn, err};
pub(crate) use cognito::*;
pub(crate) use items::*;
pub(crate) use matrix::*;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("column {what} holds an invalid value"))
}

pub(super) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|_| corrupt(what))
}

pub(super) fn sid_col(row: &Row, idx: usize) -> Result<Sid, StoreError> {
    let s: &str = get(row, idx, "sid")?;
    Sid::parse(s).map_err(|_| corrupt("sid"))
}

fn json_col(row: &Row, idx: usize) -> Result<Option<serde_json::Value>, StoreError> {
    let s: Option<&str> = get(row, idx, "data")?;
    s.map(|s| serde_json::from_str(s).map_err(|_| corrupt("data"))).transpose()
}

fn u64_col(row: &Row, idx: usize, what: &str) -> Result<u64, StoreError> {
    get::<i64>(row, idx, what).map(|v| v as u64)
}

fn ts_col(row: &Row, idx: usize, what: &str) -> Result<Timestamp, StoreError> {
    get::<i64>(row, idx, what).map(Timestamp)
}

fn ref_parts(r: &ObjectRef) -> (&'static str, &str) {
    match r {
        ObjectRef::Sid(s) => ("sid", s.as_str()),
        ObjectRef::UniqueName(n) => ("unique_name", n.as_str()),
    }
}

const SERVICE_COLS: &str = "sid, unique_name, friendly_name, acl_enabled, revision, date_created, date_updated, head_seq, pruned_seq, settings";

fn service_row(row: &Row) -> Result<Service, StoreError> {
    Ok(Service {
        sid: sid_col(row, 0)?,
        unique_name: get(row, 1, "unique_name")?,
        friendly_name: get(row, 2, "friendly_name")?,
        acl_enabled: get(row, 3, "acl_enabled")?,
        revision: u64_col(row, 4, "revision")?,
        date_created: ts_col(row, 5, "date_created")?,
        date_updated: ts_col(row, 6, "date_updated")?,
        head_seq: u64_col(row, 7, "head_seq")?,
        pruned_seq: u64_col(row, 8, "pruned_seq")?,
        settings: settings_from_json(&get::<String>(row, 9, "settings")?)?,
    })
}

/// `lock`: inside a write transaction the service row is locked first, so that every mutation
/// of a service (on any node) runs after the previous one committed and reads what it wrote.
fn service_row_by(conn: &mut PgConn, r: &ObjectRef, lock: bool) -> Result<Option<Service>, StoreError> {
    let (col, val) = ref_parts(r);
    let suffix = if lock { " FOR NO KEY UPDATE" } else { "" };
    conn.query_opt(&format!("SELECT {SERVICE_COLS} FROM services WHERE {col} = $1{suffix}"), &[&val])?
        .map(|r| service_row(&r))
        .transpose()
}

pub(crate) fn service(conn: &mut PgConn, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
    service_row_by(conn, r, false)
}

/// The service, its row locked until the write transaction ends.
pub(crate) fn service_for_update(conn: &mut PgConn, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
    service_row_by(conn, r, true)
}

pub(crate) fn services(conn: &mut PgConn, page: &PageRequest) -> Result<Vec<Service>, StoreError> {
    let mut args: Vec<Param> = Vec::new();
    let cond = key_bound(page, "sid", &mut args);
    let order = sql_order(page.order);
    args.push(Box::new(page.limit as i64 + 1));
    let sql =
        format!("SELECT {SERVICE_COLS} FROM services WHERE TRUE {cond} ORDER BY sid {order} LIMIT ${}", args.len());
    conn.query_boxed(&sql, &args)?.iter().map(service_row).collect()
}

pub(crate) fn put_service(conn: &mut PgConn, s: &Service) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO services (sid, unique_name, friendly_name, acl_enabled, revision, date_created, date_updated, settings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name, friendly_name = excluded.friendly_name,
           acl_enabled = excluded.acl_enabled, revision = excluded.revision, date_updated = excluded.date_updated,
           settings = excluded.settings",
        &[
            &s.sid.as_str(),
            &s.unique_name,
            &s.friendly_name,
            &s.acl_enabled,
            &(s.revision as i64),
            &s.date_created.0,
            &s.date_updated.0,
            &settings_to_json(&s.settings),
        ],
    )
    .map(drop)
}

const OBJECT_COLS: &str = "sid, service_sid, kind, unique_name, data, revision, next_index, date_created, date_updated, date_expires, created_by";

fn object_row(row: &Row) -> Result<SyncObject, StoreError> {
    Ok(SyncObject {
        sid: sid_col(row, 0)?,
        service_sid: sid_col(row, 1)?,
        kind: ObjectKind::from_code(get(row, 2, "kind")?).ok_or_else(|| corrupt("kind"))?,
        unique_name: get(row, 3, "unique_name")?,
        data: json_col(row, 4)?.map(std::sync::Arc::new),
        revision: u64_col(row, 5, "revision")?,
        next_index: u64_col(row, 6, "next_index")?,
        date_created: ts_col(row, 7, "date_created")?,
        date_updated: ts_col(row, 8, "date_updated")?,
        date_expires: get::<Option<i64>>(row, 9, "date_expires")?.map(Timestamp),
        created_by: get(row, 10, "created_by")?,
    })
}

pub(crate) fn object(
    conn: &mut PgConn,
    service: &Sid,
    kind: ObjectKind,
    r: &ObjectRef,
) -> Result<Option<SyncObject>, StoreError> {
    if let Some(held) = conn.held.object(service, kind, r) {
        return Ok(Some(held.clone()));
    }
    // Held rows are other objects' (or this one's, answered from them below): no need to send
    // them before these reads.
    let found = match conn.ahead.answer(service, kind, r) {
        Some(found) => found.cloned(),
        None => {
            let wanted = conn.ahead.take(service, kind, r);
            if wanted.is_empty() {
                let (col, val) = ref_parts(r);
                // At most one row: (service, kind, unique name) and the SID are each unique.
                let found = conn
                    .query_past_held(
                        &format!(
                            "SELECT {OBJECT_COLS} FROM objects WHERE service_sid = $1 AND kind = $2 AND {col} = $3"
                        ),
                        &[&service.as_str(), &kind.code(), &val],
                    )?
                    .first()
                    .map(object_row)
                    .transpose()?;
                if conn.holding() {
                    // The batch's later reads of it, and of its items, are answered ahead.
                    note(conn, (service.clone(), kind, r.clone()), found.as_slice());
                }
                found
            } else {
                read_ahead(conn, service, wanted)?;
                conn.ahead.answer(service, kind, r).flatten().cloned()
            }
        }
    };
    Ok(match found {
        // Held under a name `r` no longer matches.
        Some(o) if conn.held.object_by_sid(&o.sid).is_some() => None,
        found => found,
    })
}

/// Reads the objects `wanted` names in `service` in one statement (see [`super::ahead`]): those
/// named by SID through the primary key, those named by name through `(service, kind, name)`,
/// so that the read costs the same in a service of any size.
fn read_ahead(conn: &mut PgConn, service: &Sid, wanted: Vec<(Sid, ObjectKind, ObjectRef)>) -> Result<(), StoreError> {
    let (mut sids, mut kinds, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (_, kind, r) in &wanted {
        match r {
            ObjectRef::Sid(sid) => sids.push(sid.as_str()),
            ObjectRef::UniqueName(name) => {
                kinds.push(kind.code());
                names.push(name.as_str());
            }
        }
    }
    let rows = conn.query_past_held(
        &format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE sid = ANY($2) AND service_sid = $1
             UNION ALL
             SELECT {OBJECT_COLS} FROM objects
             WHERE service_sid = $1 AND (kind, unique_name) IN (SELECT * FROM unnest($3::int8[], $4::text[]))"
        ),
        &[&service.as_str(), &sids, &kinds, &names],
    )?;
    let found = rows.iter().map(object_row).collect::<Result<Vec<_>, _>>()?;
    for named in wanted {
        note(conn, named, &found);
    }
    Ok(())
}

/// Notes what `named` names among `found`, unless the writer holds that object: its held
/// version answers while it is held, and once sent, what was read before it is stale.
fn note(conn: &mut PgConn, named: (Sid, ObjectKind, ObjectRef), found: &[SyncObject]) {
    let (service, kind, r) = (&named.0, named.1, &named.2);
    let hit = found.iter().find(|o| super::pending::is_named(o, service, kind, r));
    if conn.held.object(service, kind, r).is_some() || hit.is_some_and(|o| conn.held.object_by_sid(&o.sid).is_some()) {
        return;
    }
    conn.ahead.note(named, found);
}

pub(crate) fn object_by_sid(conn: &mut PgConn, sid: &Sid) -> Result<Option<SyncObject>, StoreError> {
    conn.query_opt(&format!("SELECT {OBJECT_COLS} FROM objects WHERE sid = $1"), &[&sid.as_str()])?
        .map(|r| object_row(&r))
        .transpose()
}

pub(crate) fn objects(
    conn: &mut PgConn,
    service: &Sid,
    kind: ObjectKind,
    page: &PageRequest,
) -> Result<Vec<SyncObject>, StoreError> {
    let mut args: Vec<Param> = vec![Box::new(service.to_string()), Box::new(kind.code())];
    let cond = key_bound(page, "sid", &mut args);
    let order = sql_order(page.order);
    args.push(Box::new(page.limit as i64 + 1));
    let sql = format!(
        "SELECT {OBJECT_COLS} FROM objects WHERE service_sid = $1 AND kind = $2 {cond} ORDER BY sid {order} LIMIT ${}",
        args.len()
    );
    conn.query_boxed(&sql, &args)?.iter().map(object_row).collect()
}

pub(crate) fn put_object(conn: &mut PgConn, o: &SyncObject) -> Result<(), StoreError> {
    if conn.holding() {
        conn.ahead.forget(o);
        conn.held.put_object(o);
        return Ok(());
    }
    let data = o.data.as_ref().map(|d| d.to_string());
    conn.execute(
        "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index, date_created, date_updated, date_expires, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name, data = excluded.data,
           revision = excluded.revision, next_index = excluded.next_index, date_updated = excluded.date_updated,
           date_expires = excluded.date_expires",
        &[
            &o.sid.as_str(),
            &o.service_sid.as_str(),
            &o.kind.code(),
            &o.unique_name,
            &data,
            &(o.revision as i64),
            &(o.next_index as i64),
            &o.date_created.0,
            &o.date_updated.0,
            &o.date_expires.map(|t| t.0),
            &o.created_by,
        ],
    )
    .map(drop)
}

fn permission_row(row: &Row) -> Result<Permission, StoreError> {
    Ok(Permission {
        object_sid: sid_col(row, 0)?,
        identity: get(row, 1, "identity")?,
        read: get(row, 2, "can_read")?,
        write: get(row, 3, "can_write")?,
        manage: get(row, 4, "can_manage")?,
    })
}

pub(crate) fn permission(conn: &mut PgConn, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
    conn.query_opt(
        "SELECT object_sid, identity, can_read, can_write, can_manage FROM permissions WHERE object_sid = $1 AND identity = $2",
        &[&object.as_str(), &identity],
    )?
    .map(|r| permission_row(&r))
    .transpose()
}

pub(crate) fn permissions(conn: &mut PgConn, object: &Sid) -> Result<Vec<Permission>, StoreError> {
    conn.query(
        "SELECT object_sid, identity, can_read, can_write, can_manage FROM permissions WHERE object_sid = $1 ORDER BY identity",
        &[&object.as_str()],
    )?
    .iter()
    .map(permission_row)
    .collect()
}

pub(crate) fn put_permission(conn: &mut PgConn, p: &Permission) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO permissions (object_sid, identity, can_read, can_write, can_manage) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (object_sid, identity) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write,
           can_manage = excluded.can_manage",
        &[&p.object_sid.as_str(), &p.identity, &p.read, &p.write, &p.manage],
    )
    .map(drop)
}

pub(crate) fn delete_permission(conn: &mut PgConn, object: &Sid, identity: &str) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM permissions WHERE object_sid = $1 AND identity = $2", &[&object.as_str(), &identity])
        .map(|n| n > 0)
}

/// Locks a service's counter row and reads its head. Inside a write transaction the lock makes
/// a writer on another node wait for this commit before it can take the next number, so commit
/// order is sequence order and no reader can skip an event.
pub(crate) fn lock_head_seq(conn: &mut PgConn, service: &Sid) -> Result<u64, StoreError> {
    let row = conn
        .query_opt("SELECT head_seq FROM services WHERE sid = $1 FOR NO KEY UPDATE", &[&service.as_str()])?
        .ok_or_else(|| StoreError::Backend(format!("service {service} vanished inside its transaction")))?;
    u64_col(&row, 0, "head_seq")
}

pub(crate) fn insert_event(
    conn: &mut PgConn,
    service: &Sid,
    seq: u64,
    object: &Sid,
    date: Timestamp,
    json: &str,
) -> Result<(), StoreError> {
    if conn.holding() {
        conn.held.insert_event(service, seq, object, date, json);
        return Ok(());
    }
    conn.execute(
        "INSERT INTO events (service_sid, seq, object_sid, date, body) VALUES ($1, $2, $3, $4, $5)",
        &[&service.as_str(), &(seq as i64), &object.as_str(), &date.0, &json],
    )
    .map(drop)
}

/// An object and the event recording its change: two statements here, where each event is
/// found through an index on the object rather than links kept on the object's row.
pub(crate) fn put_object_with_event(
    conn: &mut PgConn,
    o: &SyncObject,
    seq: u64,
    date: Timestamp,
    json: &str,
) -> Result<(), StoreError> {
    put_object(conn, o)?;
    insert_event(conn, &o.service_sid, seq, &o.sid, date, json)
}

/// An event row of `service`'s log, its head put back if it was kept without it.
fn stored_event_row(row: &Row, epoch: &str, service: &Sid) -> Result<StoredEvent, StoreError> {
    let seq = u64_col(row, 0, "seq")?;
    let body: String = get(row, 2, "body")?;
    Ok(StoredEvent { seq, object_sid: sid_col(row, 1)?, json: event_from_body(epoch, service, seq, body) })
}

/// A page of a service's log. An event kept without its head gets it back from the store's
/// `epoch`, the service and its sequence number (see [`super::format`]).
pub(crate) fn events(
    conn: &mut PgConn,
    epoch: &str,
    service: &Sid,
    after: u64,
    object: Option<&Sid>,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = match object {
        None => conn.query(
            "SELECT seq, object_sid, body FROM events WHERE service_sid = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&service.as_str(), &(after as i64), &(limit as i64)],
        )?,
        Some(object) => conn.query(
            "SELECT seq, object_sid, body FROM events WHERE object_sid = $1 AND seq > $2 AND service_sid = $3
             ORDER BY seq LIMIT $4",
            &[&object.as_str(), &(after as i64), &service.as_str(), &(limit as i64)],
        )?,
    };
    rows.iter().map(|row| stored_event_row(row, epoch, service)).collect()
}

/// When the next object or item expires; `None` when nothing carries an expiry. A plain read,
/// locking nothing: it only tells a sweep whether to take rows at all.
pub(crate) fn next_expiry(conn: &mut PgConn) -> Result<Option<Timestamp>, StoreError> {
    let row = conn.query_opt(
        "SELECT LEAST((SELECT MIN(date_expires) FROM objects WHERE date_expires IS NOT NULL),
                      (SELECT MIN(date_expires) FROM items WHERE date_expires IS NOT NULL))",
        &[],
    )?;
    Ok(row.map(|r| get::<Option<i64>>(&r, 0, "next_expiry")).transpose()?.flatten().map(Timestamp))
}

// Expiry locks the rows it takes and skips rows another transaction holds: several nodes
// sweeping at once each take different rows, and none waits behind a writer.

pub(crate) fn expired_objects(conn: &mut PgConn, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError> {
    conn.query(
        &format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE date_expires IS NOT NULL AND date_expires <= $1
             ORDER BY date_expires LIMIT $2 FOR UPDATE SKIP LOCKED"
        ),
        &[&now.0, &(limit as i64)],
    )?
    .iter()
    .map(object_row)
    .collect()
}

pub(crate) fn expired_items(conn: &mut PgConn, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
    conn.query(
        &format!(
            "SELECT {ITEM_COLS} FROM items WHERE date_expires IS NOT NULL AND date_expires <= $1
             ORDER BY date_expires LIMIT $2 FOR UPDATE SKIP LOCKED"
        ),
        &[&now.0, &(limit as i64)],
    )?
    .iter()
    .map(item_row)
    .collect()
}

pub(crate) fn prune_events(conn: &mut PgConn, before: Timestamp) -> Result<u64, StoreError> {
    // One node prunes at a time (the rest find the lock taken and skip this round). Events are
    // dated in sequence order, so each service's oldest events are found by walking its primary
    // key from the pruned horizon, at most PRUNE_SCAN of them per service and run.
    const PRUNE_SCAN: i64 = 100_000;
    let locked = conn.query_opt("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.prune'))", &[])?;
    if !locked.map(|r| get::<bool>(&r, 0, "lock")).transpose()?.unwrap_or(false) {
        return Ok(0);
    }
    let cutoffs = conn.query(
        "SELECT s.sid, (SELECT MAX(w.seq) FROM (SELECT e.seq, e.date FROM events e
                 WHERE e.service_sid = s.sid AND e.seq > s.pruned_seq ORDER BY e.seq LIMIT $2) w
                 WHERE w.date < $1)
         FROM services s WHERE s.head_seq > s.pruned_seq",
        &[&before.0, &PRUNE_SCAN],
    )?;
    let mut removed = 0;
    for row in &cutoffs {
        let service: String = get(row, 0, "sid")?;
        let Some(seq) = get::<Option<i64>>(row, 1, "seq")? else { continue };
        removed += conn.execute("DELETE FROM events WHERE service_sid = $1 AND seq <= $2", &[&service, &seq])?;
        conn.execute("UPDATE services SET pruned_seq = GREATEST(pruned_seq, $2) WHERE sid = $1", &[&service, &seq])?;
    }
    Ok(removed)
}

fn api_key_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        sid: sid_col(row, 0)?,
        friendly_name: get(row, 1, "friendly_name")?,
        sealed_secret: get(row, 2, "sealed_secret")?,
        date_created: ts_col(row, 3, "date_created")?,
    })
}

pub(crate) fn api_key(conn: &mut PgConn, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError> {
    conn.query_opt(
        "SELECT sid, friendly_name, sealed_secret, date_created FROM api_keys WHERE sid = $1",
        &[&sid.as_str()],
    )?
    .map(|r| api_key_row(&r))
    .transpose()
}

pub(crate) fn api_keys(conn: &mut PgConn) -> Result<Vec<ApiKeyRecord>, StoreError> {
    conn.query("SELECT sid, friendly_name, sealed_secret, date_created FROM api_keys ORDER BY date_created, sid", &[])?
        .iter()
        .map(api_key_row)
        .collect()
}

pub(crate) fn put_api_key(conn: &mut PgConn, k: &ApiKeyRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_keys (sid, friendly_name, sealed_secret, date_created) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sid) DO UPDATE SET friendly_name = excluded.friendly_name, sealed_secret = excluded.sealed_secret",
        &[&k.sid.as_str(), &k.friendly_name, &k.sealed_secret, &k.date_created.0],
    )
    .map(drop)
}

pub(crate) fn delete_object(conn: &mut PgConn, sid: &Sid) -> Result<(), StoreError> {
    delete_by_sid(conn, "objects", sid).map(drop)
}

pub(crate) fn delete_by_sid(conn: &mut PgConn, table: &str, sid: &Sid) -> Result<bool, StoreError> {
    conn.execute(&format!("DELETE FROM {table} WHERE sid = $1"), &[&sid.as_str()]).map(|n| n > 0)
}

/// Every service's newest sequence number: what a node that lost its notification stream
/// compares its readers' cursors against.
/// Every service's head, as [`service_head`] reads each row.
pub(super) const SERVICE_HEADS: &str = "SELECT sid, head_seq FROM services WHERE head_seq > 0";

pub(super) fn service_head(row: &Row) -> Result<(Sid, u64), StoreError> {
    Ok((sid_col(row, 0)?, u64_col(row, 1, "head_seq")?))
}

fn sql_order(order: Order) -> &'static str {
    match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    }
}

/// The WHERE fragment for a page's starting point (strictly after a page token's cursor, or
/// from the requested key inclusive); pushes its value onto `args` and names it by position.
fn key_bound(page: &PageRequest, col: &str, args: &mut Vec<Param>) -> String {
    let (cursor, strict) = match (&page.after, &page.from) {
        (Some(c), _) => (c, true),
        (None, Some(c)) => (c, false),
        (None, None) => return String::new(),
    };
    let op = match (page.order, strict) {
        (Order::Asc, true) => ">",
        (Order::Asc, false) => ">=",
        (Order::Desc, true) => "<",
        (Order::Desc, false) => "<=",
    };
    match cursor {
        Cursor::Index(i) => args.push(Box::new(*i as i64)),
        Cursor::Key(k) => args.push(Box::new(k.clone())),
    }
    format!("AND {col} {op} ${}", args.len())
}

// ----- change-log consumers --------------------------------------------------------------------

pub(crate) fn set_log_cursor(
    conn: &mut PgConn,
    consumer: &str,
    service: &Sid,
    start: Option<u64>,
) -> Result<(), StoreError> {
    match start {
        Some(seq) => conn.execute(
            "INSERT INTO log_cursors (service_sid, consumer, delivered_seq) VALUES ($1, $2, $3)
             ON CONFLICT (service_sid, consumer) DO UPDATE SET delivered_seq = excluded.delivered_seq",
            &[&service.as_str(), &consumer, &(seq as i64)],
        ),
        None => conn.execute(
            "DELETE FROM log_cursors WHERE service_sid = $1 AND consumer = $2",
            &[&service.as_str(), &consumer],
        ),
    }
    .map(drop)
}

pub(crate) fn log_cursors(conn: &mut PgConn, consumer: &str) -> Result<Vec<LogCursor>, StoreError> {
    conn.query(
        "SELECT service_sid, delivered_seq, lease_owner, lease_expires FROM log_cursors
         WHERE consumer = $1 ORDER BY service_sid",
        &[&consumer],
    )?
    .iter()
    .map(|r| {
        Ok(LogCursor {
            service: sid_col(r, 0)?,
            delivered_seq: u64_col(r, 1, "delivered_seq")?,
            lease_owner: get(r, 2, "lease_owner")?,
            lease_expires: ts_col(r, 3, "lease_expires")?,
        })
    })
    .collect()
}

// A row lock orders nodes racing for one lease: the second re-checks the condition against the
// first one's write, so exactly one of them gets it.
pub(crate) fn take_log_lease(
    conn: &mut PgConn,
    consumer: &str,
    service: &Sid,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<u64>, StoreError> {
    conn.query_opt(
        "UPDATE log_cursors SET lease_owner = $3, lease_expires = $5
         WHERE service_sid = $1 AND consumer = $2 AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires < $4)
         RETURNING delivered_seq",
        &[&service.as_str(), &consumer, &owner, &now.0, &until.0],
    )?
    .map(|r| u64_col(&r, 0, "delivered_seq"))
    .transpose()
}

pub(crate) fn advance_log_cursor(
    conn: &mut PgConn,
    consumer: &str,
    service: &Sid,
    owner: &str,
    seq: u64,
    until: Timestamp,
) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE log_cursors SET delivered_seq = GREATEST(delivered_seq, $4), lease_expires = $5
         WHERE service_sid = $1 AND consumer = $2 AND lease_owner = $3",
        &[&service.as_str(), &consumer, &owner, &(seq as i64), &until.0],
    )
    .map(|n| n == 1)
}

pub(crate) fn release_log_lease(
    conn: &mut PgConn,
    consumer: &str,
    service: &Sid,
    owner: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE log_cursors SET lease_owner = NULL, lease_expires = 0
         WHERE service_sid = $1 AND consumer = $2 AND lease_owner = $3",
        &[&service.as_str(), &consumer, &owner],
    )
    .map(drop)
}
