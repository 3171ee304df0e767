-- The running `casebot serve` processes of one store, each confirming
-- itself every second: how many are alive decides each one's fair share
-- of the mailbox leases, and an operator sees who watches what
-- (`casebot instances`). A row that stops being confirmed is a dead
-- instance; the next heartbeat of any other removes it after a day.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    -- The leases it holds, one name per line.
    leases TEXT NOT NULL DEFAULT ''
);
