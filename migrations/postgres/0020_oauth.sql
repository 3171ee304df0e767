-- OAuth2 sign-ins of mailboxes: the refresh token a person's device
-- sign-in gave, encrypted (never in clear text), and when the provider
-- refused it (the mailbox then needs a new sign-in).
CREATE TABLE oauth_tokens (
    mailbox       TEXT   PRIMARY KEY,
    refresh_token TEXT   NOT NULL,
    signed_in_at  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    refused_at    BIGINT,
    refused_error TEXT
);
