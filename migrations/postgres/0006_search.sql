-- The search index of the desk's case list. A searched word that looks like
-- a number, KB, code or reference (ASCII letters, digits and - : _ .) is
-- looked up here by prefix; other text (Chinese title words) still scans
-- the titles. Terms compare byte by byte (COLLATE "C"), so that the prefix
-- ranges hold whatever the database's locale.

-- Each case's key, reference and the ASCII words of its title, lower-case.
CREATE TABLE case_terms (
    term    TEXT    COLLATE "C" NOT NULL,
    case_id BIGINT NOT NULL REFERENCES cases (id),
    PRIMARY KEY (term, case_id)
);
CREATE INDEX case_terms_case ON case_terms (case_id);

-- The KBs and error codes each analysis found, one lower-case row per term,
-- so that the case search finds "KB5034441" or "0x800f0922" through an index
-- instead of scanning every analysis's lists. Keyed by the message, like the
-- analyses, so a thread that joins another case takes its terms along.
CREATE TABLE analysis_terms (
    term       TEXT    COLLATE "C" NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    PRIMARY KEY (term, message_id)
);
CREATE INDEX analysis_terms_message ON analysis_terms (message_id);

INSERT INTO analysis_terms (term, message_id)
SELECT LOWER(j.value), a.message_id FROM analyses a, json_array_elements_text(a.kbs::json) j(value)
WHERE a.kbs IS NOT NULL
UNION
SELECT LOWER(j.value), a.message_id FROM analyses a, json_array_elements_text(a.error_codes::json) j(value)
WHERE a.error_codes IS NOT NULL
ON CONFLICT DO NOTHING;
