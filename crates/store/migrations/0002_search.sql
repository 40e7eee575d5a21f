-- Search: Markdown and chunks of every file, who may read what, and the
-- log that keeps the search index in step with the store.

-- The Markdown a body converts to (pages, blog posts, comments) or the
-- extracted text (attachments); the chunks below are cut from it.
ALTER TABLE file_contents ADD COLUMN markdown TEXT;

-- A file's own read restriction in Confluence, as JSON:
-- NULL: none; {"users": [account ids], "groups": [group ids]};
-- {"unknown": true}: not known (yet), so nobody passes it.
ALTER TABLE files ADD COLUMN read_restriction TEXT;
-- The developer's own key/value tags (Carbon's tags), as a JSON object.
ALTER TABLE files ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';

-- Who holds read in the space, as JSON {"users": [...], "groups": [...],
-- "anonymous": bool}; NULL while not known (nobody passes it).
ALTER TABLE spaces ADD COLUMN read_principals TEXT;
-- Zendesk's viewer permissions: 'everyone', or 'segments' with up to 10
-- user segment ids.
ALTER TABLE spaces ADD COLUMN visibility TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE spaces ADD COLUMN segment_ids TEXT NOT NULL DEFAULT '[]';

-- Whether searches apply Confluence's own permissions (space permissions
-- and page restrictions) on top of the viewer permissions.
ALTER TABLE connections ADD COLUMN enforce_permissions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN chunk_size INTEGER NOT NULL DEFAULT 1500;
ALTER TABLE connections ADD COLUMN chunk_overlap INTEGER NOT NULL DEFAULT 20;

CREATE TABLE chunks (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    text TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    start_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    -- f32 little endian, once an embedding provider computed it.
    vector BLOB,
    PRIMARY KEY (file_id, idx)
);

-- User segments (Zendesk's): who a space's viewer permissions admit.
CREATE TABLE segments (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- 'signed_in' or 'staff' (agents and admins)
    user_type TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    or_tags TEXT NOT NULL DEFAULT '[]',
    organization_ids TEXT NOT NULL DEFAULT '[]',
    group_ids TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);

-- Files whose indexed form may have changed, in commit order. Written by
-- triggers, so in the same transaction as the change itself: the index
-- applies the log after the sequence number it last committed, which is
-- how an index behind the store (a crash between the two) catches up.
-- `subtree` asks for the file's descendants too (their inherited
-- restrictions changed). AUTOINCREMENT: a number is never handed out
-- twice, even after the log is pruned empty.
CREATE TABLE index_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL,
    subtree INTEGER NOT NULL DEFAULT 0
);

-- A new page may have children stored before it (a listing need not put
-- parents first): their inherited restrictions are now known.
CREATE TRIGGER files_index_insert AFTER INSERT ON files BEGIN
    INSERT INTO index_log (file_id, subtree) VALUES (new.id, new.kind = 'page');
END;

CREATE TRIGGER files_index_update AFTER UPDATE OF
    space_id, parent_id, container_id, title, url, version, content_hash, labels, status,
    read_restriction, tags
ON files
WHEN old.space_id IS NOT new.space_id OR old.parent_id IS NOT new.parent_id
    OR old.container_id IS NOT new.container_id OR old.title IS NOT new.title
    OR old.url IS NOT new.url OR old.version IS NOT new.version
    OR old.content_hash IS NOT new.content_hash OR old.labels IS NOT new.labels
    OR old.status IS NOT new.status OR old.read_restriction IS NOT new.read_restriction
    OR old.tags IS NOT new.tags
BEGIN
    INSERT INTO index_log (file_id, subtree) VALUES (
        new.id,
        old.parent_id IS NOT new.parent_id OR old.read_restriction IS NOT new.read_restriction
    );
END;

CREATE TRIGGER files_index_delete AFTER DELETE ON files BEGIN
    INSERT INTO index_log (file_id, subtree) VALUES (old.id, 0);
END;

CREATE INDEX files_by_parent ON files (connection_id, parent_id);
