-- Polling for recent changes between full syncs (issue 17): when a
-- connection is next polled, and from when its last poll looked.
ALTER TABLE connections ADD COLUMN next_poll_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN polled_at TIMESTAMPTZ;
CREATE INDEX connections_by_poll ON connections (next_poll_at);

-- A page of a customer's files in date order (Carbon's default orders)
-- read from an index, without reading every file's row (issue 18).
CREATE INDEX files_by_created ON files (connection_id, created_at, id);
CREATE INDEX files_by_updated ON files (connection_id, updated_at, id);
