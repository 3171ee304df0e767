-- Internal notes: what engineers write about a case for each other. They
-- are never sent and never part of a draft; adding one is an event.
CREATE TABLE notes (
    id         INTEGER PRIMARY KEY,
    case_id    BIGINT NOT NULL REFERENCES cases (id),
    author     TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notes_case ON notes (case_id, id);
