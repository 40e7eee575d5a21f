-- Polling for recent changes between full syncs (issue 17): when a
-- connection is next polled, and from when its last poll looked.
ALTER TABLE connections ADD COLUMN next_poll_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN polled_at TIMESTAMPTZ;
CREATE INDEX connections_by_poll ON connections (next_poll_at);
