-- The HTTP API's model: integer ids as Carbon's API hands them out, API
-- keys and customer tokens (hashed), OAuth states, a durable sync queue
-- with the schedule, webhooks with their outbox, organisations' own OAuth
-- apps, and the item tree a picker browses.

-- Carbon's ids are integers; confsync's own ids stay text. Numbers are
-- handed out under the store's writer lock (MAX + 1), never reused while
-- the row lives.
ALTER TABLE organisations ADD COLUMN number INTEGER;
UPDATE organisations SET number = rowid;
CREATE UNIQUE INDEX organisations_by_number ON organisations (number);

ALTER TABLE end_users ADD COLUMN number INTEGER;
ALTER TABLE end_users ADD COLUMN updated_at TEXT;
-- JSON list of source types ("CONFLUENCE") or "ALL"; NULL: the default
-- (every source).
ALTER TABLE end_users ADD COLUMN auto_sync_sources TEXT;
-- Hours between scheduled syncs; NULL: the organisation's default.
ALTER TABLE end_users ADD COLUMN auto_sync_interval INTEGER;
UPDATE end_users SET number = rowid, updated_at = created_at;
CREATE UNIQUE INDEX end_users_by_number ON end_users (number);

ALTER TABLE connections ADD COLUMN data_source_id INTEGER;
ALTER TABLE connections ADD COLUMN context_path TEXT NOT NULL DEFAULT '/wiki';
-- The site as a person opens it (https://acme.atlassian.net), where the
-- API is reached through a gateway.
ALTER TABLE connections ADD COLUMN site_link TEXT;
ALTER TABLE connections ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN auto_sync INTEGER NOT NULL DEFAULT 1;
ALTER TABLE connections ADD COLUMN next_sync_at TEXT;
ALTER TABLE connections ADD COLUMN data_source_tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN last_sync_action TEXT NOT NULL DEFAULT 'ADD';
ALTER TABLE connections ADD COLUMN source_items_synced_at TEXT;
ALTER TABLE connections ADD COLUMN updated_at TEXT;
UPDATE connections SET data_source_id = rowid, updated_at = created_at;
CREATE UNIQUE INDEX connections_by_data_source ON connections (data_source_id);
CREATE INDEX connections_by_schedule ON connections (next_sync_at);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- SHA-256 of the key (keys are 32 random bytes: a slow hash adds nothing).
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Customer access tokens from /auth/v1/access_token, hashed.
CREATE TABLE customer_tokens (
    token_hash TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- OAuth states handed out by /integrations/oauth_url: consumed once.
CREATE TABLE oauth_states (
    nonce TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    -- The request's settings (subdomain, chunking, tags...), as JSON.
    request TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

-- The sync queue. A job is QUEUED, RUNNING, then DONE or FAILED. At most
-- one job of a connection runs at a time; RUNNING jobs of a process that
-- died are queued again at start (the sync resumes from its checkpoints).
CREATE TABLE sync_jobs (
    id INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    -- Files before the run (id -> [version, status]), to tell afterwards
    -- what was created, changed, failed or deleted; kept across a restart.
    snapshot TEXT,
    error TEXT
);
CREATE INDEX sync_jobs_by_status ON sync_jobs (status, id);

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- The signing key, encrypted (it signs every delivery, so it cannot be hashed).
    signing_key BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    status_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Deliveries, written before they are attempted: at least once.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The exact body that is signed and sent.
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at TEXT,
    failed_at TEXT,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, failed_at, next_attempt_at);

-- An organisation's own OAuth app (Carbon's white labeling).
CREATE TABLE white_labels (
    id INTEGER PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    data_source_type TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    client_secret BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organisation_id, data_source_type)
);

-- The item tree (spaces, pages) as items/sync last listed it.
CREATE TABLE source_items (
    id INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    item_type TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_external_id TEXT,
    root_external_id TEXT,
    external_url TEXT,
    is_expandable INTEGER NOT NULL DEFAULT 0,
    synced_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (connection_id, external_id)
);
CREATE INDEX source_items_by_parent ON source_items (connection_id, parent_external_id);
