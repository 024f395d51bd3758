-- The tamper-evident audit log (docs/node.md, "Audit").
--
-- actor: the pseudonymous id of the acting staff member (header X-Acting-User),
-- NULL when the app sent none. hash: the entry's link in the hash chain
-- (node/domain/audit_chain.py), written by the one writer in
-- node/storage/audit_chain.py in the transaction of the entry itself.
ALTER TABLE audit ADD COLUMN actor TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;

-- One row. first_seq: the seq the chain starts at (NULL until the first entry);
-- a NULL hash from there on is a break, never something to chain again.
-- legacy_until: entries up to this seq were written before the chain existed;
-- the node chains them once when it first opens the upgraded database and then
-- sets it to NULL. hub_*: the newest head the hub accepted (its signed time and
-- hash, and when the hub confirmed it, by the node's clock).
CREATE TABLE audit_chain (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    first_seq     INTEGER,
    legacy_until  INTEGER,
    hub_at        INTEGER,
    hub_hash      TEXT,
    hub_confirmed INTEGER
);
INSERT INTO audit_chain (id, first_seq, legacy_until)
    SELECT 1, MIN(seq), MAX(seq) FROM audit;
