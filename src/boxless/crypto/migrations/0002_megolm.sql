-- Megolm group sessions (boxless.crypto.megolm). Applied as component "crypto".

-- This device's outbound Megolm sessions, one row per session it ever made for
-- a group. Exactly one row per group has current = 1: the session encrypt()
-- uses. pickle is the outbound GroupSession (vodozemac's encrypted pickle); it
-- is set to NULL when the session is retired, so a stolen database cannot
-- continue an old chain. origin_pickle is an InboundGroupSession of the same
-- session at index 0, kept for history sharing (export_at) after retirement.
-- messages_sent is the outbound message index; created_at is Unix seconds.
CREATE TABLE crypto_megolm_outbound (
    group_id BLOB NOT NULL,
    session_id TEXT NOT NULL,
    pickle TEXT,
    origin_pickle TEXT NOT NULL,
    created_at REAL NOT NULL,
    messages_sent INTEGER NOT NULL DEFAULT 0,
    current INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (group_id, session_id)
);

CREATE UNIQUE INDEX crypto_megolm_outbound_current
    ON crypto_megolm_outbound (group_id) WHERE current = 1;

-- The member devices (Curve25519 device keys) an outbound session's key was
-- shared with. A device in here that is no longer a member forces a rotation.
CREATE TABLE crypto_megolm_outbound_devices (
    group_id BLOB NOT NULL,
    session_id TEXT NOT NULL,
    device_key BLOB NOT NULL,
    PRIMARY KEY (group_id, session_id, device_key)
);

-- Inbound sessions: other devices' outbound sessions whose key they shared
-- with us over Olm. sender_key is the sharing device's Curve25519 key (proven
-- by the Olm session the share arrived on); sender_identity its account's
-- Ed25519 identity key. A session id belongs to one sender device per group.
-- exported = 1: the key came as a history export (unsigned by the session).
CREATE TABLE crypto_megolm_inbound (
    group_id BLOB NOT NULL,
    sender_key BLOB NOT NULL,
    session_id TEXT NOT NULL,
    pickle TEXT NOT NULL,
    first_known_index INTEGER NOT NULL,
    sender_identity BLOB NOT NULL,
    exported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, sender_key, session_id)
);

CREATE UNIQUE INDEX crypto_megolm_inbound_by_session
    ON crypto_megolm_inbound (group_id, session_id);

-- Message indices already decrypted, per inbound session: Megolm itself
-- decrypts an index as often as it is presented, so replays are refused here.
CREATE TABLE crypto_megolm_seen (
    group_id BLOB NOT NULL,
    session_id TEXT NOT NULL,
    message_index INTEGER NOT NULL,
    PRIMARY KEY (group_id, session_id, message_index)
);
