//! SQL shared by the writer's transaction and the read pool: one function per query.

use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, Permission, Service, SyncObject};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{ApiKeyRecord, LogCursor, StoreError};
use ferrosync_core::timestamp::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

mod cognito;
mod matrix;
pub(crate) use cognito::*;
pub(crate) use matrix::*;

pub(crate) fn err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn sid_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Sid> {
    // Parsed from the row's own text: `parse` makes the one copy.
    Sid::parse(row.get_ref(idx)?.as_str()?).map_err(|_| corrupt("sid"))
}

fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let s = row.get_ref(idx)?.as_str_or_null()?;
    s.map(|s| serde_json::from_str(s).map_err(|_| corrupt("json"))).transpose()
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

/// How many low bits of an event's row id are its sequence number, and the largest sequence
/// number they hold (schema_v12.sql), as SQL text: every statement over the log spells its
/// service's range with these, `SEQ_BITS` and `SEQ_MAX` are read from them, and a test holds
/// them to the schema.
macro_rules! seq_bits {
    () => {
        "44"
    };
}
macro_rules! seq_max {
    () => {
        "17592186044415"
    };
}

/// A service's head is its log's last event, or its pruned horizon once every event is pruned:
/// one descent of the log's primary key (to the end of the service's range of ids,
/// schema_v12.sql), where a stored counter would cost every commit a rewrite of the service's
/// page.
macro_rules! head_seq {
    () => {
        concat!(
            "MAX(pruned_seq, COALESCE((SELECT e.id - (services.num << ",
            seq_bits!(),
            ") FROM events e
              WHERE e.id BETWEEN services.num << ",
            seq_bits!(),
            " AND (services.num << ",
            seq_bits!(),
            ") + ",
            seq_max!(),
            "
              ORDER BY e.id DESC LIMIT 1), 0))"
        )
    };
}

#[cfg(test)]
pub(crate) const HEAD_SEQ: &str = head_seq!();
#[cfg(test)]
pub(crate) const SEQ_BITS_SQL: &str = seq_bits!();
#[cfg(test)]
pub(crate) const SEQ_MAX_SQL: &str = seq_max!();

// After `head_seq!`, which the log's rows use too.
mod log;
pub(crate) use log::*;

/// Column lists as macros, so the SQL text of the point lookups is a literal (`concat!`) and
/// is not formatted again for every lookup the writer makes.
macro_rules! service_cols {
    () => {
        concat!(
            "sid, unique_name, friendly_name, acl_enabled, revision, date_created, date_updated, ",
            head_seq!(),
            ", pruned_seq, settings"
        )
    };
}

const SERVICE_COLS: &str = service_cols!();

fn service_row(row: &Row<'_>) -> rusqlite::Result<Service> {
    Ok(Service {
        sid: sid_col(row, 0)?,
        unique_name: row.get(1)?,
        friendly_name: row.get(2)?,
        acl_enabled: row.get(3)?,
        revision: row.get::<_, i64>(4)? as u64,
        date_created: Timestamp(row.get(5)?),
        date_updated: Timestamp(row.get(6)?),
        head_seq: row.get::<_, i64>(7)? as u64,
        pruned_seq: row.get::<_, i64>(8)? as u64,
        settings: crate::settings_from_json(&row.get::<_, String>(9)?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, Box::new(e)))?,
    })
}

pub(crate) fn service(conn: &Connection, r: &ObjectRef) -> Result<Option<Service>, StoreError> {
    let (sql, val) = match r {
        ObjectRef::Sid(s) => (concat!("SELECT ", service_cols!(), " FROM services WHERE sid = ?1"), s.as_str()),
        ObjectRef::UniqueName(n) => {
            (concat!("SELECT ", service_cols!(), " FROM services WHERE unique_name = ?1"), n.as_str())
        }
    };
    conn.prepare_cached(sql).and_then(|mut st| st.query_row([val], service_row).optional()).map_err(err)
}

pub(crate) fn services(conn: &Connection, page: &PageRequest) -> Result<Vec<Service>, StoreError> {
    let (cond, bound) = key_bound(page, "sid");
    let order = sql_order(page.order);
    let sql = format!("SELECT {SERVICE_COLS} FROM services WHERE 1=1 {cond} ORDER BY sid {order} LIMIT ?");
    let mut args: Vec<SqlValue> = bound.into_iter().collect();
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    query_all(conn, &sql, args, service_row)
}

