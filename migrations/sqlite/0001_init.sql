-- The case store. Times are Unix seconds (UTC) in INTEGER columns, lists are
-- JSON text: both mean the same on SQLite and PostgreSQL, so the queries in
-- src/store/ stay one text for both backends.

-- Every mail exactly as it arrived: the evidence. Never updated, never deleted.
CREATE TABLE raw_messages (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT    NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    bytes       BLOB    NOT NULL,
    received_at INTEGER NOT NULL
);

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY,
    -- The case number (CAS-08268-Z0X4W9), or T-… for a thread without one.
    key              TEXT    NOT NULL UNIQUE,
    case_id          TEXT,
    title            TEXT,
    priority         TEXT,
    customer         TEXT,
    stage            TEXT,
    internal_ref     TEXT,
    -- Original subject (without reply prefixes) of the newest mail that had
    -- one: replies reuse it so the partner's tags stay intact.
    base_subject     TEXT,
    status           TEXT    NOT NULL,
    message_count    INTEGER NOT NULL DEFAULT 0,
    first_message_at INTEGER,
    last_message_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX cases_last_message ON cases (last_message_at);

CREATE TABLE messages (
    id                     INTEGER PRIMARY KEY,
    raw_id                 INTEGER NOT NULL REFERENCES raw_messages (id),
    case_id                INTEGER NOT NULL REFERENCES cases (id),
    message_id             TEXT    NOT NULL UNIQUE,
    message_id_synthesized INTEGER NOT NULL,
    in_reply_to            TEXT,
    references_json        TEXT    NOT NULL,
    subject                TEXT    NOT NULL,
    subject_json           TEXT    NOT NULL,
    from_name              TEXT,
    from_address           TEXT,
    to_json                TEXT    NOT NULL,
    cc_json                TEXT    NOT NULL,
    date_utc               INTEGER NOT NULL,
    date_offset_minutes    INTEGER,
    date_source            TEXT    NOT NULL,
    direction              TEXT    NOT NULL,
    -- resolution | archive | ack | NULL: what the new text says, see ingest::case_state.
    signal                 TEXT,
    resolution_phrase      TEXT,
    stage                  TEXT,
    new_text               TEXT    NOT NULL,
    quoted_text            TEXT    NOT NULL,
    signature              TEXT    NOT NULL,
    warnings_json          TEXT    NOT NULL,
    thread_rule            TEXT    NOT NULL,
    ingested_at            INTEGER NOT NULL
);
CREATE INDEX messages_case_date ON messages (case_id, date_utc);
-- Duplicate detection goes from a raw hash to its message.
CREATE INDEX messages_raw ON messages (raw_id);

-- Every place a mail was seen: the first one and every duplicate delivery.
CREATE TABLE message_sources (
    id          INTEGER PRIMARY KEY,
    raw_id      INTEGER NOT NULL REFERENCES raw_messages (id),
    source_kind TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    seen_at     INTEGER NOT NULL
);
CREATE INDEX message_sources_raw ON message_sources (raw_id);

-- Message-IDs a mail refers to (In-Reply-To and References), to find
-- children that arrived before their parent.
CREATE TABLE message_refs (
    message_id INTEGER NOT NULL REFERENCES messages (id),
    ref_id     TEXT    NOT NULL
);
CREATE INDEX message_refs_ref ON message_refs (ref_id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES messages (id),
    part         INTEGER NOT NULL,
    filename     TEXT,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE links (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    url        TEXT    NOT NULL,
    kind       TEXT    NOT NULL
);
CREATE INDEX links_message ON links (message_id);

-- Mail that could not be handled, with its bytes and the reason. Replay
-- runs it through the pipeline again.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT    NOT NULL UNIQUE,
    bytes       BLOB    NOT NULL,
    size        INTEGER NOT NULL,
    source_kind TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    -- Set when a replay filed it: the message it became.
    released_message_id INTEGER REFERENCES messages (id),
    released_at INTEGER
);

-- What happened to a case, in order: the audit trail.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    case_id    INTEGER REFERENCES cases (id),
    message_id INTEGER REFERENCES messages (id),
    kind       TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX events_case ON events (case_id, id);
