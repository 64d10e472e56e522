//! Cognito rows: identity pools, identities and logins, dataset metadata, devices, usage.

use super::{Param, PgConn, corrupt, get, key_bound, sid_col, sql_order, ts_col, u64_col};
use crate::{json_from_str, json_to_string};
use ferrosync_core::cognito::{
    CognitoIdentity, Dataset, Device, DeviceDump, IdentityPool, IdentityPoolUsage, Login, Platform,
};
use ferrosync_core::page::PageRequest;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoreError;
use ferrosync_core::timestamp::Timestamp;
use postgres::Row;

const POOL_COLS: &str = "pool_id, service_sid, spec, sync_config, date_created, date_updated";

fn pool_row(row: &Row) -> Result<IdentityPool, StoreError> {
    Ok(IdentityPool {
        id: get(row, 0, "pool_id")?,
        service_sid: sid_col(row, 1)?,
        spec: json_from_str(get(row, 2, "spec")?, "identity pool spec")?,
        sync: json_from_str(get(row, 3, "sync_config")?, "identity pool sync configuration")?,
        date_created: ts_col(row, 4, "date_created")?,
        date_updated: ts_col(row, 5, "date_updated")?,
    })
}

pub(crate) fn identity_pool(conn: &mut PgConn, pool_id: &str) -> Result<Option<IdentityPool>, StoreError> {
    conn.query_opt(&format!("SELECT {POOL_COLS} FROM identity_pools WHERE pool_id = $1"), &[&pool_id])?
        .map(|r| pool_row(&r))
        .transpose()
}

pub(crate) fn identity_pools(conn: &mut PgConn, page: &PageRequest) -> Result<Vec<IdentityPool>, StoreError> {
    let mut args: Vec<Param> = Vec::new();
    let cond = key_bound(page, "pool_id", &mut args);
    let order = sql_order(page.order);
    args.push(Box::new(page.limit as i64 + 1));
    let sql = format!(
        "SELECT {POOL_COLS} FROM identity_pools WHERE TRUE {cond} ORDER BY pool_id {order} LIMIT ${}",
        args.len()
    );
    conn.query_boxed(&sql, &args)?.iter().map(pool_row).collect()
}

pub(crate) fn put_identity_pool(conn: &mut PgConn, p: &IdentityPool) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO identity_pools (pool_id, service_sid, spec, sync_config, date_created, date_updated)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (pool_id) DO UPDATE SET spec = excluded.spec, sync_config = excluded.sync_config,
           date_updated = excluded.date_updated",
        &[
            &p.id,
            &p.service_sid.as_str(),
            &json_to_string(&p.spec),
            &json_to_string(&p.sync),
            &p.date_created.0,
            &p.date_updated.0,
        ],
    )
    .map(drop)
}

const IDENTITY_COLS: &str = "identity_id, pool_id, disabled, merged_into, date_created, date_updated";

fn identity_row(row: &Row) -> Result<CognitoIdentity, StoreError> {
    Ok(CognitoIdentity {
        id: get(row, 0, "identity_id")?,
        pool_id: get(row, 1, "pool_id")?,
        logins: Vec::new(),
        disabled: get(row, 2, "disabled")?,
        merged_into: get(row, 3, "merged_into")?,
        date_created: ts_col(row, 4, "date_created")?,
        date_updated: ts_col(row, 5, "date_updated")?,
    })
}

fn with_logins(conn: &mut PgConn, mut identity: CognitoIdentity) -> Result<CognitoIdentity, StoreError> {
    identity.logins = conn
        .query(
            "SELECT provider, user_identifier FROM cognito_logins WHERE identity_id = $1
             ORDER BY provider, user_identifier",
            &[&identity.id],
        )?
        .iter()
        .map(|r| Ok(Login { provider: get(r, 0, "provider")?, user: get(r, 1, "user_identifier")? }))
        .collect::<Result<_, StoreError>>()?;
    Ok(identity)
}

pub(crate) fn cognito_identity(conn: &mut PgConn, identity_id: &str) -> Result<Option<CognitoIdentity>, StoreError> {
    let found = conn
        .query_opt(&format!("SELECT {IDENTITY_COLS} FROM cognito_identities WHERE identity_id = $1"), &[&identity_id])?
        .map(|r| identity_row(&r))
        .transpose()?;
    found.map(|i| with_logins(conn, i)).transpose()
}

