-- Security (issue 11): ids are never handed out twice, customer tokens
-- carry the viewer they were minted for.

-- Carbon's integer ids come from counters that only go up, so that an id
-- deleted in one organisation never names another organisation's object
-- (MAX + 1 handed a deleted data source's id to the next connection).
-- A row inserted without its number gets the next one from a trigger, in
-- the inserting statement.
CREATE TABLE id_counters (
    name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
INSERT INTO id_counters (name, last) VALUES
    ('organisation', (SELECT COALESCE(MAX(number), 0) FROM organisations)),
    ('end_user', (SELECT COALESCE(MAX(number), 0) FROM end_users)),
    ('data_source', (SELECT COALESCE(MAX(data_source_id), 0) FROM connections));

CREATE TRIGGER organisations_number AFTER INSERT ON organisations WHEN NEW.number IS NULL
BEGIN
    UPDATE id_counters SET last = last + 1 WHERE name = 'organisation';
    UPDATE organisations SET number = (SELECT last FROM id_counters WHERE name = 'organisation')
        WHERE id = NEW.id;
END;

CREATE TRIGGER end_users_number AFTER INSERT ON end_users WHEN NEW.number IS NULL
BEGIN
    UPDATE id_counters SET last = last + 1 WHERE name = 'end_user';
    UPDATE end_users SET number = (SELECT last FROM id_counters WHERE name = 'end_user')
        WHERE id = NEW.id;
END;

CREATE TRIGGER connections_number AFTER INSERT ON connections WHEN NEW.data_source_id IS NULL
BEGIN
    UPDATE id_counters SET last = last + 1 WHERE name = 'data_source';
    UPDATE connections SET data_source_id = (SELECT last FROM id_counters WHERE name = 'data_source')
        WHERE id = NEW.id;
END;

-- Tables whose integer ids callers see or update by: AUTOINCREMENT, so
-- that a deleted row's id is never handed out again (webhook deliveries
-- are marked by id; a reused id let one organisation's delivery mark
-- another's event delivered). SQLite cannot change a key in place: each
-- table is copied into its new form. The outbox is dropped before the
-- webhooks it references, so that no cascade runs.
CREATE TABLE webhooks_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    signing_key BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    status_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO webhooks_new SELECT id, organisation_id, url, signing_key, status, status_reason,
    created_at, updated_at FROM webhooks;

CREATE TABLE webhook_outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks_new (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at TEXT,
    failed_at TEXT,
    last_error TEXT
);
INSERT INTO webhook_outbox_new SELECT id, webhook_id, body, attempts, next_attempt_at,
    delivered_at, failed_at, last_error FROM webhook_outbox;
DROP TABLE webhook_outbox;
DROP TABLE webhooks;
ALTER TABLE webhooks_new RENAME TO webhooks;
ALTER TABLE webhook_outbox_new RENAME TO webhook_outbox;
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, failed_at, next_attempt_at);

CREATE TABLE white_labels_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    data_source_type TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    client_secret BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organisation_id, data_source_type)
);
INSERT INTO white_labels_new SELECT id, organisation_id, data_source_type, client_id,
    redirect_uri, client_secret, created_at, updated_at FROM white_labels;
DROP TABLE white_labels;
ALTER TABLE white_labels_new RENAME TO white_labels;

-- The viewer a customer token was minted for (index::Viewer as JSON; NULL:
-- the narrowest viewer, who sees only what everyone may see).
ALTER TABLE customer_tokens ADD COLUMN viewer TEXT;
