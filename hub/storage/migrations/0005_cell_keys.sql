-- Statistics protected by the cell key method (docs/statistics.md).
--
-- * Every cell of a report of dataset version 2 carries its cell key (the sum of
--   its records' keys modulo 2^32, computed by the node). Reports stored before
--   this migration are version 1, have no keys, and are kept for the audit but
--   never published; their offices' nodes send version 2 revisions on their own
--   (the cells changed, so the node sees a new revision to send).
-- * The interned cell identities were called "cell keys"; that name now belongs
--   to the perturbation keys, so their table is renamed.
-- * A period is published once: when its reporting deadline has passed, the
--   newest revision each office had sent by then is recorded here and only
--   those reports are ever tabulated for that period. Later revisions are stored
--   and audited but change no published number.
ALTER TABLE stats_cell_keys RENAME TO stats_cells;
ALTER TABLE stats_reports ADD COLUMN dataset_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE stats_report_cells ADD COLUMN cell_key INTEGER NOT NULL DEFAULT 0
    CHECK (cell_key >= 0 AND cell_key < 4294967296);

CREATE TABLE stats_publications (
    period    TEXT PRIMARY KEY,
    published INTEGER NOT NULL,          -- hub clock when the numbers were fixed
    cutoff    INTEGER NOT NULL,          -- reports received before this instant count
    reports   INTEGER NOT NULL           -- how many office reports the numbers are made of
);

-- `org` is the office's organisation at publication: a published number never
-- moves to another organisation's row when a site is changed later.
CREATE TABLE stats_published_reports (
    period    TEXT NOT NULL REFERENCES stats_publications (period),
    report_id INTEGER NOT NULL REFERENCES stats_reports (id),
    office    TEXT NOT NULL,
    org       TEXT NOT NULL,
    PRIMARY KEY (period, report_id)
) WITHOUT ROWID;
