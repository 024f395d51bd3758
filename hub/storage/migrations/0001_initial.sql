-- The hub's first schema: sites, enrollment codes, directory versions, the
-- relay queue and its metadata log, request nonces, coordinator tokens, audit.
-- The hub never stores plaintext: `queue.envelope` is the sealed envelope as
-- uploaded, kept only until the recipient acknowledges it.

CREATE TABLE sites (
    node_id   TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    org       TEXT NOT NULL,
    services  TEXT NOT NULL,          -- JSON list of referral target codes
    languages TEXT NOT NULL,          -- JSON list of language codes
    area      TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    sign_key  BLOB,                   -- set at enrollment
    enc_key   BLOB,
    cert      BLOB,                   -- the signed node certificate
    created   INTEGER NOT NULL,
    enrolled  INTEGER,
    revoked   INTEGER
);

-- Only the lookup id and the verifier (a public key derived from the secret)
-- are stored, never the code's secret.
CREATE TABLE enrollment_codes (
    lookup_id TEXT PRIMARY KEY,
    verifier  BLOB NOT NULL,
    node_id   TEXT NOT NULL REFERENCES sites (node_id),
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL,
    used_at   INTEGER
);
CREATE INDEX enrollment_codes_site ON enrollment_codes (node_id);

CREATE TABLE directory_versions (
    version INTEGER PRIMARY KEY,
    issued  INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    data    BLOB NOT NULL              -- the signed directory document
);

CREATE TABLE queue (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id    TEXT NOT NULL UNIQUE,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    expires   INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    env_hash  BLOB NOT NULL,           -- SHA-256 of the envelope, for idempotent uploads
    envelope  BLOB NOT NULL
);
CREATE INDEX queue_inbox ON queue (recipient, seq);
CREATE INDEX queue_expiry ON queue (expires);

-- Metadata only: who sent how many bytes to whom, and when it left the queue.
CREATE TABLE relay_log (
    msg_id    TEXT PRIMARY KEY,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    size      INTEGER NOT NULL,
    env_hash  BLOB NOT NULL,
    received  INTEGER NOT NULL,
    acked     INTEGER,
    expired   INTEGER
) WITHOUT ROWID;
CREATE INDEX relay_log_received ON relay_log (received);

-- Request nonces seen within the clock-skew window, so a restart does not
-- reopen the window for replays.
CREATE TABLE nonces (
    node_id TEXT NOT NULL,
    nonce   TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    PRIMARY KEY (node_id, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_ts ON nonces (ts);

CREATE TABLE tokens (
    token_hash BLOB PRIMARY KEY,       -- SHA-256 of the token; the token itself is shown once
    role       TEXT NOT NULL,
    org        TEXT,
    created    INTEGER NOT NULL,
    revoked    INTEGER
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
