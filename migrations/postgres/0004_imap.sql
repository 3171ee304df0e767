-- Where each watched IMAP folder stands: its UIDVALIDITY, the highest UID
-- whose mail is handled (filed, recognised as a duplicate, or quarantined),
-- and the connection's state as the operator should see it.
CREATE TABLE imap_folders (
    mailbox      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    -- connecting | catching_up | idle | polling | reconnecting | stopped
    state        TEXT    NOT NULL,
    last_error   TEXT,
    state_since  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
