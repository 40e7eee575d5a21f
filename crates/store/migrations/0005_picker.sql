-- Who the connected account is, as a person reads it (its email, or its
-- display name where the site hides emails): Carbon Connect shows it.
ALTER TABLE connections ADD COLUMN account_label TEXT;

-- Whether the file picker hides "powered by" branding for this
-- organisation (Carbon's white labeling).
ALTER TABLE organisations ADD COLUMN remove_branding INTEGER NOT NULL DEFAULT 0;
