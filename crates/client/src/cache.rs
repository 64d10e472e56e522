//! The offline cache: a SQLite file holding the objects and items this client has seen, and
//! the writes it made while the server was out of reach ("dirty" rows, each with the revision
//! it was based on, so that replaying it is a conditional write that can detect a conflict).
//!
//! Calls are short and local (one small statement each), so they run inline under a mutex
//! rather than on a blocking pool.

use crate::dataset::Record;
use crate::error::Result;
use crate::events::{Item, ItemKey};
use ferrosync_protocol::{ObjectKind, Order};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS objects (
    service TEXT NOT NULL,
    sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    unique_name TEXT,
    data TEXT,
    revision INTEGER NOT NULL,
    date_expires TEXT,
    dirty INTEGER NOT NULL DEFAULT 0,
    base_revision INTEGER,
    -- A dataset's changes are sent by its synchronize(), not on reconnect.
    dataset INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service, sid)
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_name ON objects (service, kind, unique_name);
CREATE TABLE IF NOT EXISTS items (
    service TEXT NOT NULL,
    sid TEXT NOT NULL,
    key TEXT NOT NULL,
    idx INTEGER,
    data TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    date_expires TEXT,
    -- 0: as on the server; 1: written here, not yet sent; 2: removed here, not yet sent.
    state INTEGER NOT NULL DEFAULT 0,
    -- The revision a dirty row was based on; NULL when the item did not exist on the server.
    base_revision INTEGER,
    PRIMARY KEY (service, sid, key)
);
CREATE TABLE IF NOT EXISTS sync_points (
    service TEXT NOT NULL,
    sid TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (service, sid)
);
";

const CLEAN: i64 = 0;
const WRITTEN: i64 = 1;
const REMOVED: i64 = 2;

/// An object as cached.
#[derive(Debug, Clone)]
pub(crate) struct CachedObject {
    pub sid: String,
    pub unique_name: Option<String>,
    pub data: Value,
    pub revision: u64,
    pub date_expires: Option<String>,
}

/// A change made here and not yet accepted by the server.
#[derive(Debug, Clone)]
pub(crate) struct DirtyRow {
    pub sid: String,
    pub kind: ObjectKind,
    /// `None` for a document.
    pub key: Option<ItemKey>,
    /// `None` for a removal.
    pub data: Option<Value>,
    pub base: Option<u64>,
}

/// A cached item, or a local removal of it.
#[derive(Debug, Clone)]
pub(crate) enum CachedItem {
    Present { item: Item, dirty: bool, base: Option<u64> },
    Removed { base: Option<u64> },
}

pub(crate) struct Cache {
    conn: Mutex<Connection>,
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Document => "document",
        ObjectKind::List => "list",
        ObjectKind::Map => "map",
        ObjectKind::Stream => "stream",
    }
}

fn kind_of(name: &str) -> ObjectKind {
    match name {
        "document" => ObjectKind::Document,
        "list" => ObjectKind::List,
        "stream" => ObjectKind::Stream,
        _ => ObjectKind::Map,
    }
}

fn to_text(v: &Value) -> String {
    v.to_string()
}

fn from_text(s: Option<String>) -> Value {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

fn key_of(kind: ObjectKind, key: &str, idx: Option<i64>) -> ItemKey {
    match (kind, idx) {
        (ObjectKind::List, Some(i)) => ItemKey::Index(i as u64),
        _ => ItemKey::Key(key.to_owned()),
    }
}

fn index_of(key: &ItemKey) -> Option<i64> {
    match key {
        ItemKey::Index(i) => Some(*i as i64),
        ItemKey::Key(_) => None,
    }
}

/// An item changed (`Some`) or removed (`None`) here, to be sent based on `base`.
fn upsert_change(
    c: &Connection,
    service: &str,
    sid: &str,
    key: &ItemKey,
    data: Option<&Value>,
    base: Option<u64>,
) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT INTO items (service, sid, key, idx, data, revision, state, base_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, 0), ?7, ?6)
         ON CONFLICT (service, sid, key) DO UPDATE SET
            data = excluded.data, state = excluded.state, base_revision = excluded.base_revision",
        params![
            service,
            sid,
            key.to_string(),
            index_of(key),
            data.map(to_text),
            base.map(|b| b as i64),
            if data.is_some() { WRITTEN } else { REMOVED }
        ],
    )
}

