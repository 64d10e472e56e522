//! Cognito rows: identity pools, identities and logins, dataset metadata, devices, usage.

use super::{corrupt, err, query_all, sid_col};
use crate::{json_from_str, json_to_string};
use ferrosync_core::cognito::{
    CognitoIdentity, Dataset, Device, DeviceDump, IdentityPool, IdentityPoolUsage, Login, Platform,
};
use ferrosync_core::page::PageRequest;
use ferrosync_core::store::StoreError;
use ferrosync_core::timestamp::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize, what: &str) -> rusqlite::Result<T> {
    let raw: String = row.get(idx)?;
    json_from_str(&raw, what)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

const POOL_COLS: &str = "pool_id, service_sid, spec, sync_config, date_created, date_updated";

fn pool_row(row: &Row<'_>) -> rusqlite::Result<IdentityPool> {
    Ok(IdentityPool {
        id: row.get(0)?,
        service_sid: sid_col(row, 1)?,
        spec: json_col(row, 2, "identity pool spec")?,
        sync: json_col(row, 3, "identity pool sync configuration")?,
        date_created: Timestamp(row.get(4)?),
        date_updated: Timestamp(row.get(5)?),
    })
}

pub(crate) fn identity_pool(conn: &Connection, pool_id: &str) -> Result<Option<IdentityPool>, StoreError> {
    conn.prepare_cached(&format!("SELECT {POOL_COLS} FROM identity_pools WHERE pool_id = ?1"))
        .and_then(|mut st| st.query_row([pool_id], pool_row).optional())
        .map_err(err)
}

pub(crate) fn identity_pools(conn: &Connection, page: &PageRequest) -> Result<Vec<IdentityPool>, StoreError> {
    let (cond, bound) = super::key_bound(page, "pool_id");
    let order = super::sql_order(page.order);
    let sql = format!("SELECT {POOL_COLS} FROM identity_pools WHERE 1=1 {cond} ORDER BY pool_id {order} LIMIT ?");
    let mut args: Vec<SqlValue> = bound.into_iter().collect();
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    query_all(conn, &sql, args, pool_row)
}

pub(crate) fn put_identity_pool(conn: &Connection, p: &IdentityPool) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO identity_pools (pool_id, service_sid, spec, sync_config, date_created, date_updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (pool_id) DO UPDATE SET spec = excluded.spec, sync_config = excluded.sync_config,
           date_updated = excluded.date_updated",
    )
    .and_then(|mut st| {
        st.execute(params![
            p.id,
            p.service_sid.as_str(),
            json_to_string(&p.spec),
            json_to_string(&p.sync),
            p.date_created.0,
            p.date_updated.0
        ])
    })
    .map(drop)
    .map_err(err)
}

const IDENTITY_COLS: &str = "identity_id, pool_id, disabled, merged_into, date_created, date_updated";

fn identity_row(row: &Row<'_>) -> rusqlite::Result<CognitoIdentity> {
    Ok(CognitoIdentity {
        id: row.get(0)?,
        pool_id: row.get(1)?,
        logins: Vec::new(),
        disabled: row.get(2)?,
        merged_into: row.get(3)?,
        date_created: Timestamp(row.get(4)?),
        date_updated: Timestamp(row.get(5)?),
    })
}

fn with_logins(conn: &Connection, mut identity: CognitoIdentity) -> Result<CognitoIdentity, StoreError> {
    identity.logins = query_all(
        conn,
        "SELECT provider, user_identifier FROM cognito_logins WHERE identity_id = ? ORDER BY provider, user_identifier",
        vec![SqlValue::Text(identity.id.clone())],
        |r| Ok(Login { provider: r.get(0)?, user: r.get(1)? }),
    )?;
    Ok(identity)
}

pub(crate) fn cognito_identity(conn: &Connection, identity_id: &str) -> Result<Option<CognitoIdentity>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {IDENTITY_COLS} FROM cognito_identities WHERE identity_id = ?1"))
        .and_then(|mut st| st.query_row([identity_id], identity_row).optional())
        .map_err(err)?;
    found.map(|i| with_logins(conn, i)).transpose()
}

