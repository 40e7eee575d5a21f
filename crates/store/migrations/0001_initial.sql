-- confsync's model: organisations, their end users, connections to
-- Confluence sites, and what each connection has synced.
-- Portable SQL: the PostgreSQL backend carries the same tables.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE end_users (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (organisation_id, customer_id)
);

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    end_user_id TEXT REFERENCES end_users (id) ON DELETE CASCADE,
    site_url TEXT NOT NULL,
    -- api_token, pat or oauth; the secrets themselves are in credentials,
    -- encrypted (nonce || ciphertext).
    auth_kind TEXT NOT NULL,
    account TEXT NOT NULL,
    credentials BLOB NOT NULL,
    allow_personal_spaces INTEGER NOT NULL DEFAULT 1,
    -- JSON: {"spaces": ["KEY", ...]} or {} for every readable space.
    scope TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    last_synced_at TEXT
);

CREATE TABLE spaces (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    space_id TEXT NOT NULL,
    space_key TEXT NOT NULL,
    name TEXT NOT NULL,
    space_type TEXT NOT NULL,
    status TEXT NOT NULL,
    homepage_id TEXT,
    seen_run INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, space_id)
);

-- Pages, blog posts, attachments and footer comments.
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    space_id TEXT,
    parent_id TEXT,
    container_id TEXT,
    title TEXT NOT NULL,
    url TEXT,
    version INTEGER NOT NULL,
    content_hash TEXT,
    media_type TEXT,
    size_bytes INTEGER,
    labels TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    error TEXT,
    seen_run INTEGER NOT NULL DEFAULT 0,
    created_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (connection_id, kind, external_id)
);

CREATE INDEX files_by_space ON files (connection_id, space_id, kind);
CREATE INDEX files_by_container ON files (connection_id, container_id);

CREATE TABLE file_contents (
    file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    -- The storage-format body (pages, blog posts, comments), or the text
    -- extracted from an attachment.
    body TEXT NOT NULL
);

CREATE TABLE checkpoints (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connection_id, name)
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    stats TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
