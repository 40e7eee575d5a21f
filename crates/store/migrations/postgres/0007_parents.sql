-- A listed file's parent (the page or blog post holding it: its container,
-- else its parent) is kept on its row as the parent's file id, instead of
-- looked up for each file of each page listed (issue 18). Triggers keep it
-- whatever writes the files, as SQLite's do: a file written or moved finds
-- its parent (before the row is written); a page or blog post written finds
-- the children stored before it; one deleted leaves its children without.
ALTER TABLE files ADD COLUMN parent_file_id BIGINT;
UPDATE files f SET parent_file_id = p.id FROM files p
WHERE p.connection_id = f.connection_id
AND p.external_id = COALESCE(f.container_id, f.parent_id)
AND p.kind IN ('page', 'blogpost');

CREATE FUNCTION files_parent_own() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.parent_id IS DISTINCT FROM NEW.parent_id
        OR OLD.container_id IS DISTINCT FROM NEW.container_id THEN
        NEW.parent_file_id := (
            SELECT p.id FROM files p WHERE p.connection_id = NEW.connection_id
            AND p.external_id = COALESCE(NEW.container_id, NEW.parent_id)
            AND p.kind IN ('page', 'blogpost'));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER files_parent_own BEFORE INSERT OR UPDATE OF parent_id, container_id ON files
    FOR EACH ROW EXECUTE FUNCTION files_parent_own();

CREATE FUNCTION files_parent_found() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each an equality on one of the files' indexes.
    UPDATE files SET parent_file_id = NEW.id
    WHERE connection_id = NEW.connection_id AND container_id = NEW.external_id;
    UPDATE files SET parent_file_id = NEW.id
    WHERE connection_id = NEW.connection_id AND parent_id = NEW.external_id
    AND container_id IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER files_parent_found AFTER INSERT ON files
    FOR EACH ROW WHEN (NEW.kind IN ('page', 'blogpost')) EXECUTE FUNCTION files_parent_found();

CREATE FUNCTION files_parent_lost() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE files SET parent_file_id = NULL
    WHERE connection_id = OLD.connection_id AND container_id = OLD.external_id
    AND parent_file_id = OLD.id;
    UPDATE files SET parent_file_id = NULL
    WHERE connection_id = OLD.connection_id AND parent_id = OLD.external_id
    AND parent_file_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER files_parent_lost AFTER DELETE ON files
    FOR EACH ROW WHEN (OLD.kind IN ('page', 'blogpost')) EXECUTE FUNCTION files_parent_lost();
