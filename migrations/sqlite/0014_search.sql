-- Full-text search over the mail (see casebot_core::search for the tokens):
-- one document per mail (rowid = 2 × its messages row) and one for the
-- analysis of its logs (2 × row + 1). The documents point at messages, not
-- cases, so a mail moved to another case is found in that case at once.
CREATE VIRTUAL TABLE search_index USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 0');
-- Mails filed before the index existed are indexed by the daemon from the
-- newest down: the highest messages row still to index.
INSERT INTO cursors (name, position) SELECT 'search_backfill', COALESCE(MAX(id), 0) FROM messages;
