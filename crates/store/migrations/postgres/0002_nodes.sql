-- Several nodes on one database (issue 15).

-- A change's position in the log is (tx, seq): the id of the transaction
-- that wrote it, then its sequence number. Sequence numbers are handed out
-- in allocation order, not commit order: with concurrent writers a later
-- number can commit first, and a reader that had moved past it would skip
-- the earlier one forever. A reader instead takes only the changes of
-- transactions below its snapshot's xmin, every one of which has ended
-- (committed or rolled back): no change can appear there later, so a
-- cursor that moves through them in (tx, seq) order skips nothing.
ALTER TABLE index_log ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX index_log_by_position ON index_log (tx, seq);

-- Followers on other nodes are woken by a notification (PostgreSQL sends
-- one per transaction however many statements raise it).
CREATE FUNCTION files_index_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('confsync_index', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER files_index_notify AFTER INSERT OR UPDATE OR DELETE ON files
    FOR EACH STATEMENT EXECUTE FUNCTION files_index_notify();

CREATE TABLE index_cursors (
    node_id TEXT PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE index_log_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL
);

-- Leases: a node claims a job or a delivery until `locked_until`, and
-- renews it while it works; an expired lease is taken over by another.
ALTER TABLE sync_jobs ADD COLUMN locked_by TEXT;
ALTER TABLE sync_jobs ADD COLUMN locked_until TIMESTAMPTZ;
-- At most one job runs per connection, whoever claims it.
CREATE UNIQUE INDEX sync_jobs_one_running ON sync_jobs (connection_id) WHERE status = 'RUNNING';
ALTER TABLE webhook_outbox ADD COLUMN locked_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN locked_until TIMESTAMPTZ;
