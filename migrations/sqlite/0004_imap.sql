-- Where each watched IMAP folder stands: its UIDVALIDITY, the highest UID
-- whose mail is handled (filed, recognised as a duplicate, or quarantined),
-- and the connection's state as the operator should see it.
CREATE TABLE imap_folders (
    mailbox      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    -- connecting | catching_up | idle | polling | reconnecting | stopped
    state        TEXT    NOT NULL,
    last_error   TEXT,
    state_since  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
