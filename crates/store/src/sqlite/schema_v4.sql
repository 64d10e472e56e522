-- Cognito Identity pools. Each owns one service (unique name = the pool id) whose Maps are its
-- datasets; everything below goes with that service. Settings are JSON documents, so new
-- fields need no schema change.
CREATE TABLE identity_pools (
    pool_id TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL UNIQUE REFERENCES services(sid) ON DELETE CASCADE,
    spec TEXT NOT NULL,
    sync_config TEXT NOT NULL,
    date_created INTEGER NOT NULL,
    date_updated INTEGER NOT NULL
) STRICT;

CREATE TABLE cognito_identities (
    identity_id TEXT PRIMARY KEY,
    pool_id TEXT NOT NULL REFERENCES identity_pools(pool_id) ON DELETE CASCADE,
    disabled INTEGER NOT NULL,
    merged_into TEXT,
    date_created INTEGER NOT NULL,
    date_updated INTEGER NOT NULL
) STRICT;
CREATE INDEX cognito_identities_by_pool ON cognito_identities (pool_id, identity_id);

-- A login (provider + the user's identifier there) belongs to at most one identity of a pool.
CREATE TABLE cognito_logins (
    pool_id TEXT NOT NULL REFERENCES identity_pools(pool_id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    user_identifier TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES cognito_identities(identity_id) ON DELETE CASCADE,
    PRIMARY KEY (pool_id, provider, user_identifier)
) STRICT, WITHOUT ROWID;
CREATE INDEX cognito_logins_by_identity ON cognito_logins (identity_id, provider, user_identifier);

-- Dataset metadata, written in the transaction that writes its Map's items. Identity ids
-- need no row in cognito_identities: developer credentials may write under ids never issued.
CREATE TABLE cognito_datasets (
    identity_id TEXT NOT NULL,
    dataset_name TEXT NOT NULL,
    pool_id TEXT NOT NULL REFERENCES identity_pools(pool_id) ON DELETE CASCADE,
    map_sid TEXT,
    sync_count INTEGER NOT NULL,
    num_records INTEGER NOT NULL,
    data_storage INTEGER NOT NULL,
    last_modified_by TEXT NOT NULL,
    date_created INTEGER NOT NULL,
    date_modified INTEGER NOT NULL,
    deleted_at_sync_count INTEGER,
    merged_from TEXT,
    PRIMARY KEY (identity_id, dataset_name)
) STRICT, WITHOUT ROWID;
CREATE INDEX cognito_datasets_by_pool ON cognito_datasets (pool_id);

CREATE TABLE cognito_devices (
    device_id TEXT PRIMARY KEY,
    pool_id TEXT NOT NULL REFERENCES identity_pools(pool_id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    token TEXT NOT NULL,
    date_created INTEGER NOT NULL,
    UNIQUE (identity_id, platform, token)
) STRICT;

CREATE TABLE cognito_subscriptions (
    identity_id TEXT NOT NULL,
    dataset_name TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES cognito_devices(device_id) ON DELETE CASCADE,
    PRIMARY KEY (identity_id, dataset_name, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX cognito_subscriptions_by_device ON cognito_subscriptions (device_id);

-- Usage counters kept beside the change log (one ListRecords = one sync session).
CREATE TABLE cognito_pool_usage (
    pool_id TEXT PRIMARY KEY REFERENCES identity_pools(pool_id) ON DELETE CASCADE,
    sync_sessions INTEGER NOT NULL
) STRICT;
