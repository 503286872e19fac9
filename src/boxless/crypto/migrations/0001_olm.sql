-- Olm 1:1 sessions (boxless.crypto.olm_sessions). Applied as component "crypto".

-- One row per Olm session with a remote device. remote_key is the device's
-- Curve25519 identity key (32 raw bytes). pickle is vodozemac's encrypted
-- pickle (the pickle key never touches the database). last_used orders
-- sessions newest first. Retired sessions (after a reset) still decrypt but
-- are never chosen to encrypt.
CREATE TABLE crypto_olm_sessions (
    remote_key BLOB NOT NULL,
    session_id TEXT NOT NULL,
    pickle TEXT NOT NULL,
    last_used INTEGER NOT NULL,
    retired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (remote_key, session_id)
);

CREATE INDEX crypto_olm_sessions_by_use ON crypto_olm_sessions (remote_key, last_used);

-- Every session id ever held with a device, kept after the session is pruned:
-- a replayed pre-key message built on a (reusable) fallback key would
-- otherwise start the same session again and decrypt the same message twice.
CREATE TABLE crypto_olm_known_sessions (
    remote_key BLOB NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (remote_key, session_id)
);

-- One-time keys of remote bundles this device already used: the owner deletes
-- a one-time key when it is claimed, so using it twice would fail there.
CREATE TABLE crypto_olm_used_one_time_keys (
    remote_key BLOB NOT NULL,
    one_time_key BLOB NOT NULL,
    PRIMARY KEY (remote_key, one_time_key)
);
