-- The newest audit chain head each office's node signed and sent
-- (POST /v1/audit/head, docs/hub.md, "Audit heads"). Only the newest per site:
-- the hash, the signed time (from the document, to refuse older heads) and the
-- signed document itself, which the node fetches back to check that its newest
-- audit entries were not deleted or rewritten. The hub learns nothing else.
CREATE TABLE audit_heads (
    node_id TEXT PRIMARY KEY REFERENCES sites (node_id),
    at      INTEGER NOT NULL,
    hash    TEXT NOT NULL,
    doc     BLOB NOT NULL
) WITHOUT ROWID;
