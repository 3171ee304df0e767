-- Analyses are jobs that one instance at a time works on (several
-- `casebot serve` processes may share the store): who claimed a pending
-- analysis, and until when. A claim whose holder died, or whose time ran
-- out, is claimed again; `attempts` counts the claims.
ALTER TABLE analyses ADD COLUMN claimed_by TEXT;
ALTER TABLE analyses ADD COLUMN claim_expires_at INTEGER;
