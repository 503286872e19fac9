-- Group call history (client/call_store.py): one row per group call we took part in
-- or were rung to, written when it ended on this device. ``participants`` is the
-- concatenation of the 32-byte identity keys we saw in the call (members only:
-- the group call core drops signals of non-members before anything is kept).
CREATE TABLE client_group_calls (
    call_id          BLOB PRIMARY KEY,     -- 16 bytes, chosen by the caller
    group_id         BLOB NOT NULL,
    started_by       BLOB NOT NULL,        -- identity key (ours when we started it)
    participants     BLOB NOT NULL,        -- 32-byte keys, concatenated, ours excluded
    video            INTEGER NOT NULL,
    started_at_ms    INTEGER NOT NULL,
    joined_at_ms     INTEGER,              -- NULL: we never joined (missed or declined)
    ended_at_ms      INTEGER NOT NULL
);
CREATE INDEX client_group_calls_group ON client_group_calls (group_id, started_at_ms);
