-- A case merged into another keeps its row (its key, and its case number in
-- new mail, find the case it was merged into) and points there.
ALTER TABLE cases ADD COLUMN merged_into BIGINT REFERENCES cases (id);