pub(crate) fn cognito_identities(
    conn: &mut PgConn,
    pool_id: &str,
    hide_disabled: bool,
    page: &PageRequest,
) -> Result<Vec<CognitoIdentity>, StoreError> {
    let mut args: Vec<Param> = vec![Box::new(pool_id.to_owned())];
    let cond = key_bound(page, "identity_id", &mut args);
    let order = sql_order(page.order);
    let enabled = if hide_disabled { "AND NOT disabled" } else { "" };
    args.push(Box::new(page.limit as i64 + 1));
    let sql = format!(
        "SELECT {IDENTITY_COLS} FROM cognito_identities WHERE pool_id = $1 {enabled} {cond}
         ORDER BY identity_id {order} LIMIT ${}",
        args.len()
    );
    let identities = conn.query_boxed(&sql, &args)?.iter().map(identity_row).collect::<Result<Vec<_>, _>>()?;
    identities.into_iter().map(|i| with_logins(conn, i)).collect()
}

pub(crate) fn put_cognito_identity(conn: &mut PgConn, i: &CognitoIdentity) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cognito_identities (identity_id, pool_id, disabled, merged_into, date_created, date_updated)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (identity_id) DO UPDATE SET disabled = excluded.disabled, merged_into = excluded.merged_into,
           date_updated = excluded.date_updated",
        &[&i.id, &i.pool_id, &i.disabled, &i.merged_into, &i.date_created.0, &i.date_updated.0],
    )
    .map(drop)
}

pub(crate) fn delete_cognito_identity(conn: &mut PgConn, identity_id: &str) -> Result<(), StoreError> {
    // Logins go with the identity row (foreign key); datasets and devices name it only by id.
    delete_devices(conn, identity_id)?;
    conn.execute("DELETE FROM cognito_datasets WHERE identity_id = $1", &[&identity_id])?;
    conn.execute("DELETE FROM cognito_identities WHERE identity_id = $1", &[&identity_id])?;
    Ok(())
}

pub(crate) fn login_owner(conn: &mut PgConn, pool_id: &str, login: &Login) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "SELECT identity_id FROM cognito_logins WHERE pool_id = $1 AND provider = $2 AND user_identifier = $3",
        &[&pool_id, &login.provider, &login.user],
    )?
    .map(|r| get(&r, 0, "identity_id"))
    .transpose()
}

pub(crate) fn put_login(conn: &mut PgConn, pool_id: &str, login: &Login, identity_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cognito_logins (pool_id, provider, user_identifier, identity_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (pool_id, provider, user_identifier) DO UPDATE SET identity_id = excluded.identity_id",
        &[&pool_id, &login.provider, &login.user, &identity_id],
    )
    .map(drop)
}

pub(crate) fn delete_login(conn: &mut PgConn, pool_id: &str, login: &Login) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM cognito_logins WHERE pool_id = $1 AND provider = $2 AND user_identifier = $3",
        &[&pool_id, &login.provider, &login.user],
    )
    .map(|n| n > 0)
}

const DATASET_COLS: &str = "pool_id, identity_id, dataset_name, map_sid, sync_count, num_records, data_storage, \
     last_modified_by, date_created, date_modified, deleted_at_sync_count, merged_from";

fn dataset_row(row: &Row) -> Result<Dataset, StoreError> {
    let map_sid: Option<&str> = get(row, 3, "map_sid")?;
    Ok(Dataset {
        pool_id: get(row, 0, "pool_id")?,
        identity_id: get(row, 1, "identity_id")?,
        name: get(row, 2, "dataset_name")?,
        map_sid: map_sid.map(|s| Sid::parse(s).map_err(|_| corrupt("map_sid"))).transpose()?,
        sync_count: u64_col(row, 4, "sync_count")?,
        num_records: u64_col(row, 5, "num_records")?,
        data_storage: u64_col(row, 6, "data_storage")?,
        last_modified_by: get(row, 7, "last_modified_by")?,
        date_created: ts_col(row, 8, "date_created")?,
        date_modified: ts_col(row, 9, "date_modified")?,
        deleted_at_sync_count: get::<Option<i64>>(row, 10, "deleted_at_sync_count")?.map(|n| n as u64),
        merged_from: get(row, 11, "merged_from")?,
    })
}

