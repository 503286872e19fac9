-- The newest signed device bundle each identity we deal with has published on its
-- bundle topic (see boxless.client.bundles). Public data, verified before storing;
-- never replaced by an older one.
CREATE TABLE client_bundles (
    identity_key   BLOB PRIMARY KEY,
    device_key     BLOB NOT NULL,             -- the bundle's device Curve25519 key
    created_at     INTEGER NOT NULL,          -- the bundle's own created_at (seconds)
    bundle         BLOB NOT NULL,             -- the serialized DeviceBundle
    fetched_at_ms  INTEGER NOT NULL
);
