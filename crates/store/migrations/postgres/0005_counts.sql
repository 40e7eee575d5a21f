-- A page of a customer's files costs the same at 1,000 files and at
-- 1,000,000 (issue 18): a connection's file count is kept as files come
-- and go (once per statement, from its transition table), instead of
-- counted on every listing, and a file's characters are counted once when
-- its Markdown is written and kept on its row, instead of read whole on
-- every listing.
ALTER TABLE connections ADD COLUMN file_count BIGINT NOT NULL DEFAULT 0;
UPDATE connections c SET file_count = (SELECT COUNT(*) FROM files f WHERE f.connection_id = c.id);

CREATE FUNCTION files_counted_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE connections c SET file_count = c.file_count + n.n
    FROM (SELECT connection_id, COUNT(*) AS n FROM inserted GROUP BY connection_id) n
    WHERE c.id = n.connection_id;
    RETURN NULL;
END
$$;
CREATE FUNCTION files_counted_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE connections c SET file_count = c.file_count - n.n
    FROM (SELECT connection_id, COUNT(*) AS n FROM removed GROUP BY connection_id) n
    WHERE c.id = n.connection_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER files_count_insert AFTER INSERT ON files
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION files_counted_in();
CREATE TRIGGER files_count_delete AFTER DELETE ON files
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION files_counted_out();

ALTER TABLE files ADD COLUMN characters BIGINT;
UPDATE files f SET characters = (SELECT LENGTH(markdown) FROM file_contents fc WHERE fc.file_id = f.id);