pub(crate) fn dataset(conn: &mut PgConn, identity_id: &str, name: &str) -> Result<Option<Dataset>, StoreError> {
    conn.query_opt(
        &format!("SELECT {DATASET_COLS} FROM cognito_datasets WHERE identity_id = $1 AND dataset_name = $2"),
        &[&identity_id, &name],
    )?
    .map(|r| dataset_row(&r))
    .transpose()
}

pub(crate) fn datasets(conn: &mut PgConn, identity_id: &str) -> Result<Vec<Dataset>, StoreError> {
    conn.query(
        &format!("SELECT {DATASET_COLS} FROM cognito_datasets WHERE identity_id = $1 ORDER BY dataset_name"),
        &[&identity_id],
    )?
    .iter()
    .map(dataset_row)
    .collect()
}

pub(crate) fn put_dataset(conn: &mut PgConn, d: &Dataset) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cognito_datasets (pool_id, identity_id, dataset_name, map_sid, sync_count, num_records,
           data_storage, last_modified_by, date_created, date_modified, deleted_at_sync_count, merged_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (identity_id, dataset_name) DO UPDATE SET pool_id = excluded.pool_id, map_sid = excluded.map_sid,
           sync_count = excluded.sync_count, num_records = excluded.num_records, data_storage = excluded.data_storage,
           last_modified_by = excluded.last_modified_by, date_created = excluded.date_created,
           date_modified = excluded.date_modified, deleted_at_sync_count = excluded.deleted_at_sync_count,
           merged_from = excluded.merged_from",
        &[
            &d.pool_id,
            &d.identity_id,
            &d.name,
            &d.map_sid.as_ref().map(|s| s.as_str()),
            &(d.sync_count as i64),
            &(d.num_records as i64),
            &(d.data_storage as i64),
            &d.last_modified_by,
            &d.date_created.0,
            &d.date_modified.0,
            &d.deleted_at_sync_count.map(|n| n as i64),
            &d.merged_from,
        ],
    )
    .map(drop)
}

pub(crate) fn delete_dataset(conn: &mut PgConn, identity_id: &str, name: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cognito_datasets WHERE identity_id = $1 AND dataset_name = $2", &[&identity_id, &name])
        .map(drop)
}

const DEVICE_COLS: &str = "device_id, pool_id, identity_id, platform, token, date_created";

fn device_row(row: &Row) -> Result<Device, StoreError> {
    Ok(Device {
        id: get(row, 0, "device_id")?,
        pool_id: get(row, 1, "pool_id")?,
        identity_id: get(row, 2, "identity_id")?,
        platform: Platform::parse(get(row, 3, "platform")?).map_err(|_| corrupt("platform"))?,
        token: get(row, 4, "token")?,
        date_created: ts_col(row, 5, "date_created")?,
    })
}

pub(crate) fn device(conn: &mut PgConn, device_id: &str) -> Result<Option<Device>, StoreError> {
    conn.query_opt(&format!("SELECT {DEVICE_COLS} FROM cognito_devices WHERE device_id = $1"), &[&device_id])?
        .map(|r| device_row(&r))
        .transpose()
}

pub(crate) fn device_by_token(
    conn: &mut PgConn,
    identity_id: &str,
    platform: Platform,
    token: &str,
) -> Result<Option<Device>, StoreError> {
    conn.query_opt(
        &format!("SELECT {DEVICE_COLS} FROM cognito_devices WHERE identity_id = $1 AND platform = $2 AND token = $3"),
        &[&identity_id, &platform.as_str(), &token],
    )?
    .map(|r| device_row(&r))
    .transpose()
}

pub(crate) fn put_device(conn: &mut PgConn, d: &Device) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cognito_devices (device_id, pool_id, identity_id, platform, token, date_created)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&d.id, &d.pool_id, &d.identity_id, &d.platform.as_str(), &d.token, &d.date_created.0],
    )
    .map(drop)
}

pub(crate) fn delete_devices(conn: &mut PgConn, identity_id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cognito_devices WHERE identity_id = $1", &[&identity_id]).map(drop)
}

