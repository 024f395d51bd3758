-- A hub may run as several `mbe-hub serve` processes (one database, one set of
-- keys) at several URLs: the node keeps them in the administrator's order, the
-- first preferred, as a JSON array of normalised URLs (node/sync/hub_urls.py).
-- `hub_url` stays the first of them. An enrolled node keeps its one URL.
ALTER TABLE enrollment ADD COLUMN hub_urls TEXT NOT NULL DEFAULT '[]';
UPDATE enrollment SET hub_urls = json_array(hub_url);
