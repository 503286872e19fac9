-- Group chats: groups we are in, their signed op logs, member cards, messages,
-- and what waits (for a key share, for a member's card, for the network).
CREATE TABLE client_groups (
    group_id       BLOB PRIMARY KEY,          -- SHA-256 id of the group's Create op
    sds_state      TEXT NOT NULL,             -- JSON of SdsChannel.to_state()
    joined_at_ms   INTEGER NOT NULL
);

CREATE TABLE client_group_ops (
    group_id       BLOB NOT NULL REFERENCES client_groups(group_id) ON DELETE CASCADE,
    op_id          BLOB NOT NULL,
    op             BLOB NOT NULL,             -- encode_op() bytes (signed)
    PRIMARY KEY (group_id, op_id)
);

-- Contact cards of group members who may not be our contacts (their device keys).
CREATE TABLE client_group_cards (
    identity_key   BLOB PRIMARY KEY,
    card           BLOB NOT NULL,             -- ContactCode.to_bytes()
    device_key     BLOB NOT NULL
);

CREATE TABLE client_group_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- delivery (causal) order
    message_id     TEXT NOT NULL UNIQUE,      -- SDS message id
    group_id       BLOB NOT NULL REFERENCES client_groups(group_id) ON DELETE CASCADE,
    sender         BLOB NOT NULL,
    outgoing       INTEGER NOT NULL,
    lamport        INTEGER NOT NULL,          -- SDS Lamport time
    sent_at_ms     INTEGER NOT NULL,
    received_at_ms INTEGER,
    text           TEXT NOT NULL,
    state          TEXT NOT NULL              -- outgoing: sent|queued; incoming: received
);
CREATE INDEX client_group_messages_order ON client_group_messages (group_id, seq);

-- Group messages we could not decrypt yet (their key share is in flight).
CREATE TABLE client_group_pending (
    message_hash   BLOB PRIMARY KEY,
    group_id       BLOB NOT NULL,
    payload        BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
);

-- Olm-authenticated group bodies from a sender we cannot place yet (no card).
CREATE TABLE client_group_inbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sender         BLOB NOT NULL,
    device         BLOB NOT NULL,
    body           BLOB NOT NULL,             -- encoded ChatMessage
    received_at_ms INTEGER NOT NULL
);

-- Group bodies to send over Olm to one member (key shares, ops for an invitee).
CREATE TABLE client_group_outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient      BLOB NOT NULL,
    payload        BLOB NOT NULL,             -- encoded ChatMessage (the DB is encrypted)
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL
);
