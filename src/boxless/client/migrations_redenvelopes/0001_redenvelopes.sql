-- 0001: red envelopes in chat. One row per envelope card seen in a chat (ours or
-- a member's), the card JSON holding the envelope secret (this database is
-- SQLCipher-encrypted; the secret never leaves it except inside E2EE messages),
-- and which member said they opened it with which address. Amounts are never
-- stored from a peer: they come from the chain's Claimed logs.

CREATE TABLE redenvelope (
    envelope_id  BLOB    PRIMARY KEY CHECK (length(envelope_id) = 32),
    chat         TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    author       BLOB    NOT NULL,           -- identity key of who sent the card
    outgoing     INTEGER NOT NULL,
    card         BLOB    NOT NULL,           -- client.redenvelopes_core.Card JSON
    state        TEXT    NOT NULL,           -- open | done (every share taken or refunded)
    my_amount    TEXT,                       -- wei, once the chain shows our claim
    reason       TEXT    NOT NULL DEFAULT '',-- why we may not open it (forged, another chat...)
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);
CREATE INDEX redenvelope_chat ON redenvelope (chat, created_ms);
CREATE INDEX redenvelope_open ON redenvelope (state) WHERE state = 'open';

CREATE TABLE redenvelope_opened (
    envelope_id  BLOB NOT NULL,
    member       BLOB NOT NULL,              -- identity key of the member
    recipient    BLOB NOT NULL CHECK (length(recipient) = 20),
    relayed      INTEGER NOT NULL DEFAULT 0, -- the sender's client submitted it
    PRIMARY KEY (envelope_id, member),
    UNIQUE (envelope_id, recipient)
);

CREATE TABLE redenvelope_contract (
    chain_id     INTEGER PRIMARY KEY,
    address      BLOB    NOT NULL CHECK (length(address) = 20)
);
