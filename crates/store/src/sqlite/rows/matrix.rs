//! Matrix accounts: users and devices.

use super::err;
use ferrosync_core::matrix::{MatrixDevice, MatrixMedia, MatrixUser};
use ferrosync_core::page::PageRequest;
use ferrosync_core::store::StoreError;
use ferrosync_core::timestamp::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

fn user_row(row: &Row<'_>) -> rusqlite::Result<MatrixUser> {
    Ok(MatrixUser {
        user_id: row.get(0)?,
        password_hash: row.get(1)?,
        display_name: row.get(2)?,
        avatar_url: row.get(3)?,
        deactivated: row.get(4)?,
        date_created: Timestamp(row.get(5)?),
    })
}

pub(crate) fn matrix_user(conn: &Connection, user_id: &str) -> Result<Option<MatrixUser>, StoreError> {
    conn.prepare_cached(
        "SELECT user_id, password_hash, display_name, avatar_url, deactivated, date_created
         FROM matrix_users WHERE user_id = ?1",
    )
    .and_then(|mut st| st.query_row([user_id], user_row).optional())
    .map_err(err)
}

pub(crate) fn matrix_users(conn: &Connection, page: &PageRequest) -> Result<Vec<MatrixUser>, StoreError> {
    let (cond, bound) = super::key_bound(page, "user_id");
    let order = super::sql_order(page.order);
    let sql = format!(
        "SELECT user_id, password_hash, display_name, avatar_url, deactivated, date_created
         FROM matrix_users WHERE 1=1 {cond} ORDER BY user_id {order} LIMIT ?"
    );
    let mut args: Vec<SqlValue> = bound.into_iter().collect();
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    super::query_all(conn, &sql, args, user_row)
}

pub(crate) fn put_matrix_user(conn: &Connection, u: &MatrixUser) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO matrix_users (user_id, password_hash, display_name, avatar_url, deactivated, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash,
           display_name = excluded.display_name, avatar_url = excluded.avatar_url,
           deactivated = excluded.deactivated",
    )
    .and_then(|mut st| {
        st.execute(params![u.user_id, u.password_hash, u.display_name, u.avatar_url, u.deactivated, u.date_created.0])
    })
    .map(drop)
    .map_err(err)
}

fn device_row(row: &Row<'_>) -> rusqlite::Result<MatrixDevice> {
    Ok(MatrixDevice {
        user_id: row.get(0)?,
        device_id: row.get(1)?,
        display_name: row.get(2)?,
        token_id: row.get(3)?,
        date_created: Timestamp(row.get(4)?),
    })
}

pub(crate) fn matrix_device(
    conn: &Connection,
    user_id: &str,
    device_id: &str,
) -> Result<Option<MatrixDevice>, StoreError> {
    conn.prepare_cached(
        "SELECT user_id, device_id, display_name, token_id, date_created
         FROM matrix_devices WHERE user_id = ?1 AND device_id = ?2",
    )
    .and_then(|mut st| st.query_row([user_id, device_id], device_row).optional())
    .map_err(err)
}

pub(crate) fn put_matrix_device(conn: &Connection, d: &MatrixDevice) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO matrix_devices (user_id, device_id, display_name, token_id, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, device_id) DO UPDATE SET
           display_name = COALESCE(excluded.display_name, matrix_devices.display_name),
           token_id = excluded.token_id",
    )
    .and_then(|mut st| st.execute(params![d.user_id, d.device_id, d.display_name, d.token_id, d.date_created.0]))
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_matrix_devices(
    conn: &Connection,
    user_id: &str,
    device_id: Option<&str>,
) -> Result<u64, StoreError> {
    let n = match device_id {
        Some(d) => conn
            .prepare_cached("DELETE FROM matrix_devices WHERE user_id = ?1 AND device_id = ?2")
            .and_then(|mut st| st.execute([user_id, d])),
        None => conn
            .prepare_cached("DELETE FROM matrix_devices WHERE user_id = ?1")
            .and_then(|mut st| st.execute([user_id])),
    }
    .map_err(err)?;
    Ok(n as u64)
}

pub(crate) fn matrix_devices(conn: &Connection, user_id: &str) -> Result<Vec<MatrixDevice>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT user_id, device_id, display_name, token_id, date_created
             FROM matrix_devices WHERE user_id = ?1 ORDER BY device_id",
        )
        .map_err(err)?;
    let rows = st.query_map([user_id], device_row).map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}

pub(crate) fn matrix_filter(conn: &Connection, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT filter FROM matrix_filters WHERE user_id = ?1 AND filter_id = ?2")
        .and_then(|mut st| st.query_row([user_id, filter_id], |r| r.get(0)).optional())
        .map_err(err)
}

pub(crate) fn put_matrix_filter(
    conn: &Connection,
    user_id: &str,
    filter_id: &str,
    filter: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO matrix_filters (user_id, filter_id, filter) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute([user_id, filter_id, filter]))
        .map(drop)
        .map_err(err)
}

const MEDIA_COLS: &str = "media_id, user_id, content_type, filename, content, date_created";

fn media_row(row: &Row<'_>) -> rusqlite::Result<MatrixMedia> {
    Ok(MatrixMedia {
        media_id: row.get(0)?,
        user_id: row.get(1)?,
        content_type: row.get(2)?,
        filename: row.get(3)?,
        content: row.get(4)?,
        date_created: Timestamp(row.get(5)?),
    })
}

pub(crate) fn matrix_media(conn: &Connection, media_id: &str) -> Result<Option<MatrixMedia>, StoreError> {
    conn.prepare_cached(&format!("SELECT {MEDIA_COLS} FROM matrix_media WHERE media_id = ?1"))
        .and_then(|mut st| st.query_row([media_id], media_row).optional())
        .map_err(err)
}

pub(crate) fn put_matrix_media(conn: &Connection, m: &MatrixMedia) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO matrix_media (media_id, user_id, content_type, filename, content, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![m.media_id, m.user_id, m.content_type, m.filename, m.content, m.date_created.0])
    })
    .map(drop)
    .map_err(err)
}

pub(crate) fn matrix_filters(conn: &Connection, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT filter_id, filter FROM matrix_filters WHERE user_id = ?1 ORDER BY filter_id")
        .map_err(err)?;
    let rows = st.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}

pub(crate) fn matrix_media_after(
    conn: &Connection,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<MatrixMedia>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {MEDIA_COLS} FROM matrix_media WHERE media_id > ?1 ORDER BY media_id LIMIT ?2"
        ))
        .map_err(err)?;
    let rows = st.query_map(params![after.unwrap_or_default(), i64::from(limit)], media_row).map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}
