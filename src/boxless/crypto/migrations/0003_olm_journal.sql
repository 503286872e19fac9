-- The ratchet journal (boxless.crypto.ratchet_journal). Applied as component "crypto".

-- version counts a session's stored steps: a step written to the journal or to
-- this table gets its session's next number, and replaying the journal applies
-- a record only over an older version, so neither store can roll the other back.
ALTER TABLE crypto_olm_sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- The journal's current epoch: 16 random bytes, changed by every checkpoint.
-- Records are sealed with a key derived for the epoch, so records of an older
-- epoch (already checkpointed into crypto_olm_sessions) never authenticate.
CREATE TABLE crypto_olm_journal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BLOB NOT NULL
);
