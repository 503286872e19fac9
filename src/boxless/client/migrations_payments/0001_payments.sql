-- 0001: the wallet's chain settings and every transaction it signed.
-- A transaction is stored (raw signed bytes included) BEFORE it is broadcast,
-- so a crash in between loses nothing: the next start re-broadcasts it, and
-- its nonce is never handed out twice.

CREATE TABLE payment_chain (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    rpc_url      TEXT    NOT NULL,
    chain_id     INTEGER NOT NULL CHECK (chain_id > 0),
    token        TEXT,              -- an ERC-20 contract address (checksummed), or NULL
    token_symbol TEXT,
    token_decimals INTEGER,
    confirmations INTEGER NOT NULL DEFAULT 2 CHECK (confirmations >= 1)
);

CREATE TABLE payment_tx (
    hash          BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    chain_id      INTEGER NOT NULL,
    sender        BLOB    NOT NULL CHECK (length(sender) = 20),
    nonce         INTEGER NOT NULL CHECK (nonce >= 0),
    recipient     BLOB    NOT NULL CHECK (length(recipient) = 20),
    amount        TEXT    NOT NULL,  -- base units as decimal text (may exceed 2**63)
    symbol        TEXT    NOT NULL,
    token         TEXT,              -- ERC-20 contract, NULL for ETH
    max_fee       TEXT    NOT NULL,  -- wei: max_fee_per_gas * gas
    raw           BLOB    NOT NULL,
    state         TEXT    NOT NULL,
    block_number  INTEGER,
    block_hash    BLOB,
    confirmations INTEGER NOT NULL DEFAULT 0,
    note          TEXT    NOT NULL DEFAULT '',
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX payment_tx_nonce ON payment_tx (chain_id, sender, nonce);
CREATE INDEX payment_tx_open ON payment_tx (state) WHERE state IN ('pending', 'included');
