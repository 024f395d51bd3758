-- Bytes of envelopes queued per sender, kept by triggers in the same
-- transaction as every insert and delete on `queue`, so the per-node quota
-- (`relay.max_queue_bytes_per_node`) costs one lookup per upload instead of a
-- scan of the sender's queue.

CREATE TABLE queue_usage (
    sender TEXT PRIMARY KEY,
    bytes  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO queue_usage (sender, bytes)
SELECT sender, sum(length(envelope)) FROM queue GROUP BY sender;

CREATE TRIGGER queue_usage_insert AFTER INSERT ON queue
BEGIN
    INSERT INTO queue_usage (sender, bytes) VALUES (NEW.sender, length(NEW.envelope))
    ON CONFLICT (sender) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER queue_usage_delete AFTER DELETE ON queue
BEGIN
    UPDATE queue_usage SET bytes = bytes - length(OLD.envelope) WHERE sender = OLD.sender;
END;
