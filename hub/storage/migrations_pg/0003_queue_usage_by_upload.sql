-- As SQLite migration 0011: `queue_usage` grows by one statement per upload and
-- per expiry notice (`hub.relay`), not by a trigger on every inserted queue row;
-- the delete trigger stays.

DROP TRIGGER queue_usage_insert ON queue;
DROP FUNCTION queue_usage_insert();