pub(crate) fn put_service(conn: &Connection, s: &Service) -> Result<(), StoreError> {
    conn.prepare_cached(
        // A new service takes the lowest number free (schema_v12.sql).
        "INSERT INTO services (sid, unique_name, friendly_name, acl_enabled, revision, date_created, date_updated, settings, num)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                 CASE WHEN NOT EXISTS (SELECT 1 FROM services WHERE num = 1) THEN 1
                      ELSE (SELECT f.num + 1 FROM services f
                             WHERE f.num > 0 AND NOT EXISTS (SELECT 1 FROM services g WHERE g.num = f.num + 1)
                             ORDER BY f.num LIMIT 1) END)
         ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name, friendly_name = excluded.friendly_name,
           acl_enabled = excluded.acl_enabled, revision = excluded.revision, date_updated = excluded.date_updated,
           settings = excluded.settings",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.sid.as_str(),
            s.unique_name,
            s.friendly_name,
            s.acl_enabled,
            s.revision as i64,
            s.date_created.0,
            s.date_updated.0,
            crate::settings_to_json(&s.settings)
        ])
    })
    .map(drop)
    .map_err(err)
}

macro_rules! object_cols {
    () => {
        "sid, service_sid, kind, unique_name, data, revision, next_index, date_created, date_updated, date_expires, created_by"
    };
}

const OBJECT_COLS: &str = object_cols!();
/// How many columns `object_row` reads (counted from `OBJECT_COLS`): what a query selects
/// after them is its own.
const OBJECT_COL_COUNT: usize = {
    let (cols, mut i, mut n) = (OBJECT_COLS.as_bytes(), 0, 1);
    while i < cols.len() {
        if cols[i] == b',' {
            n += 1;
        }
        i += 1;
    }
    n
};

fn object_row(row: &Row<'_>) -> rusqlite::Result<SyncObject> {
    Ok(SyncObject {
        sid: sid_col(row, 0)?,
        service_sid: sid_col(row, 1)?,
        kind: ObjectKind::from_code(row.get(2)?).ok_or_else(|| corrupt("kind"))?,
        unique_name: row.get(3)?,
        data: json_col(row, 4)?.map(std::sync::Arc::new),
        revision: row.get::<_, i64>(5)? as u64,
        next_index: row.get::<_, i64>(6)? as u64,
        date_created: Timestamp(row.get(7)?),
        date_updated: Timestamp(row.get(8)?),
        date_expires: ts(row.get(9)?),
        created_by: row.get(10)?,
    })
}

pub(crate) fn object(
    conn: &Connection,
    service: &Sid,
    kind: ObjectKind,
    r: &ObjectRef,
) -> Result<Option<SyncObject>, StoreError> {
    object_at(conn, service, kind, r).map(|found| found.map(|(object, _)| object))
}

/// Where an object's row is and where its stream ended when it was read, so that a write in
/// the same job can append to it without finding the row by SID twice more (see
/// `log::put_object_with_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowAt {
    pub rowid: i64,
    pub last_seq: i64,
    pub stream_len: i64,
}

/// An object and where its row is.
pub(crate) fn object_at(
    conn: &Connection,
    service: &Sid,
    kind: ObjectKind,
    r: &ObjectRef,
) -> Result<Option<(SyncObject, RowAt)>, StoreError> {
    let (sql, val) = match r {
        ObjectRef::Sid(s) => (
            concat!(
                "SELECT ",
                object_cols!(),
                ", rowid, last_seq, stream_len FROM objects WHERE service_sid = ?1 AND kind = ?2 AND sid = ?3"
            ),
            s.as_str(),
        ),
        ObjectRef::UniqueName(n) => (
            concat!(
                "SELECT ",
                object_cols!(),
                ", rowid, last_seq, stream_len FROM objects WHERE service_sid = ?1 AND kind = ?2 AND unique_name = ?3"
            ),
            n.as_str(),
        ),
    };
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.query_row(params![service.as_str(), kind.code(), val], |row| {
                let at = RowAt {
                    rowid: row.get(OBJECT_COL_COUNT)?,
                    last_seq: row.get(OBJECT_COL_COUNT + 1)?,
                    stream_len: row.get(OBJECT_COL_COUNT + 2)?,
                };
                Ok((object_row(row)?, at))
            })
            .optional()
        })
        .map_err(err)
}

