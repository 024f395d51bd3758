-- As SQLite migration 0010: when each periodic job last started (hub/storage/jobs.py).
CREATE TABLE job_runs (
    name     TEXT COLLATE "C" PRIMARY KEY,
    last_run BIGINT NOT NULL
);
