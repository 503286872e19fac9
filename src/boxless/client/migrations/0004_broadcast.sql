-- Broadcast lists: one text to many contacts, sent as one ordinary 1:1 message
-- each (recipients see it in their chat with us and never learn of each other).
CREATE TABLE client_broadcast_lists (
    list_id        BLOB PRIMARY KEY,          -- 16 random bytes
    name           TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);

CREATE TABLE client_broadcast_members (
    list_id        BLOB NOT NULL REFERENCES client_broadcast_lists(list_id) ON DELETE CASCADE,
    identity_key   BLOB NOT NULL,             -- a contact's identity key
    position       INTEGER NOT NULL,          -- the order the user gave
    PRIMARY KEY (list_id, identity_key)
);

-- Each text sent to a list, and the 1:1 message it became for each recipient
-- (their delivery states live on those client_messages rows).
CREATE TABLE client_broadcasts (
    broadcast_id   BLOB PRIMARY KEY,          -- 16 random bytes
    list_id        BLOB NOT NULL REFERENCES client_broadcast_lists(list_id) ON DELETE CASCADE,
    text           TEXT NOT NULL,
    sent_at_ms     INTEGER NOT NULL
);
CREATE INDEX client_broadcasts_by_list ON client_broadcasts (list_id, sent_at_ms);

CREATE TABLE client_broadcast_messages (
    broadcast_id   BLOB NOT NULL REFERENCES client_broadcasts(broadcast_id) ON DELETE CASCADE,
    message_id     BLOB NOT NULL,             -- client_messages.message_id
    recipient      BLOB NOT NULL,
    PRIMARY KEY (broadcast_id, message_id)
);
