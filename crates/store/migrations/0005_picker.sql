-- Who the connected account is, as a person reads it (its email, or its
-- display name where the site hides emails): Carbon Connect shows it.
ALTER TABLE connections ADD COLUMN account_label TEXT;

-- Whether the file picker hides "powered by" branding for this
-- organisation (Carbon's white labeling).
ALTER TABLE organisations ADD COLUMN remove_branding INTEGER NOT NULL DEFAULT 0;

-- A job lists the item tree (a picker's spaces and pages) or syncs files:
-- listing a large site no longer runs inside an HTTP request.
ALTER TABLE sync_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'sync';
