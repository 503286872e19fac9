-- Linked devices (docs/devices.md): our roster, contacts' rosters, used pairing
-- secrets, and when each of our devices was last seen.
CREATE TABLE devices_rosters (
    identity_key  BLOB PRIMARY KEY,           -- ours or a contact's
    serial        INTEGER NOT NULL,
    roster        BLOB NOT NULL,              -- DeviceRoster protobuf, verified when stored
    fetched_at_ms INTEGER NOT NULL
);

-- Bundles of every active device of a contact (and of ours) beyond the one
-- client_contacts/client_bundles know: fan-out sends to each.
CREATE TABLE devices_bundles (
    identity_key  BLOB NOT NULL,
    device_key    BLOB NOT NULL,              -- Curve25519
    bundle        BLOB NOT NULL,              -- DeviceBundle protobuf, verified when stored
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (identity_key, device_key)
);

CREATE TABLE devices_used_pairings (
    secret_hash   BLOB PRIMARY KEY,
    used_at_ms    INTEGER NOT NULL
);

CREATE TABLE devices_seen (
    device_key    BLOB PRIMARY KEY,
    last_seen_ms  INTEGER NOT NULL
);

-- When each identity's bundle topic was last read for a roster (found or not).
CREATE TABLE devices_roster_checks (
    identity_key  BLOB PRIMARY KEY,
    checked_at_ms INTEGER NOT NULL
);
