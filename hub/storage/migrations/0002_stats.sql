-- Statistics (docs/statistics.md, "Storage shape"): every revision of every
-- office's report, as counts only. A report row holds routing and time
-- metadata; its numbers are rows of `stats_report_cells` keyed by a small
-- interned cell id. Nothing here describes a person.
--
-- Every revision is kept; `current` marks the newest one per (period, office)
-- and is flipped in the same transaction that inserts a new revision. The
-- first revision's `received` decides whether an office reported on time.

CREATE TABLE stats_reports (
    id        INTEGER PRIMARY KEY,
    office    TEXT NOT NULL REFERENCES sites (node_id),
    period    TEXT NOT NULL,
    revision  INTEGER NOT NULL CHECK (revision >= 1),
    generated INTEGER NOT NULL,          -- from the report (node clock)
    received  INTEGER NOT NULL,          -- hub clock
    msg_id    TEXT NOT NULL,             -- envelope id: a retry of the same message is idempotent
    digest    BLOB NOT NULL,             -- SHA-256 of the report's canonical encoding
    current   INTEGER NOT NULL CHECK (current IN (0, 1)),
    UNIQUE (office, period, revision)
);
CREATE UNIQUE INDEX stats_reports_current ON stats_reports (period, office) WHERE current = 1;

CREATE TABLE stats_cell_keys (
    id      INTEGER PRIMARY KEY,
    measure TEXT NOT NULL,
    dims    TEXT NOT NULL,               -- hub.stats.cellkeys.dims_text, '' for the total
    UNIQUE (measure, dims)
);

CREATE TABLE stats_report_cells (
    report_id INTEGER NOT NULL REFERENCES stats_reports (id),
    cell_id   INTEGER NOT NULL REFERENCES stats_cell_keys (id),
    count     INTEGER NOT NULL CHECK (count > 0),   -- absent means 0
    PRIMARY KEY (report_id, cell_id)
) WITHOUT ROWID;

-- Dashboard sessions of coordinators: only the SHA-256 of the session id is
-- stored; the session ends with its expiry, at logout, or when its token is
-- revoked.
CREATE TABLE coordinator_sessions (
    id_hash    BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL REFERENCES tokens (token_hash),
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX coordinator_sessions_expires ON coordinator_sessions (expires);
