-- When each periodic job (expiry, directory re-signing, statistics publication, ...)
-- last started. A hub process runs a job only after claiming it here with one
-- conditional UPDATE, so that several hub processes on one database run each job
-- once per interval between them (hub/storage/jobs.py).
CREATE TABLE job_runs (
    name     TEXT PRIMARY KEY,
    last_run INTEGER NOT NULL
) WITHOUT ROWID;
