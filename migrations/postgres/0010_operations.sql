-- /metrics counts the quarantine still waiting for a replay on every
-- scrape; the index keeps that count off the quarantined bytes.
CREATE INDEX quarantine_waiting ON quarantine (released_at);

-- Retention removes the raw bytes of long-closed cases and says when here;
-- the parsed message (text, headers, attachment names) stays.
ALTER TABLE raw_messages ADD COLUMN purged_at BIGINT;