pub(crate) fn cognito_identities(
    conn: &Connection,
    pool_id: &str,
    hide_disabled: bool,
    page: &PageRequest,
) -> Result<Vec<CognitoIdentity>, StoreError> {
    let (cond, bound) = super::key_bound(page, "identity_id");
    let order = super::sql_order(page.order);
    let enabled = if hide_disabled { "AND disabled = 0" } else { "" };
    let sql = format!(
        "SELECT {IDENTITY_COLS} FROM cognito_identities WHERE pool_id = ? {enabled} {cond}
         ORDER BY identity_id {order} LIMIT ?"
    );
    let mut args = vec![SqlValue::Text(pool_id.to_owned())];
    args.extend(bound);
    args.push(SqlValue::Integer(page.limit as i64 + 1));
    query_all(conn, &sql, args, identity_row)?.into_iter().map(|i| with_logins(conn, i)).collect()
}

pub(crate) fn put_cognito_identity(conn: &Connection, i: &CognitoIdentity) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cognito_identities (identity_id, pool_id, disabled, merged_into, date_created, date_updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (identity_id) DO UPDATE SET disabled = excluded.disabled, merged_into = excluded.merged_into,
           date_updated = excluded.date_updated",
    )
    .and_then(|mut st| {
        st.execute(params![i.id, i.pool_id, i.disabled, i.merged_into, i.date_created.0, i.date_updated.0])
    })
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_cognito_identity(conn: &Connection, identity_id: &str) -> Result<(), StoreError> {
    // Logins go with the identity row (foreign key); datasets and devices name it only by id.
    delete_devices(conn, identity_id)?;
    for sql in
        ["DELETE FROM cognito_datasets WHERE identity_id = ?1", "DELETE FROM cognito_identities WHERE identity_id = ?1"]
    {
        conn.prepare_cached(sql).and_then(|mut st| st.execute([identity_id])).map_err(err)?;
    }
    Ok(())
}

pub(crate) fn login_owner(conn: &Connection, pool_id: &str, login: &Login) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(
        "SELECT identity_id FROM cognito_logins WHERE pool_id = ?1 AND provider = ?2 AND user_identifier = ?3",
    )
    .and_then(|mut st| st.query_row(params![pool_id, login.provider, login.user], |r| r.get(0)).optional())
    .map_err(err)
}

pub(crate) fn put_login(conn: &Connection, pool_id: &str, login: &Login, identity_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cognito_logins (pool_id, provider, user_identifier, identity_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (pool_id, provider, user_identifier) DO UPDATE SET identity_id = excluded.identity_id",
    )
    .and_then(|mut st| st.execute(params![pool_id, login.provider, login.user, identity_id]))
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_login(conn: &Connection, pool_id: &str, login: &Login) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM cognito_logins WHERE pool_id = ?1 AND provider = ?2 AND user_identifier = ?3")
        .and_then(|mut st| st.execute(params![pool_id, login.provider, login.user]))
        .map(|n| n > 0)
        .map_err(err)
}

const DATASET_COLS: &str = "pool_id, identity_id, dataset_name, map_sid, sync_count, num_records, data_storage, \
     last_modified_by, date_created, date_modified, deleted_at_sync_count, merged_from";

fn dataset_row(row: &Row<'_>) -> rusqlite::Result<Dataset> {
    let map_sid: Option<String> = row.get(3)?;
    Ok(Dataset {
        pool_id: row.get(0)?,
        identity_id: row.get(1)?,
        name: row.get(2)?,
        map_sid: map_sid.map(|s| ferrosync_core::sid::Sid::parse(&s).map_err(|_| corrupt("map_sid"))).transpose()?,
        sync_count: row.get::<_, i64>(4)? as u64,
        num_records: row.get::<_, i64>(5)? as u64,
        data_storage: row.get::<_, i64>(6)? as u64,
        last_modified_by: row.get(7)?,
        date_created: Timestamp(row.get(8)?),
        date_modified: Timestamp(row.get(9)?),
        deleted_at_sync_count: row.get::<_, Option<i64>>(10)?.map(|n| n as u64),
        merged_from: row.get(11)?,
    })
}

