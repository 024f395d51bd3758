-- An administrator can dismiss the warning of a report the hub refused
-- (`mbe-node stats dismiss`): when the unix time is set, the status views no
-- longer warn about that revision. A newer revision of the period replaces it.
ALTER TABLE stats_reports ADD COLUMN dismissed INTEGER;
