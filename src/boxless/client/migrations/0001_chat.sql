-- Contacts, conversations' messages, what we have processed, and sync marks.
CREATE TABLE client_contacts (
    identity_key   BLOB PRIMARY KEY,          -- Ed25519 identity key (32 bytes)
    display_name   TEXT NOT NULL,
    bundle         BLOB NOT NULL,             -- their encoded contact code (device bundle)
    device_key     BLOB NOT NULL,             -- their device Curve25519 key (Olm sender key)
    state          TEXT NOT NULL,             -- request_sent | request_received | accepted | declined | blocked
    intro          TEXT NOT NULL DEFAULT '',
    conversation_topic TEXT NOT NULL,
    verified_key   BLOB,                      -- identity key at verification time
    avatar         BLOB,
    lamport        INTEGER NOT NULL DEFAULT 0,    -- our Lamport clock for this conversation
    added_at_ms    INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);

CREATE TABLE client_messages (
    message_id     BLOB PRIMARY KEY,          -- 16 random bytes from the sender
    contact        BLOB NOT NULL REFERENCES client_contacts(identity_key) ON DELETE CASCADE,
    outgoing       INTEGER NOT NULL,
    lamport        INTEGER NOT NULL,
    sent_at_ms     INTEGER NOT NULL,
    received_at_ms INTEGER,
    text           TEXT NOT NULL,
    reply_to       BLOB,
    edited         INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,             -- outgoing: queued|sent|delivered|read; incoming: received|read
    reactions      TEXT NOT NULL DEFAULT '{}' -- JSON {emoji: [who: "me"|"them"]}
);
CREATE INDEX client_messages_order ON client_messages (contact, lamport, sent_at_ms, message_id);

-- Outgoing messages not yet delivered, with their retry schedule (chat.outbox rows).
CREATE TABLE client_outbox (
    message_id     BLOB PRIMARY KEY,
    recipient      BLOB NOT NULL,
    content_topic  TEXT NOT NULL,
    payload        BLOB NOT NULL,             -- encoded ChatMessage (the DB is encrypted)
    state          TEXT NOT NULL,
    queued_at      REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts       INTEGER NOT NULL,
    failures       INTEGER NOT NULL,
    sends          INTEGER NOT NULL,
    last_sent_at   REAL
);

-- Waku message hashes already processed (dedup across filter, relay and store).
CREATE TABLE client_seen (
    message_hash   BLOB PRIMARY KEY,
    seen_at_ms     INTEGER NOT NULL
);

CREATE TABLE client_sync (
    content_topic  TEXT PRIMARY KEY,
    last_ns        INTEGER NOT NULL
);

CREATE TABLE client_state (
    key            TEXT PRIMARY KEY,
    value          BLOB NOT NULL
);
