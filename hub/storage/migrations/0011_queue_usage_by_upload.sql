-- `queue_usage` grows by one statement per upload (`hub.relay.store_rows`) and per
-- expiry notice (`hub.relay._notify`), in the transaction that inserts the rows,
-- instead of by a trigger on every inserted queue row (issue 11: the trigger
-- was one more upsert per message on the ingest path). Every row enters `queue`
-- through those two functions; the copy to PostgreSQL (`hub/db_copy.py`) copies
-- the counts as they are. Deletes still go by the trigger `queue_usage_delete`
-- (acks, expiry, damaged rows), which needs no change. The counts stay as they
-- are: they already match the queue.

DROP TRIGGER queue_usage_insert;
