-- Client rights (docs/client-rights.md): erasure, its notices and receipts, and
-- retention holds. Ids, dates and codes only: none of these tables ever holds a
-- value that was erased.

-- A case that was erased: its id stays so the API answers 410 Gone (not 404)
-- and the audit can name it. reason is a code (protocol.codes.ERASURE_REASON).
CREATE TABLE erased_cases (
    case_id TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    erased  INTEGER NOT NULL
);

-- Sending side: one row per outgoing referral of an erased case. The office
-- that received the client's data must erase it (Art. 19 GDPR) and answer with
-- a signed deletion receipt. msg_id is the referral.erase message (NULL: not
-- yet sealed, retried by housekeeping). Without a receipt `[referrals]
-- answer_within_days` after `decided` the notice is listed as overdue.
-- receipt holds the recipient's signed document; erased/kept are its JSON
-- lists of field names (and "case" when the recipient keeps its own case).
CREATE TABLE erasure_notices (
    referral_id TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL,
    peer        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    decided     INTEGER NOT NULL,
    msg_id      TEXT,
    receipt     BLOB,
    receipt_at  INTEGER,
    erased      TEXT,
    kept        TEXT,
    flagged     INTEGER
);
CREATE INDEX erasure_notices_open ON erasure_notices(receipt_at, decided);

-- Receiving side: one row per referral.erase this office received. case_id is
-- the office's own case opened from the referral, flagged for its counsellor
-- (settled: when and how the counsellor settled it with the client).
CREATE TABLE erasure_requests (
    referral_id TEXT PRIMARY KEY,
    peer        TEXT NOT NULL,
    received    INTEGER NOT NULL,
    case_id     TEXT,
    erased      TEXT NOT NULL,
    kept        TEXT NOT NULL,
    settled     INTEGER,
    settlement  TEXT
);

-- A closed case on hold is not erased by the retention job. reason is a code
-- (protocol.codes.HOLD_REASON); the hold goes with the case.
CREATE TABLE retention_holds (
    case_id TEXT PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
    reason  TEXT NOT NULL,
    since   INTEGER NOT NULL
);

-- Erasure never revises statistics already submitted: after an erasure the
-- period's cells hash without the erased case is kept here and counts as
-- unchanged (node/stats/erasure.py).
ALTER TABLE stats_reports ADD COLUMN erasure_hash TEXT;
