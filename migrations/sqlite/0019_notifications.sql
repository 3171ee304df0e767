-- Notifications to desk accounts. A person's choices per topic and channel
-- (none: the channel's default), and every notice queued: one row per
-- person, channel and key, so an event read twice is told once.
CREATE TABLE notify_prefs (
    user_id INTEGER NOT NULL REFERENCES users (id),
    topic   TEXT   NOT NULL,
    channel TEXT   NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (user_id, topic, channel)
);
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    channel    TEXT   NOT NULL,
    topic      TEXT   NOT NULL,
    event_key  TEXT   NOT NULL,
    case_id    INTEGER REFERENCES cases (id),
    facts      TEXT   NOT NULL,
    created_at INTEGER NOT NULL,
    -- Not before: the end of its batching window, opening hours, a retry.
    due_at     INTEGER NOT NULL,
    -- pending, sending, sent, failed
    state      TEXT   NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at    INTEGER,
    claimed_by TEXT,
    UNIQUE (user_id, channel, event_key)
);
CREATE INDEX notifications_due ON notifications (state, due_at);
CREATE INDEX notifications_recent ON notifications (user_id, id);
