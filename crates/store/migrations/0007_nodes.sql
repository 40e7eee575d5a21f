-- Several readers of one index log (issue 15). On SQLite one process
-- writes at a time, so a change's sequence number is its commit order and
-- `tx` stays 0; the column is here so that both backends share a shape.
ALTER TABLE index_log ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;

-- Each index replica's position in the log, and when it last said so:
-- the log is pruned only below every live replica's position.
CREATE TABLE index_cursors (
    node_id TEXT PRIMARY KEY,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    seen_at TEXT NOT NULL
);

-- How far the log has been pruned: a replica behind it must rebuild.
CREATE TABLE index_log_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL
);

-- Leases: a node claims a job or a delivery until `locked_until`, and
-- renews it while it works; an expired lease is taken over by another.
ALTER TABLE sync_jobs ADD COLUMN locked_by TEXT;
ALTER TABLE sync_jobs ADD COLUMN locked_until TEXT;
-- At most one job runs per connection, whoever claims it.
CREATE UNIQUE INDEX sync_jobs_one_running ON sync_jobs (connection_id) WHERE status = 'RUNNING';
ALTER TABLE webhook_outbox ADD COLUMN locked_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN locked_until TEXT;