pub(crate) fn object_by_sid(conn: &Connection, sid: &Sid) -> Result<Option<SyncObject>, StoreError> {
    conn.prepare_cached(concat!("SELECT ", object_cols!(), " FROM objects WHERE sid = ?1"))
        .and_then(|mut st| st.query_row([sid.as_str()], object_row).optional())
        .map_err(err)
}

pub(crate) fn objects(
    conn: &Connection,
    service: &Sid,
    kind: ObjectKind,
    page: &PageRequest,
) -> Result<Vec<SyncObject>, StoreError> {
    let (cond, bound) = key_bound(page, "sid");
    let order = sql_order(page.order);
    let sql = format!(
        "SELECT {OBJECT_COLS} FROM objects WHERE service_sid = ? AND kind = ? {cond} ORDER BY sid {order} LIMIT ?"
    );
    let mut args = vec![SqlValue::Text(service.to_string()), SqlValue::Integer(kind.code())];
    args.extend(bound);
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    query_all(conn, &sql, args, object_row)
}

pub(crate) fn put_object(conn: &Connection, o: &SyncObject) -> Result<(), StoreError> {
    let data = o.data.as_ref().map(|d| d.to_string());
    // The common write (new data, same name) leaves the unique name out of its SET list, so the
    // (service, kind, unique_name) index keeps its entry and page: one page fewer per commit.
    // Creations and renames take the upsert below.
    let updated = conn
        .prepare_cached(
            "UPDATE objects SET data = ?2, revision = ?3, next_index = ?4, date_updated = ?5, date_expires = ?6
             WHERE sid = ?1 AND unique_name IS ?7",
        )
        .and_then(|mut st| {
            st.execute(params![
                o.sid.as_str(),
                data,
                o.revision as i64,
                o.next_index as i64,
                o.date_updated.0,
                o.date_expires.map(|t| t.0),
                o.unique_name
            ])
        })
        .map_err(err)?;
    if updated == 1 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index, date_created, date_updated, date_expires, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name, data = excluded.data,
           revision = excluded.revision, next_index = excluded.next_index, date_updated = excluded.date_updated,
           date_expires = excluded.date_expires",
    )
    .and_then(|mut st| {
        st.execute(params![
            o.sid.as_str(),
            o.service_sid.as_str(),
            o.kind.code(),
            o.unique_name,
            data,
            o.revision as i64,
            o.next_index as i64,
            o.date_created.0,
            o.date_updated.0,
            o.date_expires.map(|t| t.0),
            o.created_by
        ])
    })
    .map(drop)
    .map_err(err)
}

macro_rules! item_cols {
    () => {
        "object_sid, item_key, item_index, data, revision, date_created, date_updated, date_expires, created_by"
    };
}

const ITEM_COLS: &str = item_cols!();

fn item_row(row: &Row<'_>) -> rusqlite::Result<Item> {
    let object_sid = sid_col(row, 0)?;
    let is_list = ObjectKind::from_sid(&object_sid) == Some(ObjectKind::List);
    let key: String = row.get(1)?;
    let index: i64 = row.get(2)?;
    Ok(Item {
        object_sid,
        index: is_list.then_some(index as u64),
        key: (!is_list).then_some(key),
        data: json_col(row, 3)?.unwrap_or(serde_json::Value::Null).into(),
        revision: row.get::<_, i64>(4)? as u64,
        date_created: Timestamp(row.get(5)?),
        date_updated: Timestamp(row.get(6)?),
        date_expires: ts(row.get(7)?),
        created_by: row.get(8)?,
    })
}

fn key_parts(key: &ItemKey) -> (&str, i64) {
    match key {
        ItemKey::Index(i) => ("", *i as i64),
        ItemKey::Key(k) => (k.as_str(), 0),
    }
}

