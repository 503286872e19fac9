-- Files this client sent that fewer service nodes keep than it wants (a node was
-- down or died during the upload; client/attachments.py re-pins them later).
-- ``pinned_by`` lists the multiaddrs that confirmed a pin, one per line. Rows go
-- when enough nodes keep the file, or after ``expires_ms``.
CREATE TABLE client_attachment_repins (
    cid         BLOB PRIMARY KEY,
    size        INTEGER NOT NULL,
    pinned_by   TEXT NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,             -- when to try again
    expires_ms  INTEGER NOT NULL,
    error       TEXT                          -- why the last try failed
);
CREATE INDEX client_attachment_repins_next ON client_attachment_repins (next_ms);
