-- /metrics counts the quarantine still waiting for a replay on every
-- scrape; the index keeps that count off the quarantined bytes.
CREATE INDEX quarantine_waiting ON quarantine (released_at);
