-- A listed file's parent (the page or blog post holding it: its container,
-- else its parent) is kept on its row as the parent's file id, instead of
-- looked up for each file of each page listed: two seeks in the files'
-- (connection, kind, external id) index a file, about 40% of SQLite's work
-- on a page of 100 files (issue 18). Triggers keep it whatever writes the
-- files: a file written or moved finds its parent; a page or blog post
-- written finds the children stored before it; one deleted leaves its
-- children without.
ALTER TABLE files ADD COLUMN parent_file_id INTEGER;
UPDATE files SET parent_file_id = (
    SELECT p.id FROM files p WHERE p.connection_id = files.connection_id
    AND p.external_id = COALESCE(files.container_id, files.parent_id)
    AND p.kind IN ('page', 'blogpost'));

-- Each statement an equality on one of the files' indexes (an OR of the
-- two walked all of a connection's files, for each page written).
CREATE TRIGGER files_parent_insert AFTER INSERT ON files
WHEN COALESCE(new.container_id, new.parent_id) IS NOT NULL
BEGIN
    UPDATE files SET parent_file_id = (
        SELECT p.id FROM files p WHERE p.connection_id = new.connection_id
        AND p.external_id = COALESCE(new.container_id, new.parent_id)
        AND p.kind IN ('page', 'blogpost'))
    WHERE id = new.id;
END;

CREATE TRIGGER files_parent_found AFTER INSERT ON files
WHEN new.kind IN ('page', 'blogpost')
BEGIN
    UPDATE files SET parent_file_id = new.id
    WHERE connection_id = new.connection_id AND container_id = new.external_id;
    UPDATE files SET parent_file_id = new.id
    WHERE connection_id = new.connection_id AND parent_id = new.external_id
    AND container_id IS NULL;
END;

CREATE TRIGGER files_parent_update AFTER UPDATE OF parent_id, container_id ON files
WHEN old.parent_id IS NOT new.parent_id OR old.container_id IS NOT new.container_id
BEGIN
    UPDATE files SET parent_file_id = (
        SELECT p.id FROM files p WHERE p.connection_id = new.connection_id
        AND p.external_id = COALESCE(new.container_id, new.parent_id)
        AND p.kind IN ('page', 'blogpost'))
    WHERE id = new.id;
END;

CREATE TRIGGER files_parent_delete AFTER DELETE ON files
WHEN old.kind IN ('page', 'blogpost')
BEGIN
    UPDATE files SET parent_file_id = NULL
    WHERE connection_id = old.connection_id AND container_id = old.external_id
    AND parent_file_id = old.id;
    UPDATE files SET parent_file_id = NULL
    WHERE connection_id = old.connection_id AND parent_id = old.external_id
    AND parent_file_id = old.id;
END;