pub(crate) fn dataset(conn: &Connection, identity_id: &str, name: &str) -> Result<Option<Dataset>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {DATASET_COLS} FROM cognito_datasets WHERE identity_id = ?1 AND dataset_name = ?2"
    ))
    .and_then(|mut st| st.query_row([identity_id, name], dataset_row).optional())
    .map_err(err)
}

pub(crate) fn datasets(conn: &Connection, identity_id: &str) -> Result<Vec<Dataset>, StoreError> {
    query_all(
        conn,
        &format!("SELECT {DATASET_COLS} FROM cognito_datasets WHERE identity_id = ? ORDER BY dataset_name"),
        vec![SqlValue::Text(identity_id.to_owned())],
        dataset_row,
    )
}

pub(crate) fn put_dataset(conn: &Connection, d: &Dataset) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cognito_datasets (pool_id, identity_id, dataset_name, map_sid, sync_count, num_records,
           data_storage, last_modified_by, date_created, date_modified, deleted_at_sync_count, merged_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (identity_id, dataset_name) DO UPDATE SET pool_id = excluded.pool_id, map_sid = excluded.map_sid,
           sync_count = excluded.sync_count, num_records = excluded.num_records, data_storage = excluded.data_storage,
           last_modified_by = excluded.last_modified_by, date_created = excluded.date_created,
           date_modified = excluded.date_modified, deleted_at_sync_count = excluded.deleted_at_sync_count,
           merged_from = excluded.merged_from",
    )
    .and_then(|mut st| {
        st.execute(params![
            d.pool_id,
            d.identity_id,
            d.name,
            d.map_sid.as_ref().map(|s| s.as_str()),
            d.sync_count as i64,
            d.num_records as i64,
            d.data_storage as i64,
            d.last_modified_by,
            d.date_created.0,
            d.date_modified.0,
            d.deleted_at_sync_count.map(|n| n as i64),
            d.merged_from
        ])
    })
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_dataset(conn: &Connection, identity_id: &str, name: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM cognito_datasets WHERE identity_id = ?1 AND dataset_name = ?2")
        .and_then(|mut st| st.execute([identity_id, name]))
        .map(drop)
        .map_err(err)
}

const DEVICE_COLS: &str = "device_id, pool_id, identity_id, platform, token, date_created";

fn device_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    let platform: String = row.get(3)?;
    Ok(Device {
        id: row.get(0)?,
        pool_id: row.get(1)?,
        identity_id: row.get(2)?,
        platform: Platform::parse(&platform).map_err(|_| corrupt("platform"))?,
        token: row.get(4)?,
        date_created: Timestamp(row.get(5)?),
    })
}

pub(crate) fn device(conn: &Connection, device_id: &str) -> Result<Option<Device>, StoreError> {
    conn.prepare_cached(&format!("SELECT {DEVICE_COLS} FROM cognito_devices WHERE device_id = ?1"))
        .and_then(|mut st| st.query_row([device_id], device_row).optional())
        .map_err(err)
}

pub(crate) fn device_by_token(
    conn: &Connection,
    identity_id: &str,
    platform: Platform,
    token: &str,
) -> Result<Option<Device>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLS} FROM cognito_devices WHERE identity_id = ?1 AND platform = ?2 AND token = ?3"
    ))
    .and_then(|mut st| st.query_row([identity_id, platform.as_str(), token], device_row).optional())
    .map_err(err)
}

pub(crate) fn put_device(conn: &Connection, d: &Device) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cognito_devices (device_id, pool_id, identity_id, platform, token, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![d.id, d.pool_id, d.identity_id, d.platform.as_str(), d.token, d.date_created.0])
    })
    .map(drop)
    .map_err(err)
}

pub(crate) fn delete_devices(conn: &Connection, identity_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM cognito_devices WHERE identity_id = ?1")
        .and_then(|mut st| st.execute([identity_id]))
        .map(drop)
        .map_err(err)
}

