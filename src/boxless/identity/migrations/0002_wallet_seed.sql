-- 0002: the BIP-39 seed of the recovery phrase, for the wallet (boxless.payments
-- derives the Ethereum account m/44'/60'/0'/0/0 from it). Secret; lives only in
-- the SQLCipher-encrypted pages like the identity key (which it determines).
-- Accounts made before this migration have no row until the phrase is entered
-- again (`boxless wallet import`).
CREATE TABLE wallet_seed (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seed       BLOB    NOT NULL CHECK (length(seed) = 64),
    created_at INTEGER NOT NULL
);
