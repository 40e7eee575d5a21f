-- Who the connected account is, as a person reads it (its email, or its
-- display name where the site hides emails): Carbon Connect shows it.
ALTER TABLE connections ADD COLUMN account_label TEXT;

-- Whether the file picker hides "powered by" branding for this
-- organisation (Carbon's white labeling).
ALTER TABLE organisations ADD COLUMN remove_branding INTEGER NOT NULL DEFAULT 0;

-- A job lists the item tree (a picker's spaces and pages) or syncs files:
-- listing a large site no longer runs inside an HTTP request.
ALTER TABLE sync_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'sync';

-- What a caller deleted stays deleted: a sync (even one running while the
-- delete was answered) does not bring it back until the caller chooses it
-- again (files/sync of the page or its space).
CREATE TABLE deleted_files (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    space_id TEXT,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, kind, external_id)
);