pub(crate) fn set_subscription(
    conn: &Connection,
    identity_id: &str,
    dataset: &str,
    device_id: &str,
    subscribed: bool,
) -> Result<(), StoreError> {
    let sql = if subscribed {
        "INSERT INTO cognito_subscriptions (identity_id, dataset_name, device_id) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM cognito_subscriptions WHERE identity_id = ?1 AND dataset_name = ?2 AND device_id = ?3"
    };
    conn.prepare_cached(sql).and_then(|mut st| st.execute([identity_id, dataset, device_id])).map(drop).map_err(err)
}

pub(crate) fn dataset_subscribers(
    conn: &Connection,
    identity_id: &str,
    dataset: &str,
) -> Result<Vec<Device>, StoreError> {
    query_all(
        conn,
        "SELECT d.device_id, d.pool_id, d.identity_id, d.platform, d.token, d.date_created
         FROM cognito_subscriptions s JOIN cognito_devices d ON d.device_id = s.device_id
         WHERE s.identity_id = ? AND s.dataset_name = ? ORDER BY d.device_id",
        vec![SqlValue::Text(identity_id.to_owned()), SqlValue::Text(dataset.to_owned())],
        device_row,
    )
}

pub(crate) fn identity_pool_usage(conn: &Connection, pool_id: &str) -> Result<IdentityPoolUsage, StoreError> {
    conn.prepare_cached(
        "SELECT (SELECT sync_sessions FROM cognito_pool_usage WHERE pool_id = ?1),
                (SELECT SUM(data_storage) FROM cognito_datasets WHERE pool_id = ?1 AND map_sid IS NOT NULL),
                (SELECT MAX(date_modified) FROM cognito_datasets WHERE pool_id = ?1)",
    )
    .and_then(|mut st| {
        st.query_row([pool_id], |r| {
            Ok(IdentityPoolUsage {
                pool_id: pool_id.to_owned(),
                sync_sessions: r.get::<_, Option<i64>>(0)?.unwrap_or(0) as u64,
                data_storage: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                last_modified: r.get::<_, Option<i64>>(2)?.map(Timestamp),
            })
        })
    })
    .map_err(err)
}

pub(crate) fn count_sync_sessions(conn: &Connection, counts: &[(String, u64)]) -> Result<(), StoreError> {
    // One transaction (one fsync) for every pool. Only for pools that exist: a pool removed
    // meanwhile leaves no counter behind.
    let tx = conn.unchecked_transaction().map_err(err)?;
    for (pool_id, n) in counts {
        tx.prepare_cached(
            "INSERT INTO cognito_pool_usage (pool_id, sync_sessions)
             SELECT pool_id, ?2 FROM identity_pools WHERE pool_id = ?1
             ON CONFLICT (pool_id) DO UPDATE SET sync_sessions = sync_sessions + excluded.sync_sessions",
        )
        .and_then(|mut st| st.execute(rusqlite::params![pool_id, *n as i64]))
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
        .map_err(err)
}

pub(crate) fn cognito_identity_ids(
    conn: &Connection,
    pool_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    query_all(
        conn,
        "SELECT id FROM (
             SELECT identity_id AS id FROM cognito_identities WHERE pool_id = ?1
             UNION SELECT identity_id FROM cognito_datasets WHERE pool_id = ?1
             UNION SELECT identity_id FROM cognito_devices WHERE pool_id = ?1)
         WHERE id > ?2 ORDER BY id LIMIT ?3",
        vec![
            SqlValue::Text(pool_id.to_owned()),
            SqlValue::Text(after.unwrap_or_default().to_owned()),
            SqlValue::Integer(i64::from(limit)),
        ],
        |r| r.get(0),
    )
}

pub(crate) fn identity_devices(conn: &Connection, identity_id: &str) -> Result<Vec<DeviceDump>, StoreError> {
    let devices = query_all(
        conn,
        &format!("SELECT {DEVICE_COLS} FROM cognito_devices WHERE identity_id = ? ORDER BY device_id"),
        vec![SqlValue::Text(identity_id.to_owned())],
        device_row,
    )?;
    let subscriptions: Vec<(String, String)> = query_all(
        conn,
        "SELECT device_id, dataset_name FROM cognito_subscriptions WHERE identity_id = ?
         ORDER BY device_id, dataset_name",
        vec![SqlValue::Text(identity_id.to_owned())],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(crate::group_subscriptions(devices, subscriptions))
}