pub(crate) fn item(conn: &Connection, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
    let (k, i) = key_parts(key);
    conn.prepare_cached(concat!(
        "SELECT ",
        item_cols!(),
        " FROM items WHERE object_sid = ?1 AND item_key = ?2 AND item_index = ?3"
    ))
    .and_then(|mut st| st.query_row(params![object.as_str(), k, i], item_row).optional())
    .map_err(err)
}

/// The item `key` of the object `r` names, found through the object's key in one statement.
pub(crate) fn named_item(
    conn: &Connection,
    service: &Sid,
    kind: ObjectKind,
    r: &ObjectRef,
    key: &ItemKey,
) -> Result<Option<Item>, StoreError> {
    macro_rules! by {
        ($col:literal) => {
            concat!(
                "SELECT ",
                item_cols!(),
                " FROM items WHERE object_sid = (SELECT sid FROM objects WHERE service_sid = ?1 AND kind = ?2 AND ",
                $col,
                " = ?3) AND item_key = ?4 AND item_index = ?5"
            )
        };
    }
    let (sql, val) = match r {
        ObjectRef::Sid(s) => (by!("sid"), s.as_str()),
        ObjectRef::UniqueName(n) => (by!("unique_name"), n.as_str()),
    };
    let (k, i) = key_parts(key);
    conn.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params![service.as_str(), kind.code(), val, k, i], item_row).optional())
        .map_err(err)
}

pub(crate) fn items(
    conn: &Connection,
    object: &Sid,
    kind: ObjectKind,
    page: &PageRequest,
) -> Result<Vec<Item>, StoreError> {
    let col = if kind == ObjectKind::List { "item_index" } else { "item_key" };
    let (cond, bound) = key_bound(page, col);
    let order = sql_order(page.order);
    let sql = format!(
        "SELECT {ITEM_COLS} FROM items WHERE object_sid = ? {cond} ORDER BY item_key {order}, item_index {order} LIMIT ?"
    );
    let mut args = vec![SqlValue::Text(object.to_string())];
    args.extend(bound);
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    query_all(conn, &sql, args, item_row)
}

pub(crate) fn put_item(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    let key = item.item_key();
    let (k, i) = key_parts(&key);
    conn.prepare_cached(
        "INSERT INTO items (object_sid, item_key, item_index, data, revision, date_created, date_updated, date_expires, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (object_sid, item_key, item_index) DO UPDATE SET data = excluded.data, revision = excluded.revision,
           date_updated = excluded.date_updated, date_expires = excluded.date_expires",
    )
    .and_then(|mut st| {
        st.execute(params![
            item.object_sid.as_str(),
            k,
            i,
            item.data.to_string(),
            item.revision as i64,
            item.date_created.0,
            item.date_updated.0,
            item.date_expires.map(|t| t.0),
            item.created_by
        ])
    })
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_item(conn: &Connection, object: &Sid, key: &ItemKey) -> Result<(), StoreError> {
    let (k, i) = key_parts(key);
    conn.prepare_cached("DELETE FROM items WHERE object_sid = ?1 AND item_key = ?2 AND item_index = ?3")
        .and_then(|mut st| st.execute(params![object.as_str(), k, i]))
        .map(drop)
        .map_err(err)
}

fn permission_row(row: &Row<'_>) -> rusqlite::Result<Permission> {
    Ok(Permission {
        object_sid: sid_col(row, 0)?,
        identity: row.get(1)?,
        read: row.get(2)?,
        write: row.get(3)?,
        manage: row.get(4)?,
    })
}

pub(crate) fn permission(conn: &Connection, object: &Sid, identity: &str) -> Result<Option<Permission>, StoreError> {
    conn.prepare_cached(
        "SELECT object_sid, identity, can_read, can_write, can_manage FROM permissions WHERE object_sid = ?1 AND identity = ?2",
    )
    .and_then(|mut st| st.query_row(params![object.as_str(), identity], permission_row).optional())
    .map_err(err)
}

pub(crate) fn permissions(conn: &Connection, object: &Sid) -> Result<Vec<Permission>, StoreError> {
    query_all(
        conn,
        "SELECT object_sid, identity, can_read, can_write, can_manage FROM permissions WHERE object_sid = ? ORDER BY identity",
        vec![SqlValue::Text(object.to_string())],
        permission_row,
    )
}

pub(crate) fn put_permission(conn: &Connection, p: &Permission) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO permissions (object_sid, identity, can_read, can_write, can_manage) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (object_sid, identity) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write,
           can_manage = excluded.can_manage",
    )
    .and_then(|mut st| st.execute(params![p.object_sid.as_str(), p.identity, p.read, p.write, p.manage]))
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_permission(conn: &Connection, object: &Sid, identity: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM permissions WHERE object_sid = ?1 AND identity = ?2")
        .and_then(|mut st| st.execute(params![object.as_str(), identity]))
        .map(|n| n > 0)
        .map_err(err)
}

