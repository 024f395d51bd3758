-- Statistics reports this node sealed for the hub, one row per (period, revision).
-- state: 'pending' (sealed, not yet confirmed: retried with the same bytes),
-- 'submitted' (the hub answered stored), 'rejected' (the hub refused it for good;
-- the revision number is never reused). cells_hash is the SHA-256 of the
-- canonical cells, so an unchanged period is never re-sent. The envelope is
-- kept only while pending: re-sending the same bytes after a lost answer is
-- idempotent at the hub.
CREATE TABLE stats_reports (
    period TEXT NOT NULL,
    revision INTEGER NOT NULL,
    cells_hash TEXT NOT NULL,
    cell_count INTEGER NOT NULL,
    generated INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'rejected')),
    msg_id TEXT NOT NULL,
    envelope BLOB,
    expires INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    submitted_at INTEGER,
    PRIMARY KEY (period, revision)
);
CREATE INDEX stats_reports_pending ON stats_reports(state, next_attempt);
