-- Matrix accounts: users and their devices (each device holds the id of its current token).
CREATE TABLE matrix_users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    display_name TEXT,
    avatar_url TEXT,
    deactivated INTEGER NOT NULL DEFAULT 0,
    date_created INTEGER NOT NULL
) STRICT;

CREATE TABLE matrix_devices (
    user_id TEXT NOT NULL REFERENCES matrix_users(user_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    display_name TEXT,
    token_id TEXT NOT NULL,
    date_created INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) STRICT, WITHOUT ROWID;

-- Filters a user uploaded, as uploaded (validated first).
CREATE TABLE matrix_filters (
    user_id TEXT NOT NULL REFERENCES matrix_users(user_id) ON DELETE CASCADE,
    filter_id TEXT NOT NULL,
    filter TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
) STRICT, WITHOUT ROWID;

-- Uploaded media (`mxc://<server>/<media_id>`), content included.
CREATE TABLE matrix_media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content_type TEXT,
    filename TEXT,
    content BLOB NOT NULL,
    date_created INTEGER NOT NULL
) STRICT;
