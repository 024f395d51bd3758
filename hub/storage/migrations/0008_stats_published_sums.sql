-- Statistics: each published period's cells summed per organisation, written
-- in the transaction that publishes the period (hub/stats/store.py `publish`).
-- A publication never changes, so neither do its sums: region and
-- organisation tables read a few rows per number from this table instead of
-- summing every office's cells at each request (docs/statistics.md, "Storage").
--
-- Per (period, cell, organisation): the summed count, the cell key (the sum of
-- the offices' cell keys modulo 2^32) and the offices whose count is non-zero
-- (every stored cell count is non-zero). `org` is the organisation recorded in
-- stats_published_reports at publication.
CREATE TABLE stats_published_sums (
    period   TEXT NOT NULL REFERENCES stats_publications (period),
    cell_id  INTEGER NOT NULL REFERENCES stats_cells (id),
    org      TEXT NOT NULL,
    count    INTEGER NOT NULL CHECK (count > 0),
    cell_key INTEGER NOT NULL CHECK (cell_key >= 0 AND cell_key < 4294967296),
    offices  INTEGER NOT NULL CHECK (offices > 0),
    PRIMARY KEY (period, cell_id, org)
) WITHOUT ROWID;

-- 1 once the period's sums are in stats_published_sums. Periods published
-- before this migration are summed at their first read (hub/stats/publication.py
-- `due`), one period at a time: summing every period here, in one statement,
-- would sort every stored cell while the hub waits to start.
ALTER TABLE stats_publications ADD COLUMN summed INTEGER NOT NULL DEFAULT 0
    CHECK (summed IN (0, 1));
