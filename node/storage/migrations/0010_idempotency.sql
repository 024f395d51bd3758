-- Answers to requests an app sent with an Idempotency-Key header
-- (node/storage/idempotency.py): a retry after a lost answer gets the first
-- answer again instead of making a second case, consent or referral. The row
-- is written in the same transaction as the change. fingerprint: SHA-256 of
-- the method, path, query and body, so the key cannot be reused for another
-- request. body may hold client data (it is the answer the app got): rows go
-- when the case they belong to is erased (case_id) and after a day.
CREATE TABLE idempotency (
    app         TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    case_id     TEXT,
    created     INTEGER NOT NULL,
    PRIMARY KEY (app, key)
);
CREATE INDEX idempotency_case ON idempotency(case_id);
CREATE INDEX idempotency_created ON idempotency(created);
