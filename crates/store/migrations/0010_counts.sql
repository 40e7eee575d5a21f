-- A page of a customer's files costs the same at 1,000 files and at
-- 1,000,000 (issue 18): a connection's file count is kept as files come
-- and go, instead of counted on every listing, and a file's characters
-- are counted once when its Markdown is written and kept on its row,
-- instead of read whole on every listing.
ALTER TABLE connections ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0;
UPDATE connections SET file_count = (SELECT COUNT(*) FROM files WHERE files.connection_id = connections.id);
CREATE TRIGGER files_count_insert AFTER INSERT ON files BEGIN
    UPDATE connections SET file_count = file_count + 1 WHERE id = new.connection_id;
END;
CREATE TRIGGER files_count_delete AFTER DELETE ON files BEGIN
    UPDATE connections SET file_count = file_count - 1 WHERE id = old.connection_id;
END;

ALTER TABLE files ADD COLUMN characters INTEGER;
UPDATE files SET characters = (SELECT LENGTH(markdown) FROM file_contents fc WHERE fc.file_id = files.id);
