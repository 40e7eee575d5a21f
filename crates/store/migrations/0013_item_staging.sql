-- An item listing (the picker's tree) is written here as it goes, a
-- listing page at a time, and moved into source_items in one transaction
-- once complete (finish_source_items), with each page's parent settled
-- and each item's children known: readers never see a half-settled tree,
-- and no space is held in memory whole (issue 18).
CREATE TABLE source_item_staging (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    listing TEXT NOT NULL,
    external_id TEXT NOT NULL,
    item_type TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_external_id TEXT,
    root_external_id TEXT,
    external_url TEXT,
    PRIMARY KEY (connection_id, external_id)
);
CREATE INDEX source_item_staging_by_parent
    ON source_item_staging (connection_id, parent_external_id);
