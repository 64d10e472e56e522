-- Text keys compare byte-wise (COLLATE "C"), as on the embedded store, so paging and map key
-- order do not depend on the server's locale. JSON is kept as text: events are served verbatim.
CREATE TABLE meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE services (
    sid TEXT COLLATE "C" PRIMARY KEY,
    unique_name TEXT COLLATE "C" UNIQUE,
    friendly_name TEXT,
    acl_enabled BOOLEAN NOT NULL,
    revision BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    head_seq BIGINT NOT NULL DEFAULT 0,
    pruned_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE objects (
    sid TEXT COLLATE "C" PRIMARY KEY,
    service_sid TEXT COLLATE "C" NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    kind BIGINT NOT NULL,
    unique_name TEXT COLLATE "C",
    data TEXT,
    revision BIGINT NOT NULL,
    next_index BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    date_expires BIGINT,
    created_by TEXT NOT NULL,
    UNIQUE (service_sid, kind, unique_name)
);
CREATE INDEX objects_by_kind ON objects (service_sid, kind, sid);
CREATE INDEX objects_expiring ON objects (date_expires) WHERE date_expires IS NOT NULL;

-- List items use item_key = '' and their index; map items use their key and index 0.
CREATE TABLE items (
    object_sid TEXT COLLATE "C" NOT NULL REFERENCES objects(sid) ON DELETE CASCADE,
    item_key TEXT COLLATE "C" NOT NULL,
    item_index BIGINT NOT NULL,
    data TEXT NOT NULL,
    revision BIGINT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    date_expires BIGINT,
    created_by TEXT NOT NULL,
    PRIMARY KEY (object_sid, item_key, item_index)
);
CREATE INDEX items_expiring ON items (date_expires) WHERE date_expires IS NOT NULL;

CREATE TABLE permissions (
    object_sid TEXT COLLATE "C" NOT NULL REFERENCES objects(sid) ON DELETE CASCADE,
    identity TEXT COLLATE "C" NOT NULL,
    can_read BOOLEAN NOT NULL,
    can_write BOOLEAN NOT NULL,
    can_manage BOOLEAN NOT NULL,
    PRIMARY KEY (object_sid, identity)
);

CREATE TABLE events (
    service_sid TEXT COLLATE "C" NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    object_sid TEXT COLLATE "C" NOT NULL,
    date BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (service_sid, seq)
);
CREATE INDEX events_by_object ON events (object_sid, seq);

CREATE TABLE api_keys (
    sid TEXT COLLATE "C" PRIMARY KEY,
    friendly_name TEXT,
    sealed_secret TEXT NOT NULL,
    date_created BIGINT NOT NULL
);
