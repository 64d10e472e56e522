//! Map and List items: read one at a time, several of one object at once, or read ahead for
//! the writer's batch; written and removed, or held back while the batch runs.

use super::{Param, PgConn, get, json_col, key_bound, sid_col, sql_order, ts_col, u64_col};
use crate::postgres::pending::key_parts;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef};
use ferrosync_core::page::PageRequest;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoreError;
use ferrosync_core::timestamp::Timestamp;
use postgres::Row;

pub(super) const ITEM_COLS: &str =
    "object_sid, item_key, item_index, data, revision, date_created, date_updated, date_expires, created_by";

pub(super) fn item_row(row: &Row) -> Result<Item, StoreError> {
    let object_sid = sid_col(row, 0)?;
    let is_list = ObjectKind::from_sid(&object_sid) == Some(ObjectKind::List);
    let key: String = get(row, 1, "item_key")?;
    let index: i64 = get(row, 2, "item_index")?;
    Ok(Item {
        object_sid,
        index: is_list.then_some(index as u64),
        key: (!is_list).then_some(key),
        data: json_col(row, 3)?.unwrap_or(serde_json::Value::Null).into(),
        revision: u64_col(row, 4, "revision")?,
        date_created: ts_col(row, 5, "date_created")?,
        date_updated: ts_col(row, 6, "date_updated")?,
        date_expires: get::<Option<i64>>(row, 7, "date_expires")?.map(Timestamp),
        created_by: get(row, 8, "created_by")?,
    })
}

/// What the batch already knows of `object`'s item `key`: its held version, else what was read
/// ahead; `None` when it must be read.
fn known(conn: &PgConn, object: &Sid, key: &ItemKey) -> Option<Option<Item>> {
    conn.held.item(object, key).or_else(|| conn.ahead.item(object, key)).map(|found| found.cloned())
}

pub(crate) fn item(conn: &mut PgConn, object: &Sid, key: &ItemKey) -> Result<Option<Item>, StoreError> {
    if let Some(found) = known(conn, object, key) {
        return Ok(found);
    }
    let mut wanted = conn.ahead.take_items(object, key);
    if wanted.is_empty() {
        wanted.push((object.clone(), key.clone()));
    }
    let mut found = read_items(conn, &wanted)?;
    let at = wanted.iter().position(|(o, k)| o == object && k == key);
    Ok(at.and_then(|at| found.get_mut(at)).and_then(Option::take))
}

/// The item `key` of the object `r` names, found through the object's key in one statement
/// (one round trip instead of two).
pub(crate) fn named_item(
    conn: &mut PgConn,
    service: &Sid,
    kind: ObjectKind,
    r: &ObjectRef,
    key: &ItemKey,
) -> Result<Option<Item>, StoreError> {
    let (col, val) = super::ref_parts(r);
    let (k, i) = key_parts(key);
    conn.query_opt(
        &format!(
            "SELECT {ITEM_COLS} FROM items WHERE object_sid = \
             (SELECT sid FROM objects WHERE service_sid = $1 AND kind = $2 AND {col} = $3) \
             AND item_key = $4 AND item_index = $5"
        ),
        &[&service.as_str(), &kind.code(), &val, &k, &i],
    )?
    .map(|row| item_row(&row))
    .transpose()
}

/// Several items of `object`, in the order of `keys`: those not held nor read ahead are read in
/// one statement.
pub(crate) fn items_at(conn: &mut PgConn, object: &Sid, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
    let mut answers: Vec<Option<Option<Item>>> = keys.iter().map(|k| known(conn, object, k)).collect();
    let mut seen = std::collections::HashSet::new();
    let unknown: Vec<ItemKey> =
        keys.iter().zip(&answers).filter(|(k, a)| a.is_none() && seen.insert(*k)).map(|(k, _)| k.clone()).collect();
    if !unknown.is_empty() {
        let pairs: Vec<(Sid, ItemKey)> = unknown.iter().map(|k| (object.clone(), k.clone())).collect();
        let read: std::collections::HashMap<&ItemKey, Option<Item>> =
            unknown.iter().zip(read_items(conn, &pairs)?).collect();
        for (k, answer) in keys.iter().zip(&mut answers) {
            if answer.is_none() {
                *answer = read.get(k).cloned();
            }
        }
    }
    Ok(answers.into_iter().map(Option::flatten).collect())
}