/// Removes an object's row, keeping where its stream ends so the stream stays readable.
pub(crate) fn delete_object(conn: &Connection, sid: &Sid) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO object_tombstones (object_sid, service_sid, last_seq)
         SELECT sid, service_sid, last_seq FROM objects WHERE sid = ?1
         ON CONFLICT (object_sid) DO UPDATE SET last_seq = excluded.last_seq",
    )
    .and_then(|mut st| st.execute([sid.as_str()]))
    .map_err(err)?;
    delete_by_sid(conn, "objects", sid).map(drop)
}

/// When the next object or item expires; `None` when nothing carries an expiry. Unlike the
/// sweep's own queries this binds no time, so its plan (the first entry of each expiry index)
/// is made once, not again for every time bound.
pub(crate) fn next_expiry(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached(
        "SELECT MIN(t) FROM (SELECT MIN(date_expires) AS t FROM objects WHERE date_expires IS NOT NULL
                             UNION ALL SELECT MIN(date_expires) FROM items WHERE date_expires IS NOT NULL)",
    )
    .and_then(|mut st| st.query_row([], |r| r.get::<_, Option<i64>>(0)))
    .map(|t| t.map(Timestamp))
    .map_err(err)
}

pub(crate) fn expired_objects(conn: &Connection, now: Timestamp, limit: u32) -> Result<Vec<SyncObject>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE date_expires IS NOT NULL AND date_expires <= ? ORDER BY date_expires LIMIT ?"
        ),
        vec![SqlValue::Integer(now.0), SqlValue::Integer(limit as i64)],
        object_row,
    )
}

pub(crate) fn expired_items(conn: &Connection, now: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {ITEM_COLS} FROM items WHERE date_expires IS NOT NULL AND date_expires <= ? ORDER BY date_expires LIMIT ?"
        ),
        vec![SqlValue::Integer(now.0), SqlValue::Integer(limit as i64)],
        item_row,
    )
}

fn api_key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        sid: sid_col(row, 0)?,
        friendly_name: row.get(1)?,
        sealed_secret: row.get(2)?,
        date_created: Timestamp(row.get(3)?),
    })
}

pub(crate) fn api_key(conn: &Connection, sid: &Sid) -> Result<Option<ApiKeyRecord>, StoreError> {
    conn.prepare_cached("SELECT sid, friendly_name, sealed_secret, date_created FROM api_keys WHERE sid = ?1")
        .and_then(|mut st| st.query_row([sid.as_str()], api_key_row).optional())
        .map_err(err)
}

pub(crate) fn api_keys(conn: &Connection) -> Result<Vec<ApiKeyRecord>, StoreError> {
    query_all(
        conn,
        "SELECT sid, friendly_name, sealed_secret, date_created FROM api_keys ORDER BY date_created, sid",
        vec![],
        api_key_row,
    )
}

pub(crate) fn put_api_key(conn: &Connection, k: &ApiKeyRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_keys (sid, friendly_name, sealed_secret, date_created) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sid) DO UPDATE SET friendly_name = excluded.friendly_name, sealed_secret = excluded.sealed_secret",
    )
    .and_then(|mut st| st.execute(params![k.sid.as_str(), k.friendly_name, k.sealed_secret, k.date_created.0]))
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_by_sid(conn: &Connection, table: &str, sid: &Sid) -> Result<bool, StoreError> {
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE sid = ?1"))
        .and_then(|mut st| st.execute([sid.as_str()]))
        .map(|n| n > 0)
        .map_err(err)
}

