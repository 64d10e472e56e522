CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS services (
    sid TEXT PRIMARY KEY,
    unique_name TEXT UNIQUE,
    friendly_name TEXT,
    acl_enabled INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    date_created INTEGER NOT NULL,
    date_updated INTEGER NOT NULL,
    head_seq INTEGER NOT NULL DEFAULT 0,
    pruned_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE IF NOT EXISTS objects (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    unique_name TEXT,
    data TEXT,
    revision INTEGER NOT NULL,
    next_index INTEGER NOT NULL,
    date_created INTEGER NOT NULL,
    date_updated INTEGER NOT NULL,
    date_expires INTEGER,
    created_by TEXT NOT NULL,
    UNIQUE (service_sid, kind, unique_name)
) STRICT;
CREATE INDEX IF NOT EXISTS objects_by_kind ON objects (service_sid, kind, sid);
CREATE INDEX IF NOT EXISTS objects_expiring ON objects (date_expires) WHERE date_expires IS NOT NULL;

-- List items use item_key = '' and their index; map items use their key and index 0.
CREATE TABLE IF NOT EXISTS items (
    object_sid TEXT NOT NULL REFERENCES objects(sid) ON DELETE CASCADE,
    item_key TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    data TEXT NOT NULL,
    revision INTEGER NOT NULL,
    date_created INTEGER NOT NULL,
    date_updated INTEGER NOT NULL,
    date_expires INTEGER,
    created_by TEXT NOT NULL,
    PRIMARY KEY (object_sid, item_key, item_index)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expiring ON items (date_expires) WHERE date_expires IS NOT NULL;

CREATE TABLE IF NOT EXISTS permissions (
    object_sid TEXT NOT NULL REFERENCES objects(sid) ON DELETE CASCADE,
    identity TEXT NOT NULL,
    can_read INTEGER NOT NULL,
    can_write INTEGER NOT NULL,
    can_manage INTEGER NOT NULL,
    PRIMARY KEY (object_sid, identity)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    service_sid TEXT NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    object_sid TEXT NOT NULL,
    date INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (service_sid, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_object ON events (object_sid, seq);

CREATE TABLE IF NOT EXISTS api_keys (
    sid TEXT PRIMARY KEY,
    friendly_name TEXT,
    sealed_secret TEXT NOT NULL,
    date_created INTEGER NOT NULL
) STRICT;