/// Reads the items `wanted` (each an object and a key) in one statement, in their order; the
/// writer's batch notes what it read, to answer its later reads. Only a held write of one of
/// these very items could change the answer, and callers answer those from what is held: it
/// need not go first.
fn read_items(conn: &mut PgConn, wanted: &[(Sid, ItemKey)]) -> Result<Vec<Option<Item>>, StoreError> {
    let rows = if let [(object, key)] = wanted {
        let (k, i) = key_parts(key);
        conn.query_past_held(
            &format!("SELECT {ITEM_COLS} FROM items WHERE object_sid = $1 AND item_key = $2 AND item_index = $3"),
            &[&object.as_str(), &k, &i],
        )?
    } else {
        let objects: Vec<&str> = wanted.iter().map(|(o, _)| o.as_str()).collect();
        let (k, i): (Vec<&str>, Vec<i64>) = wanted.iter().map(|(_, key)| key_parts(key)).unzip();
        conn.query_past_held(
            &format!(
                "SELECT {ITEM_COLS} FROM items
                 WHERE (object_sid, item_key, item_index) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]))"
            ),
            &[&objects, &k, &i],
        )?
    };
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let item = item_row(row)?;
        found.insert((item.object_sid.clone(), item.item_key()), item);
    }
    let answers: Vec<Option<Item>> = wanted.iter().map(|(o, k)| found.remove(&(o.clone(), k.clone()))).collect();
    if conn.holding() {
        for ((object, key), item) in wanted.iter().zip(&answers) {
            // A held item answers while it is held, and once sent, what was read before it is
            // stale: it is not noted.
            if conn.held.item(object, key).is_none() {
                conn.ahead.note_item(object, key, item.clone());
            }
        }
    }
    Ok(answers)
}

pub(crate) fn items(
    conn: &mut PgConn,
    object: &Sid,
    kind: ObjectKind,
    page: &PageRequest,
) -> Result<Vec<Item>, StoreError> {
    let col = if kind == ObjectKind::List { "item_index" } else { "item_key" };
    let mut args: Vec<Param> = vec![Box::new(object.to_string())];
    let cond = key_bound(page, col, &mut args);
    let order = sql_order(page.order);
    args.push(Box::new(page.limit as i64 + 1));
    let sql = format!(
        "SELECT {ITEM_COLS} FROM items WHERE object_sid = $1 {cond} ORDER BY item_key {order}, item_index {order} LIMIT ${}",
        args.len()
    );
    conn.query_boxed(&sql, &args)?.iter().map(item_row).collect()
}

pub(crate) fn put_item(conn: &mut PgConn, item: &Item) -> Result<(), StoreError> {
    if conn.holding() {
        conn.ahead.forget_item(&item.object_sid, &item.item_key());
        conn.held.put_item(item);
        return Ok(());
    }
    let key = item.item_key();
    let (k, i) = key_parts(&key);
    conn.execute(
        "INSERT INTO items (object_sid, item_key, item_index, data, revision, date_created, date_updated, date_expires, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (object_sid, item_key, item_index) DO UPDATE SET data = excluded.data, revision = excluded.revision,
           date_updated = excluded.date_updated, date_expires = excluded.date_expires",
        &[
            &item.object_sid.as_str(),
            &k,
            &i,
            &item.data.to_string(),
            &(item.revision as i64),
            &item.date_created.0,
            &item.date_updated.0,
            &item.date_expires.map(|t| t.0),
            &item.created_by,
        ],
    )
    .map(drop)
}

pub(crate) fn delete_item(conn: &mut PgConn, object: &Sid, key: &ItemKey) -> Result<(), StoreError> {
    if conn.holding() {
        conn.ahead.forget_item(object, key);
        conn.held.delete_item(object, key);
        return Ok(());
    }
    let (k, i) = key_parts(key);
    conn.execute(
        "DELETE FROM items WHERE object_sid = $1 AND item_key = $2 AND item_index = $3",
        &[&object.as_str(), &k, &i],
    )
    .map(drop)
}
