-- Cases that hold no mail (merged away, emptied by a move) are not listed;
-- this small index lets the list count them instead of every case.
CREATE INDEX cases_empty ON cases (message_count) WHERE message_count = 0;
