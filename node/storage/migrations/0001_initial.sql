-- The node's first schema: the case store, referrals, tokens, audit, sync tables.
-- Lists (topics, languages, fields, goals) are JSON arrays in TEXT columns.

CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    opened TEXT NOT NULL,
    closed TEXT,
    case_type TEXT NOT NULL,
    closure_reason TEXT,
    counsellor TEXT,
    pseudonym TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    phone TEXT,
    email TEXT,
    address TEXT,
    birth_year INTEGER,
    gender TEXT,
    nationality TEXT,
    residence_status TEXT,
    entry_month TEXT,
    german_level TEXT,
    languages TEXT NOT NULL DEFAULT '[]',
    family_members INTEGER NOT NULL DEFAULT 0,
    topics TEXT NOT NULL DEFAULT '[]',
    note TEXT,
    origin_referral TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    date TEXT NOT NULL,
    channel TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    topics TEXT NOT NULL DEFAULT '[]',
    created INTEGER NOT NULL
);
CREATE INDEX contacts_case ON contacts(case_id);

CREATE TABLE agreements (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    agreed TEXT NOT NULL,
    goals TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX agreements_case ON agreements(case_id);

CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    recipient TEXT NOT NULL,
    fields TEXT NOT NULL,
    given TEXT NOT NULL,
    expires TEXT,
    withdrawn TEXT,
    form TEXT NOT NULL,
    legal_regime TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX consents_case ON consents(case_id);

-- direction 'out': we sent it (case_id is the source case, consent_id the consent,
-- fields the names sent; the values are not copied). direction 'in': we received
-- it (client holds the received fields until accepted, declined or withdrawn;
-- case_id is the case created on acceptance).
CREATE TABLE referrals (
    id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    peer TEXT NOT NULL,
    case_id TEXT,
    target_type TEXT NOT NULL,
    consent_id TEXT,
    consent TEXT,
    fields TEXT NOT NULL,
    client TEXT,
    note TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    offer_msg_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (id, direction)
);
CREATE INDEX referrals_case ON referrals(case_id);

CREATE TABLE referral_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    referral_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT,
    msg_id TEXT
);
CREATE INDEX referral_events_referral ON referral_events(referral_id, direction);

-- Which app read or changed which case. Ids only, never personal data.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    app TEXT NOT NULL,
    action TEXT NOT NULL,
    case_id TEXT,
    referral_id TEXT
);
CREATE INDEX audit_case ON audit(case_id);

CREATE TABLE app_tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    last_used INTEGER
);

-- The sync tables. outbox: sealed envelopes until the hub acknowledged them.
CREATE TABLE outbox (
    msg_id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    envelope BLOB NOT NULL,
    expires INTEGER NOT NULL,
    created INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt INTEGER,
    rejected TEXT,
    rejected_at INTEGER
);
CREATE INDEX outbox_pending ON outbox(rejected, created);

-- Metadata of every message we sent, kept after the outbox row is retired so
-- receipts and expiry notices can be matched to their referral.
CREATE TABLE sent_log (
    msg_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    recipient TEXT NOT NULL,
    referral_id TEXT,
    created INTEGER NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE inbox_seen (
    msg_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    received INTEGER NOT NULL
);

CREATE TABLE refused (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);

CREATE TABLE directory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    data BLOB NOT NULL,
    etag TEXT,
    stored INTEGER NOT NULL
);

CREATE TABLE enrollment (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    node_id TEXT NOT NULL,
    hub_url TEXT NOT NULL,
    hub_sign BLOB NOT NULL,
    hub_encrypt BLOB NOT NULL,
    certificate BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL
);

CREATE TABLE sync_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
