-- A priority set by hand on the desk: it stands over the partner's subject
-- tag until it is cleared (NULL: the subject decides).
ALTER TABLE cases ADD COLUMN priority_set TEXT;