pub(crate) fn set_subscription(
    conn: &mut PgConn,
    identity_id: &str,
    dataset: &str,
    device_id: &str,
    subscribed: bool,
) -> Result<(), StoreError> {
    let sql = if subscribed {
        "INSERT INTO cognito_subscriptions (identity_id, dataset_name, device_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM cognito_subscriptions WHERE identity_id = $1 AND dataset_name = $2 AND device_id = $3"
    };
    conn.execute(sql, &[&identity_id, &dataset, &device_id]).map(drop)
}

pub(crate) fn dataset_subscribers(
    conn: &mut PgConn,
    identity_id: &str,
    dataset: &str,
) -> Result<Vec<Device>, StoreError> {
    conn.query(
        "SELECT d.device_id, d.pool_id, d.identity_id, d.platform, d.token, d.date_created
         FROM cognito_subscriptions s JOIN cognito_devices d ON d.device_id = s.device_id
         WHERE s.identity_id = $1 AND s.dataset_name = $2 ORDER BY d.device_id",
        &[&identity_id, &dataset],
    )?
    .iter()
    .map(device_row)
    .collect()
}

pub(crate) fn identity_pool_usage(conn: &mut PgConn, pool_id: &str) -> Result<IdentityPoolUsage, StoreError> {
    let row = conn
        .query_opt(
            "SELECT (SELECT sync_sessions FROM cognito_pool_usage WHERE pool_id = $1),
                    (SELECT SUM(data_storage)::BIGINT FROM cognito_datasets WHERE pool_id = $1 AND map_sid IS NOT NULL),
                    (SELECT MAX(date_modified) FROM cognito_datasets WHERE pool_id = $1)",
            &[&pool_id],
        )?
        .ok_or_else(|| StoreError::Backend("usage query returned no row".into()))?;
    Ok(IdentityPoolUsage {
        pool_id: pool_id.to_owned(),
        sync_sessions: get::<Option<i64>>(&row, 0, "sync_sessions")?.unwrap_or(0) as u64,
        data_storage: get::<Option<i64>>(&row, 1, "data_storage")?.unwrap_or(0) as u64,
        last_modified: get::<Option<i64>>(&row, 2, "date_modified")?.map(Timestamp),
    })
}

pub(crate) fn count_sync_sessions(conn: &mut PgConn, counts: &[(String, u64)]) -> Result<(), StoreError> {
    // Only for pools that exist: a pool removed meanwhile leaves no counter behind. A flush
    // holds few pools, and a statement per pool keeps each one atomic.
    for (pool_id, n) in counts {
        conn.execute(
            "INSERT INTO cognito_pool_usage (pool_id, sync_sessions)
             SELECT pool_id, $2 FROM identity_pools WHERE pool_id = $1
             ON CONFLICT (pool_id) DO UPDATE
             SET sync_sessions = cognito_pool_usage.sync_sessions + excluded.sync_sessions",
            &[pool_id, &(*n as i64)],
        )?;
    }
    Ok(())
}

pub(crate) fn meta(conn: &mut PgConn, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| get(&r, 0, "value")).transpose()
}

pub(crate) fn cognito_identity_ids(
    conn: &mut PgConn,
    pool_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    conn.query(
        "SELECT id FROM (
             SELECT identity_id AS id FROM cognito_identities WHERE pool_id = $1
             UNION SELECT identity_id FROM cognito_datasets WHERE pool_id = $1
             UNION SELECT identity_id FROM cognito_devices WHERE pool_id = $1) ids
         WHERE id > $2 ORDER BY id LIMIT $3",
        &[&pool_id, &after.unwrap_or_default(), &i64::from(limit)],
    )?
    .iter()
    .map(|r| get(r, 0, "identity_id"))
    .collect()
}

pub(crate) fn identity_devices(conn: &mut PgConn, identity_id: &str) -> Result<Vec<DeviceDump>, StoreError> {
    let devices = conn
        .query(
            &format!("SELECT {DEVICE_COLS} FROM cognito_devices WHERE identity_id = $1 ORDER BY device_id"),
            &[&identity_id],
        )?
        .iter()
        .map(device_row)
        .collect::<Result<Vec<_>, _>>()?;
    let subscriptions = conn
        .query(
            "SELECT device_id, dataset_name FROM cognito_subscriptions WHERE identity_id = $1
             ORDER BY device_id, dataset_name",
            &[&identity_id],
        )?
        .iter()
        .map(|r| Ok((get(r, 0, "device_id")?, get(r, 1, "dataset_name")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(crate::group_subscriptions(devices, subscriptions))
}
