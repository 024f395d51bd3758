-- Statistics by area (issue 13): each published office's area, fixed at
-- publication like its organisation, and the publication's sums per
-- (organisation, area) instead of per organisation, so that region,
-- organisation and area tables all read a few summed rows
-- (docs/statistics.md, "Storage" and "Areas").
--
-- Periods published before this migration did not record an area. They get
-- each office's area in the directory now (`''` for an office without one or
-- no longer in the directory): the closest to "at publication" there is, and
-- from now on fixed like any other publication's. Organisations, reports and
-- so every region, organisation and office number stay exactly as published.
ALTER TABLE stats_published_reports ADD COLUMN area TEXT NOT NULL DEFAULT '';

UPDATE stats_published_reports
SET area = coalesce((SELECT s.area FROM sites s WHERE s.node_id = stats_published_reports.office), '');

-- The sums per organisation cannot be split by area without summing the
-- reports again, so they are dropped and every published period is marked
-- unsummed: its first read sums it per (organisation, area) (hub/stats/store.py
-- `ensure_summed`, as after migration 0008), one period at a time, instead of
-- sorting every stored cell here while the hub waits to start. The sums are
-- made from the same published reports, so every number is the same.
DROP TABLE stats_published_sums;

-- Per (period, cell, organisation, area): the summed count, the cell key (the
-- sum of the offices' cell keys modulo 2^32) and the offices whose count is
-- non-zero. `org` and `area` are those recorded in stats_published_reports.
CREATE TABLE stats_published_sums (
    period   TEXT NOT NULL REFERENCES stats_publications (period),
    cell_id  INTEGER NOT NULL REFERENCES stats_cells (id),
    org      TEXT NOT NULL,
    area     TEXT NOT NULL,
    count    INTEGER NOT NULL CHECK (count > 0),
    cell_key INTEGER NOT NULL CHECK (cell_key >= 0 AND cell_key < 4294967296),
    offices  INTEGER NOT NULL CHECK (offices > 0),
    PRIMARY KEY (period, cell_id, org, area)
) WITHOUT ROWID;

UPDATE stats_publications SET summed = 0;
