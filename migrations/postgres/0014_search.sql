-- Full-text search over the mail (see casebot_core::search for the tokens):
-- one document per mail (doc_id = 2 × its messages row) and one for the
-- analysis of its logs (2 × row + 1). The documents point at messages, not
-- cases, so a mail moved to another case is found in that case at once.
-- The tokens are ASCII words, so the `simple` configuration reads them the
-- same under any database locale.
CREATE TABLE search_index (
    doc_id BIGINT PRIMARY KEY,
    tokens TSVECTOR NOT NULL
);
CREATE INDEX search_index_tokens ON search_index USING GIN (tokens);
-- Mails filed before the index existed are indexed by the daemon from the
-- newest down: the highest messages row still to index.
INSERT INTO cursors (name, position) SELECT 'search_backfill', COALESCE(MAX(id), 0) FROM messages;
