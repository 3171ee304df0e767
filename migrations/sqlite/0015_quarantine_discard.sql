-- A quarantined mail a person decided not to file: who, and why. Its bytes
-- stay (evidence); it leaves the list of mail waiting for a decision.
ALTER TABLE quarantine ADD COLUMN discarded_by TEXT;
ALTER TABLE quarantine ADD COLUMN discard_reason TEXT;