impl Cache {
    pub fn open(path: &Path) -> Result<Cache> {
        let conn = Connection::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Cache { conn: Mutex::new(conn) })
    }

    pub fn in_memory() -> Result<Cache> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Cache { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&conn)?)
    }

    /// Records an object as the server showed it; a dirty document keeps its local data.
    #[allow(clippy::too_many_arguments)]
    pub fn put_object(
        &self,
        service: &str,
        kind: ObjectKind,
        sid: &str,
        unique_name: Option<&str>,
        data: Option<&Value>,
        revision: u64,
        date_expires: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            // A unique name can move to another object once the old one is removed.
            if let Some(name) = unique_name {
                c.execute(
                    "DELETE FROM objects WHERE service = ?1 AND kind = ?2 AND unique_name = ?3 AND sid <> ?4",
                    params![service, kind_name(kind), name, sid],
                )?;
            }
            c.execute(
                "INSERT INTO objects (service, sid, kind, unique_name, data, revision, date_expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (service, sid) DO UPDATE SET
                    unique_name = excluded.unique_name,
                    date_expires = excluded.date_expires,
                    data = CASE WHEN dirty = 0 THEN excluded.data ELSE data END,
                    revision = CASE WHEN dirty = 0 THEN excluded.revision ELSE revision END",
                params![service, sid, kind_name(kind), unique_name, data.map(to_text), revision as i64, date_expires],
            )?;
            Ok(())
        })
    }

    /// An object by SID or unique name.
    pub fn object(&self, service: &str, kind: ObjectKind, id: &str) -> Result<Option<CachedObject>> {
        self.with(|c| {
            c.query_row(
                "SELECT sid, unique_name, data, revision, date_expires FROM objects
                 WHERE service = ?1 AND kind = ?2 AND (sid = ?3 OR unique_name = ?3)
                 ORDER BY sid = ?3 DESC LIMIT 1",
                params![service, kind_name(kind), id],
                |r| {
                    Ok(CachedObject {
                        sid: r.get(0)?,
                        unique_name: r.get(1)?,
                        data: from_text(r.get(2)?),
                        revision: r.get::<_, i64>(3)? as u64,
                        date_expires: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Forgets an object and its items (it was removed on the server).
    pub fn forget_object(&self, service: &str, sid: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM objects WHERE service = ?1 AND sid = ?2", params![service, sid])?;
            c.execute("DELETE FROM items WHERE service = ?1 AND sid = ?2", params![service, sid])?;
            c.execute("DELETE FROM sync_points WHERE service = ?1 AND sid = ?2", params![service, sid])?;
            Ok(())
        })
    }

    /// A document's data written here: kept, and marked to be sent based on `base` (or on the
    /// revision the cache knows).
    pub fn write_document(&self, service: &str, sid: &str, data: &Value, base: Option<u64>) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE objects SET data = ?3,
                    base_revision = CASE WHEN dirty = 1 THEN base_revision ELSE COALESCE(?4, revision) END,
                    dirty = 1
                 WHERE service = ?1 AND sid = ?2",
                params![service, sid, to_text(data), base.map(|b| b as i64)],
            )?;
            Ok(n == 1)
        })
    }

    /// A document's data as the server showed it at `revision` (ignored when older than what
    /// the cache holds, or when a local change is pending).
    pub fn update_document(&self, service: &str, sid: &str, data: &Value, revision: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE objects SET data = ?3, revision = ?4
                 WHERE service = ?1 AND sid = ?2 AND dirty = 0 AND revision <= ?4",
                params![service, sid, to_text(data), revision as i64],
            )?;
            Ok(())
        })
    }

    /// Records an item as the server showed it, unless it has a change of our own pending.
    pub fn put_item(&self, service: &str, sid: &str, item: &Item) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO items (service, sid, key, idx, data, revision, date_expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (service, sid, key) DO UPDATE SET
                    data = excluded.data, revision = excluded.revision, date_expires = excluded.date_expires
                 WHERE state = 0",
                params![
                    service,
                    sid,
                    item.key.to_string(),
                    index_of(&item.key),
                    to_text(&item.data),
                    item.revision as i64,
                    item.date_expires
                ],
            )?;
            Ok(())
        })
    }

    /// Forgets an item the server removed, unless it has a change of our own pending.
    pub fn drop_item(&self, service: &str, sid: &str, key: &ItemKey) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3 AND state = 0",
                params![service, sid, key.to_string()],
            )?;
            Ok(())
        })
    }

    pub fn item(&self, service: &str, kind: ObjectKind, sid: &str, key: &ItemKey) -> Result<Option<CachedItem>> {
        self.with(|c| {
            c.query_row(
                "SELECT key, idx, data, revision, date_expires, state, base_revision FROM items
                 WHERE service = ?1 AND sid = ?2 AND key = ?3",
                params![service, sid, key.to_string()],
                |r| {
                    let state: i64 = r.get(5)?;
                    let base = r.get::<_, Option<i64>>(6)?.map(|b| b as u64);
                    if state == REMOVED {
                        return Ok(CachedItem::Removed { base });
                    }
                    let item = Item {
                        key: key_of(kind, &r.get::<_, String>(0)?, r.get(1)?),
                        data: from_text(r.get(2)?),
                        revision: r.get::<_, i64>(3)? as u64,
                        date_expires: r.get(4)?,
                    };
                    Ok(CachedItem::Present { item, dirty: state == WRITTEN, base })
                },
            )
            .optional()
        })
    }

    /// The cached items in order (local removals left out), starting at `from`.
    pub fn items(
        &self,
        service: &str,
        kind: ObjectKind,
        sid: &str,
        order: Order,
        from: Option<&ItemKey>,
    ) -> Result<Vec<Item>> {
        let items = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT key, idx, data, revision, date_expires FROM items
                 WHERE service = ?1 AND sid = ?2 AND state <> 2",
            )?;
            let rows = stmt.query_map(params![service, sid], |r| {
                Ok(Item {
                    key: key_of(kind, &r.get::<_, String>(0)?, r.get(1)?),
                    data: from_text(r.get(2)?),
                    revision: r.get::<_, i64>(3)? as u64,
                    date_expires: r.get(4)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut items: Vec<Item> = items
            .into_iter()
            .filter(|i| match (from, order) {
                (None, _) => true,
                (Some(f), Order::Asc) => &i.key >= f,
                (Some(f), Order::Desc) => &i.key <= f,
            })
            .collect();
        items.sort_by(|a, b| a.key.cmp(&b.key));
        if order == Order::Desc {
            items.reverse();
        }
        Ok(items)
    }

    /// An item written (`Some`) or removed (`None`) here, to be sent later. The base is the
    /// revision the server last showed, kept from the first of several local changes.
    pub fn write_item(&self, service: &str, sid: &str, key: &ItemKey, data: Option<&Value>) -> Result<()> {
        self.with(|c| {
            let existing: Option<(i64, i64, Option<i64>)> = c
                .query_row(
                    "SELECT state, revision, base_revision FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3",
                    params![service, sid, key.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let base = match existing {
                Some((CLEAN, revision, _)) => Some(revision),
                Some((_, _, base)) => base,
                None => None,
            };
            if data.is_none() && base.is_none() {
                // Created and removed here: the server never needs to hear of it.
                c.execute(
                    "DELETE FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3",
                    params![service, sid, key.to_string()],
                )?;
                return Ok(());
            }
            upsert_change(c, service, sid, key, data, base.map(|b| b as u64))?;
            Ok(())
        })
    }

    /// Every change waiting to be sent, oldest object first (documents, then items).
    pub fn dirty(&self, service: &str, only: Option<&str>) -> Result<Vec<DirtyRow>> {
        self.with(|c| {
            let mut out = Vec::new();
            let mut docs = c.prepare(
                "SELECT sid, data, base_revision FROM objects
                 WHERE service = ?1 AND dirty = 1 AND (?2 IS NULL OR sid = ?2) AND (?2 IS NOT NULL OR dataset = 0)
                 ORDER BY rowid",
            )?;
            for row in docs.query_map(params![service, only], |r| {
                Ok(DirtyRow {
                    sid: r.get(0)?,
                    kind: ObjectKind::Document,
                    key: None,
                    data: Some(from_text(r.get(1)?)),
                    base: r.get::<_, Option<i64>>(2)?.map(|b| b as u64),
                })
            })? {
                out.push(row?);
            }
            let mut items = c.prepare(
                "SELECT i.sid, o.kind, i.key, i.idx, i.data, i.state, i.base_revision
                 FROM items i JOIN objects o ON o.service = i.service AND o.sid = i.sid
                 WHERE i.service = ?1 AND i.state <> 0 AND (?2 IS NULL OR i.sid = ?2)
                   AND (?2 IS NOT NULL OR o.dataset = 0)
                 ORDER BY i.rowid",
            )?;
            for row in items.query_map(params![service, only], |r| {
                let kind = kind_of(&r.get::<_, String>(1)?);
                let state: i64 = r.get(5)?;
                Ok(DirtyRow {
                    sid: r.get(0)?,
                    kind,
                    key: Some(key_of(kind, &r.get::<_, String>(2)?, r.get(3)?)),
                    data: (state == WRITTEN).then(|| from_text(r.get(4).ok().flatten())),
                    base: r.get::<_, Option<i64>>(6)?.map(|b| b as u64),
                })
            })? {
                out.push(row?);
            }
            Ok(out)
        })
    }

    /// Marks a map as a dataset's.
    pub fn mark_dataset(&self, service: &str, sid: &str) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE objects SET dataset = 1 WHERE service = ?1 AND sid = ?2", params![service, sid])?;
            Ok(())
        })
    }

    /// How many changes wait to be sent on reconnect (datasets' are left out).
    pub fn dirty_count(&self, service: &str) -> Result<usize> {
        self.with(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM objects WHERE service = ?1 AND dirty = 1 AND dataset = 0)
                      + (SELECT COUNT(*) FROM items i JOIN objects o ON o.service = i.service AND o.sid = i.sid
                         WHERE i.service = ?1 AND i.state <> 0 AND o.dataset = 0)",
                params![service],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }

    /// The server accepted (or settled) `row`: `now` is what it holds, at `revision`. If the
    /// row was changed here again meanwhile, it stays dirty, now based on that revision.
    pub fn settle(&self, service: &str, row: &DirtyRow, now: Option<&Value>, revision: Option<u64>) -> Result<()> {
        let sent = row.data.as_ref().map(to_text);
        self.with(|c| {
            match &row.key {
                None => {
                    let changed = c.execute(
                        "UPDATE objects SET dirty = 0, base_revision = NULL, data = ?3, revision = ?4
                         WHERE service = ?1 AND sid = ?2 AND dirty = 1 AND data IS ?5",
                        params![service, row.sid, now.map(to_text), revision.unwrap_or(0) as i64, sent],
                    )?;
                    if changed == 0 {
                        c.execute(
                            "UPDATE objects SET base_revision = ?3 WHERE service = ?1 AND sid = ?2 AND dirty = 1",
                            params![service, row.sid, revision.map(|r| r as i64)],
                        )?;
                    }
                }
                Some(key) => {
                    let key = key.to_string();
                    let unchanged: bool = c
                        .query_row(
                            "SELECT data IS ?4 AND state = ?5 FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3",
                            params![service, row.sid, key, sent, if row.data.is_some() { WRITTEN } else { REMOVED }],
                            |r| r.get(0),
                        )
                        .optional()?
                        .unwrap_or(false);
                    if !unchanged {
                        c.execute(
                            "UPDATE items SET base_revision = ?4 WHERE service = ?1 AND sid = ?2 AND key = ?3",
                            params![service, row.sid, key, revision.map(|r| r as i64)],
                        )?;
                    } else if let Some(data) = now {
                        c.execute(
                            "UPDATE items SET data = ?4, revision = ?5, state = 0, base_revision = NULL
                             WHERE service = ?1 AND sid = ?2 AND key = ?3",
                            params![service, row.sid, key, to_text(data), revision.unwrap_or(0) as i64],
                        )?;
                    } else {
                        c.execute(
                            "DELETE FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3",
                            params![service, row.sid, key],
                        )?;
                    }
                }
            }
            Ok(())
        })
    }

    /// A conflict resolved in favour of a new local value (`Some`) or removal (`None`), to be
    /// sent based on the server's `base`.
    pub fn rebase(&self, service: &str, row: &DirtyRow, data: Option<&Value>, base: Option<u64>) -> Result<()> {
        self.with(|c| {
            match &row.key {
                None => c.execute(
                    "UPDATE objects SET data = ?3, base_revision = ?4, dirty = 1 WHERE service = ?1 AND sid = ?2",
                    params![service, row.sid, data.map(to_text), base.map(|b| b as i64)],
                )?,
                Some(key) => upsert_change(c, service, &row.sid, key, data, base)?,
            };
            Ok(())
        })
    }

    /// Forgets an item, local change and all.
    pub fn drop_any(&self, service: &str, sid: &str, key: &ItemKey) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM items WHERE service = ?1 AND sid = ?2 AND key = ?3",
                params![service, sid, key.to_string()],
            )?;
            Ok(())
        })
    }

    /// A map's items as dataset records, local removals included, in key order.
    pub fn records(&self, service: &str, sid: &str) -> Result<Vec<Record>> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT key, data, revision, state FROM items WHERE service = ?1 AND sid = ?2 ORDER BY key")?;
            let rows = stmt.query_map(params![service, sid], |r| {
                let state: i64 = r.get(3)?;
                Ok(Record {
                    key: r.get(0)?,
                    value: (state != REMOVED).then(|| from_text(r.get(1).ok().flatten())),
                    sync_count: r.get::<_, i64>(2)? as u64,
                    modified: state != CLEAN,
                })
            })?;
            rows.collect()
        })
    }

    pub fn sync_point(&self, service: &str, sid: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT token FROM sync_points WHERE service = ?1 AND sid = ?2", params![service, sid], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    pub fn set_sync_point(&self, service: &str, sid: &str, token: Option<&str>) -> Result<()> {
        self.with(|c| {
            match token {
                Some(t) => c.execute(
                    "INSERT INTO sync_points (service, sid, token) VALUES (?1, ?2, ?3)
                     ON CONFLICT (service, sid) DO UPDATE SET token = excluded.token",
                    params![service, sid, t],
                )?,
                None => c.execute("DELETE FROM sync_points WHERE service = ?1 AND sid = ?2", params![service, sid])?,
            };
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: &str, data: Value, revision: u64) -> Item {
        Item { key: ItemKey::Key(key.into()), data, revision, date_expires: None }
    }

    #[test]
    fn a_local_item_change_keeps_the_first_base_and_survives_server_updates() {
        let c = Cache::in_memory().unwrap();
        c.put_object("S", ObjectKind::Map, "MP1", Some("m"), None, 0, None).unwrap();
        c.put_item("S", "MP1", &item("a", json!({"v": 1}), 4)).unwrap();
        c.write_item("S", "MP1", &"a".into(), Some(&json!({"v": 2}))).unwrap();
        c.write_item("S", "MP1", &"a".into(), Some(&json!({"v": 3}))).unwrap();
        // The server's newer value does not overwrite the pending local change.
        c.put_item("S", "MP1", &item("a", json!({"v": 9}), 5)).unwrap();
        let dirty = c.dirty("S", None).unwrap();
        assert_eq!(dirty.len(), 1);
        assert_eq!(dirty[0].data, Some(json!({"v": 3})));
        assert_eq!(dirty[0].base, Some(4));
        // Once settled, it is clean at the server's revision.
        c.settle("S", &dirty[0], Some(&json!({"v": 3})), Some(6)).unwrap();
        assert_eq!(c.dirty_count("S").unwrap(), 0);
        match c.item("S", ObjectKind::Map, "MP1", &"a".into()).unwrap() {
            Some(CachedItem::Present { item, dirty: false, .. }) => assert_eq!(item.revision, 6),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_item_created_and_removed_offline_leaves_nothing_to_send() {
        let c = Cache::in_memory().unwrap();
        c.put_object("S", ObjectKind::Map, "MP1", None, None, 0, None).unwrap();
        c.write_item("S", "MP1", &"n".into(), Some(&json!(1))).unwrap();
        c.write_item("S", "MP1", &"n".into(), None).unwrap();
        assert_eq!(c.dirty_count("S").unwrap(), 0);
        assert!(c.item("S", ObjectKind::Map, "MP1", &"n".into()).unwrap().is_none());
    }

    #[test]
    fn a_change_made_while_sending_stays_dirty_on_the_new_base() {
        let c = Cache::in_memory().unwrap();
        c.put_object("S", ObjectKind::Document, "ET1", Some("d"), Some(&json!({"n": 1})), 2, None).unwrap();
        assert!(c.write_document("S", "ET1", &json!({"n": 2}), None).unwrap());
        let sent = c.dirty("S", None).unwrap().remove(0);
        assert_eq!(sent.base, Some(2));
        assert!(c.write_document("S", "ET1", &json!({"n": 3}), None).unwrap());
        c.settle("S", &sent, Some(&json!({"n": 2})), Some(3)).unwrap();
        let again = c.dirty("S", None).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].data.clone(), again[0].base), (Some(json!({"n": 3})), Some(3)));
        assert_eq!(c.object("S", ObjectKind::Document, "d").unwrap().unwrap().data, json!({"n": 3}));
    }

    #[test]
    fn listings_follow_order_and_start() {
        let c = Cache::in_memory().unwrap();
        c.put_object("S", ObjectKind::List, "ES1", None, None, 0, None).unwrap();
        for i in [3u64, 1, 2] {
            let it = Item { key: ItemKey::Index(i), data: json!(i), revision: 0, date_expires: None };
            c.put_item("S", "ES1", &it).unwrap();
        }
        let keys = |o, f: Option<ItemKey>| {
            c.items("S", ObjectKind::List, "ES1", o, f.as_ref()).unwrap().into_iter().map(|i| i.key).collect::<Vec<_>>()
        };
        assert_eq!(keys(Order::Asc, None), vec![ItemKey::Index(1), ItemKey::Index(2), ItemKey::Index(3)]);
        assert_eq!(keys(Order::Desc, Some(ItemKey::Index(2))), vec![ItemKey::Index(2), ItemKey::Index(1)]);
    }
}
