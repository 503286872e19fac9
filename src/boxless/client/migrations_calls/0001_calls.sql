-- Call history (client/call_store.py): one row per call that ended, 1:1 for now.
-- Rows are written by the call feature only, never from a peer's word alone:
-- an incoming row exists only for an offer from an accepted contact that rang.
CREATE TABLE client_calls (
    call_id          BLOB PRIMARY KEY,     -- 16 bytes, chosen by the caller
    peer             BLOB NOT NULL,        -- the contact's identity key
    outgoing         INTEGER NOT NULL,
    video            INTEGER NOT NULL,
    reason           TEXT NOT NULL,        -- hung_up | declined | busy | missed | failed | lost
    started_at_ms    INTEGER NOT NULL,
    connected_at_ms  INTEGER,              -- NULL: never connected
    ended_at_ms      INTEGER NOT NULL
);
CREATE INDEX client_calls_peer ON client_calls (peer, started_at_ms);
