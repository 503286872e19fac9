-- Stealth receiving in the Wallet pane (client/stealth.py, docs/redenvelopes.md):
-- the announcer contract scanned per chain, the last block scanned, and the
-- announcements found to pay us (public chain data; the keys come from the seed).
CREATE TABLE client_stealth_chain (
    chain_id       INTEGER PRIMARY KEY,
    announcer      BLOB NOT NULL,            -- 20 bytes: the ERC-5564 announcer
    scanned_block  INTEGER NOT NULL DEFAULT -1  -- the last block scanned (-1: none)
);

CREATE TABLE client_stealth_found (
    chain_id          INTEGER NOT NULL,
    stealth_address   BLOB NOT NULL,         -- 20 bytes
    ephemeral_public  BLOB NOT NULL,         -- 33 bytes (compressed)
    metadata          BLOB NOT NULL,
    block_number      INTEGER NOT NULL,
    tx_hash           BLOB NOT NULL,
    swept             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chain_id, stealth_address)
);
