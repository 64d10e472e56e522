//! Matrix accounts: users and devices.

use super::{Param, PgConn, get, key_bound, sql_order, ts_col};
use ferrosync_core::matrix::{MatrixDevice, MatrixMedia, MatrixUser};
use ferrosync_core::page::PageRequest;
use ferrosync_core::store::StoreError;

fn user_row(r: &postgres::Row) -> Result<MatrixUser, StoreError> {
    Ok(MatrixUser {
        user_id: get(r, 0, "user_id")?,
        password_hash: get(r, 1, "password_hash")?,
        display_name: get(r, 2, "display_name")?,
        avatar_url: get(r, 3, "avatar_url")?,
        deactivated: get(r, 4, "deactivated")?,
        date_created: ts_col(r, 5, "date_created")?,
    })
}

pub(crate) fn matrix_user(conn: &mut PgConn, user_id: &str) -> Result<Option<MatrixUser>, StoreError> {
    conn.query_opt(
        "SELECT user_id, password_hash, display_name, avatar_url, deactivated, date_created
         FROM matrix_users WHERE user_id = $1",
        &[&user_id],
    )?
    .map(|r| user_row(&r))
    .transpose()
}

pub(crate) fn matrix_users(conn: &mut PgConn, page: &PageRequest) -> Result<Vec<MatrixUser>, StoreError> {
    let mut args: Vec<Param> = Vec::new();
    let cond = key_bound(page, "user_id", &mut args);
    let order = sql_order(page.order);
    args.push(Box::new(page.limit as i64 + 1));
    let sql = format!(
        "SELECT user_id, password_hash, display_name, avatar_url, deactivated, date_created
         FROM matrix_users WHERE TRUE {cond} ORDER BY user_id {order} LIMIT ${}",
        args.len()
    );
    conn.query_boxed(&sql, &args)?.iter().map(user_row).collect()
}

pub(crate) fn put_matrix_user(conn: &mut PgConn, u: &MatrixUser) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO matrix_users (user_id, password_hash, display_name, avatar_url, deactivated, date_created)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash,
           display_name = excluded.display_name, avatar_url = excluded.avatar_url,
           deactivated = excluded.deactivated",
        &[&u.user_id, &u.password_hash, &u.display_name, &u.avatar_url, &u.deactivated, &u.date_created.0],
    )
    .map(drop)
}

fn device_row(r: &postgres::Row) -> Result<MatrixDevice, StoreError> {
    Ok(MatrixDevice {
        user_id: get(r, 0, "user_id")?,
        device_id: get(r, 1, "device_id")?,
        display_name: get(r, 2, "display_name")?,
        token_id: get(r, 3, "token_id")?,
        date_created: ts_col(r, 4, "date_created")?,
    })
}

pub(crate) fn matrix_device(
    conn: &mut PgConn,
    user_id: &str,
    device_id: &str,
) -> Result<Option<MatrixDevice>, StoreError> {
    conn.query_opt(
        "SELECT user_id, device_id, display_name, token_id, date_created
         FROM matrix_devices WHERE user_id = $1 AND device_id = $2",
        &[&user_id, &device_id],
    )?
    .map(|r| device_row(&r))
    .transpose()
}

pub(crate) fn put_matrix_device(conn: &mut PgConn, d: &MatrixDevice) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO matrix_devices (user_id, device_id, display_name, token_id, date_created)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, device_id) DO UPDATE SET
           display_name = COALESCE(excluded.display_name, matrix_devices.display_name),
           token_id = excluded.token_id",
        &[&d.user_id, &d.device_id, &d.display_name, &d.token_id, &d.date_created.0],
    )
    .map(drop)
}

pub(crate) fn delete_matrix_devices(
    conn: &mut PgConn,
    user_id: &str,
    device_id: Option<&str>,
) -> Result<u64, StoreError> {
    match device_id {
        Some(d) => conn.execute("DELETE FROM matrix_devices WHERE user_id = $1 AND device_id = $2", &[&user_id, &d]),
        None => conn.execute("DELETE FROM matrix_devices WHERE user_id = $1", &[&user_id]),
    }
}

pub(crate) fn matrix_devices(conn: &mut PgConn, user_id: &str) -> Result<Vec<MatrixDevice>, StoreError> {
    conn.query(
        "SELECT user_id, device_id, display_name, token_id, date_created
         FROM matrix_devices WHERE user_id = $1 ORDER BY device_id",
        &[&user_id],
    )?
    .iter()
    .map(device_row)
    .collect()
}

pub(crate) fn matrix_filter(conn: &mut PgConn, user_id: &str, filter_id: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT filter FROM matrix_filters WHERE user_id = $1 AND filter_id = $2", &[&user_id, &filter_id])?
        .map(|r| get(&r, 0, "filter"))
        .transpose()
}

pub(crate) fn put_matrix_filter(
    conn: &mut PgConn,
    user_id: &str,
    filter_id: &str,
    filter: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO matrix_filters (user_id, filter_id, filter) VALUES ($1, $2, $3)",
        &[&user_id, &filter_id, &filter],
    )
    .map(drop)
}

const MEDIA_COLS: &str = "media_id, user_id, content_type, filename, content, date_created";

fn media_row(r: &postgres::Row) -> Result<MatrixMedia, StoreError> {
    Ok(MatrixMedia {
        media_id: get(r, 0, "media_id")?,
        user_id: get(r, 1, "user_id")?,
        content_type: get(r, 2, "content_type")?,
        filename: get(r, 3, "filename")?,
        content: get(r, 4, "content")?,
        date_created: ts_col(r, 5, "date_created")?,
    })
}

pub(crate) fn matrix_media(conn: &mut PgConn, media_id: &str) -> Result<Option<MatrixMedia>, StoreError> {
    conn.query_opt(&format!("SELECT {MEDIA_COLS} FROM matrix_media WHERE media_id = $1"), &[&media_id])?
        .map(|r| media_row(&r))
        .transpose()
}

pub(crate) fn put_matrix_media(conn: &mut PgConn, m: &MatrixMedia) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO matrix_media (media_id, user_id, content_type, filename, content, date_created)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&m.media_id, &m.user_id, &m.content_type, &m.filename, &m.content, &m.date_created.0],
    )
    .map(drop)
}

pub(crate) fn matrix_filters(conn: &mut PgConn, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    conn.query("SELECT filter_id, filter FROM matrix_filters WHERE user_id = $1 ORDER BY filter_id", &[&user_id])?
        .iter()
        .map(|r| Ok((get(r, 0, "filter_id")?, get(r, 1, "filter")?)))
        .collect()
}

pub(crate) fn matrix_media_after(
    conn: &mut PgConn,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<MatrixMedia>, StoreError> {
    conn.query(
        &format!("SELECT {MEDIA_COLS} FROM matrix_media WHERE media_id > $1 ORDER BY media_id LIMIT $2"),
        &[&after.unwrap_or_default(), &i64::from(limit)],
    )?
    .iter()
    .map(media_row)
    .collect()
}
