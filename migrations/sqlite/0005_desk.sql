-- The web desk's accounts and logins, and the SLA snapshots its pages read.

-- People who log in to the desk. `email` ties an account to the address it
-- sends case mail from, so the owner the SLA engine reads off a mail is the
-- same person the desk shows.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    email         TEXT,
    -- engineer | lead
    role          TEXT    NOT NULL,
    -- argon2id, PHC string format.
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A login. Only the SHA-256 of the cookie's token is kept, so a copy of the
-- store does not hand out sessions. Each session has its own CSRF token.
CREATE TABLE sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Each case's SLA as evaluated after its last change (see src/sla): the
-- clocks are independent of the current time, so pages read them and only
-- compute time left. `fingerprint` names the policy they were computed
-- under; a changed config recomputes them all. No foreign key: a snapshot
-- is derived data and goes when its case is merged away.
CREATE TABLE case_sla (
    case_id     INTEGER PRIMARY KEY,
    owner       TEXT,
    status      TEXT    NOT NULL,
    priority    TEXT    NOT NULL,
    -- The earliest due time of a running clock (Unix seconds), for sorting.
    next_due    INTEGER,
    snapshot    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    computed_at INTEGER NOT NULL
);
CREATE INDEX case_sla_owner ON case_sla (owner);
CREATE INDEX case_sla_status ON case_sla (status, next_due);

-- Small named values of the desk (the SLA policy fingerprint).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The desk's case list filters by these.
CREATE INDEX cases_status_last ON cases (status, last_message_at);
CREATE INDEX cases_customer ON cases (customer);
