-- Log analysis results: one row per customer mail, made by the analysis
-- stage after the mail is filed. `report` is the whole analysis as JSON (the
-- same object `casebot analyze --json` prints); the columns beside it are
-- what lists and drafting filter on. The case is the message's case (joined,
-- not copied), so a thread that later joins another case takes its analyses along.
CREATE TABLE analyses (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL UNIQUE REFERENCES messages (id),
    -- pending | done | empty (nothing to analyse) | failed
    status      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,
    class       TEXT,
    rule        TEXT,
    error_codes TEXT,
    kbs         TEXT,
    report      TEXT,
    error       TEXT,
    duration_ms INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX analyses_status ON analyses (status);
