-- Matrix accounts: users and their devices (each device holds the id of its current token).
CREATE TABLE matrix_users (
    user_id TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT,
    display_name TEXT,
    avatar_url TEXT,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE,
    date_created BIGINT NOT NULL
);

CREATE TABLE matrix_devices (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES matrix_users(user_id) ON DELETE CASCADE,
    device_id TEXT COLLATE "C" NOT NULL,
    display_name TEXT,
    token_id TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Filters a user uploaded, as uploaded (validated first).
CREATE TABLE matrix_filters (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES matrix_users(user_id) ON DELETE CASCADE,
    filter_id TEXT COLLATE "C" NOT NULL,
    filter TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- Uploaded media (`mxc://<server>/<media_id>`), content included.
CREATE TABLE matrix_media (
    media_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT NOT NULL,
    content_type TEXT,
    filename TEXT,
    content BYTEA NOT NULL,
    date_created BIGINT NOT NULL
);
