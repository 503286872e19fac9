-- 0001: the user database's own table.
-- `local_secret` holds one random 32-byte secret, generated when the database is
-- created and never leaving it. Keys for pickling Olm/Megolm state are derived
-- from it (UserDB.derive_key), so they survive a passphrase change: a key
-- derived from the passphrase would make every stored pickle unreadable after
-- `change_passphrase`. It is only ever on disk inside the SQLCipher pages.
CREATE TABLE local_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB    NOT NULL CHECK (length(secret) = 32)
);
