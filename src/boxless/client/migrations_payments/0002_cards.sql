-- 0002: payments in chat. One row per transfer card or money request shown in a
-- chat (1:1 or group), and the wallet addresses contacts told us.
-- A transfer is shown "received" only when the chain agrees (payments/transfer.py);
-- a transaction hash counts once: a second card for the same transaction is a replay.

CREATE TABLE payment_card (
    message_id  TEXT    PRIMARY KEY,   -- 1:1: message id hex; group: the group message id
    chat        TEXT    NOT NULL,      -- contact:<hex> or group:<hex>
    kind        TEXT    NOT NULL CHECK (kind IN ('transfer', 'request')),
    outgoing    INTEGER NOT NULL,
    author      BLOB    NOT NULL,      -- identity key of who sent the card
    body        BLOB    NOT NULL,      -- the PaymentBody protobuf
    tx_hash     BLOB,                  -- transfers
    request_id  BLOB,                  -- requests: their id; transfers: the request they pay
    status      TEXT    NOT NULL,      -- pending | confirmed | received | forged | failed | open
    reason      TEXT    NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX payment_card_chat ON payment_card (chat, created_ms);
CREATE INDEX payment_card_tx ON payment_card (tx_hash) WHERE tx_hash IS NOT NULL;
CREATE INDEX payment_card_request ON payment_card (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX payment_card_open ON payment_card (status) WHERE status = 'pending';

CREATE TABLE payment_peer_address (
    contact     BLOB    PRIMARY KEY CHECK (length(contact) = 32),
    chain_id    INTEGER NOT NULL,
    address     BLOB    NOT NULL CHECK (length(address) = 20),
    updated_ms  INTEGER NOT NULL
);
