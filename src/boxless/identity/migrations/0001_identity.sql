-- 0001: identity key, this device's Olm account, and the user's profile.
-- Single-row tables (id = 1). Everything here is secret or personal and lives
-- only inside the SQLCipher-encrypted pages of the user database.

-- The Ed25519 identity key (raw 32-byte private key; re-derivable from the
-- recovery phrase, kept so the phrase is not needed to start).
CREATE TABLE identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key BLOB    NOT NULL CHECK (length(private_key) = 32),
    public_key  BLOB    NOT NULL CHECK (length(public_key) = 32),
    created_at  INTEGER NOT NULL
);

-- This device: its certificate (DeviceCertificate protobuf), its vodozemac
-- Account pickled with a key from UserDB.derive_key("olm account pickle v1"),
-- and the public half of its current fallback key (vodozemac forgets which key
-- is current once keys are marked published), and its X25519 sealing secret
-- (sealed-sender envelopes are encrypted to its public half, which the
-- certificate carries).
CREATE TABLE device (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    device_id           BLOB    NOT NULL CHECK (length(device_id) = 16),
    certificate         BLOB    NOT NULL,
    account_pickle      TEXT    NOT NULL,
    fallback_key        BLOB    NOT NULL CHECK (length(fallback_key) = 32),
    sealing_private_key BLOB    NOT NULL CHECK (length(sealing_private_key) = 32),
    fallback_created_at INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- Our own display name and avatar (shared with contacts only).
CREATE TABLE profile (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    display_name TEXT    NOT NULL,
    avatar       BLOB,
    avatar_type  TEXT,
    updated_at   INTEGER NOT NULL
);