fn sql_order(order: Order) -> &'static str {
    match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    }
}

/// The WHERE fragment for a page's starting point: strictly after a page token's cursor, or
/// from (inclusive) the requested key.
fn key_bound(page: &PageRequest, col: &str) -> (String, Option<SqlValue>) {
    let (cursor, strict) = match (&page.after, &page.from) {
        (Some(c), _) => (c, true),
        (None, Some(c)) => (c, false),
        (None, None) => return (String::new(), None),
    };
    let op = match (page.order, strict) {
        (Order::Asc, true) => ">",
        (Order::Asc, false) => ">=",
        (Order::Desc, true) => "<",
        (Order::Desc, false) => "<=",
    };
    let value = match cursor {
        Cursor::Index(i) => SqlValue::Integer(*i as i64),
        Cursor::Key(k) => SqlValue::Text(k.clone()),
    };
    (format!("AND {col} {op} ?"), Some(value))
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    args: Vec<SqlValue>,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(err)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), map).map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}

// ----- change-log consumers --------------------------------------------------------------------

pub(crate) fn set_log_cursor(
    conn: &Connection,
    consumer: &str,
    service: &Sid,
    start: Option<u64>,
) -> Result<(), StoreError> {
    match start {
        Some(seq) => conn
            .prepare_cached(
                "INSERT INTO log_cursors (service_sid, consumer, delivered_seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (service_sid, consumer) DO UPDATE SET delivered_seq = excluded.delivered_seq",
            )
            .and_then(|mut st| st.execute(params![service.as_str(), consumer, seq as i64])),
        None => conn
            .prepare_cached("DELETE FROM log_cursors WHERE service_sid = ?1 AND consumer = ?2")
            .and_then(|mut st| st.execute(params![service.as_str(), consumer])),
    }
    .map(drop)
    .map_err(err)
}

pub(crate) fn log_cursors(conn: &Connection, consumer: &str) -> Result<Vec<LogCursor>, StoreError> {
    query_all(
        conn,
        "SELECT service_sid, delivered_seq, lease_owner, lease_expires FROM log_cursors
         WHERE consumer = ?1 ORDER BY service_sid",
        vec![SqlValue::Text(consumer.to_owned())],
        |row| {
            Ok(LogCursor {
                service: sid_col(row, 0)?,
                delivered_seq: row.get::<_, i64>(1)? as u64,
                lease_owner: row.get(2)?,
                lease_expires: Timestamp(row.get(3)?),
            })
        },
    )
}

pub(crate) fn take_log_lease(
    conn: &Connection,
    consumer: &str,
    service: &Sid,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(
        "UPDATE log_cursors SET lease_owner = ?3, lease_expires = ?5
         WHERE service_sid = ?1 AND consumer = ?2 AND (lease_owner IS NULL OR lease_owner = ?3 OR lease_expires < ?4)
         RETURNING delivered_seq",
    )
    .and_then(|mut st| {
        st.query_row(params![service.as_str(), consumer, owner, now.0, until.0], |r| r.get::<_, i64>(0)).optional()
    })
    .map(|seq| seq.map(|s| s as u64))
    .map_err(err)
}

pub(crate) fn advance_log_cursor(
    conn: &Connection,
    consumer: &str,
    service: &Sid,
    owner: &str,
    seq: u64,
    until: Timestamp,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "UPDATE log_cursors SET delivered_seq = MAX(delivered_seq, ?4), lease_expires = ?5
         WHERE service_sid = ?1 AND consumer = ?2 AND lease_owner = ?3",
    )
    .and_then(|mut st| st.execute(params![service.as_str(), consumer, owner, seq as i64, until.0]))
    .map(|n| n == 1)
    .map_err(err)
}

pub(crate) fn release_log_lease(
    conn: &Connection,
    consumer: &str,
    service: &Sid,
    owner: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE log_cursors SET lease_owner = NULL, lease_expires = 0
         WHERE service_sid = ?1 AND consumer = ?2 AND lease_owner = ?3",
    )
    .and_then(|mut st| st.execute(params![service.as_str(), consumer, owner]))
    .map(drop)
    .map_err(err)
}
