-- Drafted replies and the approval gate. A draft's whole life is in its row
-- (who edited, approved or rejected it, when, and the send attempts) and in
-- the case's events (every text it ever had). The text approved is frozen:
-- `approved_sha256` is checked again right before sending.
CREATE TABLE drafts (
    id                 INTEGER PRIMARY KEY,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    -- scope | next_steps | closure | archive
    kind               TEXT    NOT NULL,
    -- pending | approved | rejected | sent | failed
    status             TEXT    NOT NULL,
    -- auto (the drafting stage) | manual (an engineer asked for it)
    origin             TEXT    NOT NULL,
    -- What it was drafted from (kind, messages, analyses): the same basis is
    -- never drafted twice, so a rejected draft does not come back.
    basis              TEXT    NOT NULL,
    trigger_message_id INTEGER REFERENCES messages (id),
    language           TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    -- The facts it was drafted from (class, codes, component, words of the
    -- customer): what a closure leaves as knowledge.
    facts              TEXT    NOT NULL,
    to_json            TEXT    NOT NULL,
    cc_json            TEXT    NOT NULL,
    in_reply_to        TEXT,
    references_text    TEXT    NOT NULL,
    edited_by          TEXT,
    edited_at          INTEGER,
    approved_by        TEXT,
    approved_at        INTEGER,
    approved_sha256    TEXT,
    rejected_by        TEXT,
    rejected_at        INTEGER,
    reject_reason      TEXT,
    -- Bumped on every change of the text, so an approval names what it saw.
    revision           INTEGER NOT NULL DEFAULT 1,
    -- Minted at approval, under the desk's domain; kept across retries.
    message_id         TEXT    UNIQUE,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    last_error         TEXT,
    -- A sender holds a draft while it sends: who, until when, and how far it
    -- got (connect | data). A claim that dies in `data` may have been
    -- delivered, so it is never retried without an engineer.
    claimed_by         TEXT,
    claim_expires_at   INTEGER,
    send_phase         TEXT,
    sent_at            INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX drafts_case ON drafts (case_id, status);
CREATE INDEX drafts_status ON drafts (status, next_attempt_at);
-- A case has at most one pending draft.
CREATE UNIQUE INDEX drafts_one_pending ON drafts (case_id) WHERE status = 'pending';

-- What closed cases taught: the signature of their failure and what fixed
-- it, written when a closure is approved, corrected by engineers.
CREATE TABLE knowledge (
    id             INTEGER PRIMARY KEY,
    case_id        INTEGER NOT NULL UNIQUE REFERENCES cases (id),
    case_key       TEXT    NOT NULL,
    draft_id       INTEGER REFERENCES drafts (id),
    class          TEXT    NOT NULL,
    rule           TEXT,
    error_codes    TEXT    NOT NULL,
    component      TEXT,
    package        TEXT,
    kbs            TEXT    NOT NULL,
    problem        TEXT    NOT NULL,
    resolution     TEXT    NOT NULL,
    customer_words TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    updated_by     TEXT
);
CREATE INDEX knowledge_class ON knowledge (class);

-- How far a stage has read the event log (the drafting stage re-decides
-- the cases whose events it has not seen).
CREATE TABLE cursors (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
