-- The office's statistics secret (protocol/cellkeys.py): the key of the keyed
-- hash that gives each counted record its cell key. It never leaves the node,
-- not even to the hub; losing it is harmless (the next revision of an
-- unpublished period simply carries other keys). Created on first use.
CREATE TABLE stats_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL CHECK (length(secret) = 32)
);
