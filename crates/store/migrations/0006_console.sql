-- The admin console: a knowledge administrator's account, sign-in links,
-- sessions, and what each admin did. An admin's connections belong to the
-- organisation itself (connections.end_user_id is NULL) and remember who
-- connected them.

CREATE TABLE admins (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- Lower case: one sign-in page, so an email names one admin.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Argon2id in PHC form; NULL until a password is set (sign-in links only).
    password_hash TEXT,
    created_at TEXT NOT NULL
);

-- One-time sign-in links, hashed (SHA-256: 32 random bytes).
CREATE TABLE admin_links (
    token_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

-- Sessions, hashed; each with the CSRF token its forms carry.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id);

-- Every console action, with the admin who did it (the name too: the
-- record outlives the account).
CREATE TABLE admin_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    admin_id TEXT,
    admin_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX admin_actions_by_org ON admin_actions (organisation_id, id);

ALTER TABLE connections ADD COLUMN connected_by TEXT;

-- The console lists an organisation's own connections.
CREATE INDEX connections_by_org ON connections (organisation_id, end_user_id);

-- Spaces an admin removed from a connection: a sync that was already
-- running (its spaces read before the removal) writes nothing of them
-- back. Choosing the space again clears it.
CREATE TABLE removed_spaces (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    space_id TEXT NOT NULL,
    space_key TEXT NOT NULL,
    removed_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, space_id)
);
